"""The demo's choices, sized so that ``nnunet-msfen demo`` finishes within ~13 minutes on 2 CPU cores.

Measured on 2 shared cores, MSFEN at nnU-Net's planned size for 64^3 phantoms (features 32-256, patch
56x56x48, batch 2) needs ~20 s per training iteration: one epoch would eat the whole budget. The demo therefore
trains a small MSFEN (3 stages, 16-32-64 features) on 32^3 patches of 48^3 phantoms, about 1 s per iteration,
and predicts without test-time mirroring. Every part of MSFEN (multi-scale units, attention, SPP, modality stem)
is still there; only width, depth and patch shrink.
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, Tuple

STEPS: Tuple[str, ...] = ("phantom", "convert", "plan", "train", "predict")
# settings each step depends on; a step depends on its own and on every earlier step's (see step_keys)
STEP_SETTINGS: Dict[str, Tuple[str, ...]] = {
    "phantom": ("train_cases", "test_cases", "shape", "seed"),
    "convert": ("dataset_id",),
    "plan": ("patch_size", "features_per_stage", "val_cases"),
    "train": ("trainer", "iterations"),
    "predict": ("tta",),
}
DEMO_TRAINER = "nnUNetTrainerMSFEN_Iterations"


@dataclass(frozen=True)
class DemoSettings:
    """Everything that decides the demo's result; ``ValueError`` naming the value when one is invalid.

    Args:
        train_cases: phantom cases for training (nnU-Net's imagesTr), at least 2.
        test_cases: held-out phantom cases (imagesTs/labelsTs), predicted and evaluated, at least 1.
        shape: phantom grid (X, Y, Z) in 1 mm voxels, each at least 24.
        seed: phantom seed.
        iterations: training iterations (``NNUNET_MSFEN_TRAIN_ITERATIONS`` of the fixed-iteration trainers): a
            fixed amount of training, so that the result does not depend on how busy the machine is.
        trainer: an MSFEN trainer class nnU-Net finds by name (the demo's plans build MSFENUNet);
            ``nnUNetTrainerMSFEN_Smoke`` for a smoke run (2 epochs of 2 iterations, ``iterations`` unused).
        tta: test-time mirroring in prediction (8 forward passes per patch instead of 1).
        dataset_id: nnU-Net dataset id inside the workdir's own nnUNet_raw.
        patch_size: training patch (each side a multiple of 4, the network's 2 downsamplings).
        features_per_stage: MSFEN widths per stage (its length is the number of stages).
    """

    train_cases: int = 24
    test_cases: int = 6
    shape: Tuple[int, int, int] = (48, 48, 48)
    seed: int = 0
    iterations: int = 300
    trainer: str = DEMO_TRAINER
    tta: bool = False
    dataset_id: int = 990
    patch_size: Tuple[int, int, int] = (32, 32, 32)
    features_per_stage: Tuple[int, ...] = (16, 32, 64)
    dataset_name: str = field(default="PhantomDemo", init=False)

    def __post_init__(self):
        if not isinstance(self.train_cases, int) or self.train_cases < 2:
            raise ValueError(f"train_cases must be an integer >= 2 (nnU-Net needs a training and a validation "
                             f"case), got {self.train_cases!r}")
        if not isinstance(self.test_cases, int) or self.test_cases < 1:
            raise ValueError(f"test_cases must be an integer >= 1, got {self.test_cases!r}")
        if self.train_cases + self.test_cases > 999:
            raise ValueError(f"train_cases + test_cases must be at most 999, got "
                             f"{self.train_cases} + {self.test_cases}")
        if len(self.shape) != 3 or any(not isinstance(s, int) or s < 24 for s in self.shape):
            raise ValueError(f"shape must be three integers of at least 24 voxels, got {tuple(self.shape)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.iterations, int) or isinstance(self.iterations, bool) or self.iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {self.iterations!r}")
        if not (self.trainer.isidentifier() and self.trainer.startswith("nnUNetTrainerMSFEN")):
            raise ValueError(f"trainer must be an MSFEN trainer class (nnUNetTrainerMSFEN...), got {self.trainer!r}")
        if not 1 <= self.dataset_id <= 999:
            raise ValueError(f"dataset_id must be from 1 to 999, got {self.dataset_id!r}")
        if len(self.patch_size) != 3 or any(p < 8 or p % 4 for p in self.patch_size):
            raise ValueError(f"patch_size must be three multiples of 4, each >= 8, got {tuple(self.patch_size)}")

    @property
    def val_cases(self) -> int:
        """Validation cases of fold 0: one in twelve training cases, at least one (nnU-Net validates on them
        after training, with test-time mirroring, so fewer is faster)."""
        return max(1, self.train_cases // 12)

    @property
    def dataset(self) -> str:
        """nnU-Net's dataset folder name, ``DatasetIII_PhantomDemo``."""
        return f"Dataset{self.dataset_id:03d}_{self.dataset_name}"

    def step_keys(self) -> Dict[str, Dict[str, object]]:
        """For each step, the settings its output depends on (its own and all earlier steps'), as JSON values.
        A step recorded under another key is stale: it and every later step run again."""
        values = {**asdict(self), "val_cases": self.val_cases}
        keys, acc = {}, {}
        for step in STEPS:
            acc = {**acc, **{name: _jsonable(values[name]) for name in STEP_SETTINGS[step]}}
            keys[step] = dict(acc)
        return keys


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value

