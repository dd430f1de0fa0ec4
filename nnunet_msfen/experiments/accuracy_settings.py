"""What decides a ``benchmark-accuracy`` run (``AccuracySettings``): the source folders, the configuration, the
budget, the trainers (and the time-budget or fixed-iteration variants their names map to), plans, seed and device.
The working folder it writes is ``accuracy_workdir.AccuracyWorkdir``.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

CONFIGURATIONS = ("2d", "3d_fullres")
# -tr takes the base trainers' names; they train under the time budget (or for --iterations) through these variants
TRAINER_ALIASES = {"nnUNetTrainer": "nnUNetTrainer_TimeBudget", "nnUNetTrainerMSFEN": "nnUNetTrainerMSFEN_TimeBudget"}
ITERATION_ALIASES = {name: f"{name}_Iterations" for name in (
    "nnUNetTrainer", "nnUNetTrainerMSFEN", "nnUNetTrainerMSFEN_v1", "nnUNetTrainerMSFEN_PlannedDownsampling",
    "nnUNetTrainer_ModalityDropout", "nnUNetTrainerMSFEN_ModalityDropout")}
DEFAULT_TRAINERS = ("nnUNetTrainer", "nnUNetTrainerMSFEN")
DEVICES = ("cpu", "cuda")
FOLD = "all"  # every training case trains; the test folder is the only held-out data
TRAIN_NAME, TEST_NAME = "AccuracyTrain", "AccuracyTest"


@dataclass(frozen=True)
class AccuracySettings:
    """One benchmark run; ``ValueError`` naming the value when one is invalid.

    Args:
        train: BraTS-layout folder of the training cases (any layout ``convert-brats`` reads).
        test: BraTS-layout folder of the test cases, with their segmentations.
        config: nnU-Net configuration, ``2d`` or ``3d_fullres``.
        minutes: training budget per trainer (``NNUNET_MSFEN_TRAIN_MINUTES`` of the time-budget trainers).
        iterations: if set, train exactly this many iterations instead of for ``minutes``
            (``NNUNET_MSFEN_TRAIN_ITERATIONS`` of the fixed-iteration trainers).
        trainers: names given to ``-tr``; ``nnUNetTrainer`` and ``nnUNetTrainerMSFEN`` (and, with ``iterations``, the
            other names of ``ITERATION_ALIASES``) become their ``_TimeBudget`` (``_Iterations``) variants, any other
            name is passed to nnU-Net unchanged.
        batch_size: if set, a copy of the plans with this batch size in ``config`` (``nnUNetPlans_bsN``).
        seed: seed of every training (network initialisation, patch sampling, augmentation).
        device: ``cpu`` or ``cuda``.
        tta: predict with nnU-Net's test-time mirroring.
        dataset_id: nnU-Net id of the training dataset; the test dataset gets ``dataset_id + 1``.
        da_processes: nnU-Net's augmentation workers (``nnUNet_n_proc_DA``); with 1, both trainers see the
            same batches in the same order.
    """

    train: Path
    test: Path
    config: str = "3d_fullres"
    minutes: float = 30.0
    iterations: Optional[int] = None
    trainers: Tuple[str, ...] = DEFAULT_TRAINERS
    batch_size: Optional[int] = None
    seed: int = 0
    device: str = "cpu"
    tta: bool = True
    dataset_id: int = 901
    da_processes: int = 1

    def __post_init__(self):
        for what, folder in (("--train", self.train), ("--test", self.test)):
            if not Path(folder).is_dir():
                raise ValueError(f"{what} folder not found: {folder}")
        if Path(self.train).resolve() == Path(self.test).resolve():
            raise ValueError(f"--train and --test are the same folder ({self.train}): the test cases must be held out")
        if self.config not in CONFIGURATIONS:
            raise ValueError(f"config must be one of {list(CONFIGURATIONS)}, got {self.config!r}")
        if not (isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes!r}")
        if self.iterations is not None and (not isinstance(self.iterations, int) or self.iterations < 1):
            raise ValueError(f"iterations must be a positive integer, got {self.iterations!r}")
        if not self.trainers:
            raise ValueError("give at least one trainer")
        for name in self.trainers:
            if not name.isidentifier():
                raise ValueError(f"trainer must be a class name, got {name!r}")
        mapped = self.nnunet_trainers
        if len(set(mapped)) != len(mapped):
            raise ValueError(f"trainers {list(self.trainers)} name the same nnU-Net trainer twice ({list(mapped)})")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if not isinstance(self.dataset_id, int) or not 1 <= self.dataset_id <= 998:
            raise ValueError(f"dataset id must be from 1 to 998 (the test set takes the next id), got {self.dataset_id!r}")
        if not isinstance(self.da_processes, int) or self.da_processes < 0:
            raise ValueError(f"augmentation processes must be an integer >= 0, got {self.da_processes!r}")

    @property
    def nnunet_trainers(self) -> Tuple[str, ...]:
        """The trainer classes nnU-Net runs, in the order given."""
        aliases = TRAINER_ALIASES if self.iterations is None else ITERATION_ALIASES
        return tuple(aliases.get(t, t) for t in self.trainers)

    @property
    def budget(self) -> str:
        """What each trainer trains for, in words."""
        return f"{self.minutes:g} min" if self.iterations is None else f"{self.iterations} iterations"

    @property
    def budget_environment(self) -> Dict[str, str]:
        """The variable the time-budget or fixed-iteration trainers read."""
        if self.iterations is None:
            return {"NNUNET_MSFEN_TRAIN_MINUTES": f"{self.minutes:g}"}
        return {"NNUNET_MSFEN_TRAIN_ITERATIONS": str(self.iterations)}

    @property
    def plans(self) -> str:
        """Plans identifier: nnU-Net's, or the copy with the changed batch size."""
        return "nnUNetPlans" if self.batch_size is None else f"nnUNetPlans_bs{self.batch_size}"

    @property
    def train_dataset(self) -> str:
        """nnU-Net's name of the training dataset, ``DatasetIII_AccuracyTrain``."""
        return f"Dataset{self.dataset_id:03d}_{TRAIN_NAME}"

    @property
    def test_dataset(self) -> str:
        """nnU-Net's name of the test dataset, ``Dataset(III+1)_AccuracyTest``."""
        return f"Dataset{self.dataset_id + 1:03d}_{TEST_NAME}"

    def training_key(self, trainer: str) -> Dict[str, object]:
        """Everything a training's result depends on; a training recorded under another key is redone."""
        key = {"trainer": trainer, "config": self.config, "plans": self.plans, "minutes": self.minutes,
               "seed": self.seed, "device": self.device, "da_processes": self.da_processes}
        if self.iterations is not None:  # absent otherwise, so that records of earlier time-budget runs still match
            key.update(minutes=None, iterations=self.iterations)
        return key

    def prediction_key(self, trainer: str) -> Dict[str, object]:
        """Everything a prediction depends on: the training's key and test-time mirroring."""
        return {**self.training_key(trainer), "tta": self.tta}
