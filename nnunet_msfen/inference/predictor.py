"""nnU-Net's predictor for a trained model, run case by case on (zero-filled) sequence files, with the MSFEN stem's
modality weights recorded per case. Shared by ``nnunet-msfen predict`` and ``nnunet-msfen robustness``."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nnunet_msfen.errors import CommandError
from nnunet_msfen.inference.sequences import SEQUENCES


@dataclass(frozen=True)
class ModelSpec:
    """Which trained model: nnU-Net's dataset, trainer, plans, configuration, folds and checkpoint."""

    dataset: str
    trainer: str
    plans: str = "nnUNetPlans"
    configuration: str = "3d_fullres"
    folds: Sequence[str] = ("0", "1", "2", "3", "4")
    checkpoint: str = "checkpoint_final.pth"


def model_folder(spec: ModelSpec) -> Path:
    """nnU-Net's folder of the trained model, or ``CommandError`` naming why there is none."""
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    try:
        model = Path(get_output_folder(maybe_convert_to_dataset_name(spec.dataset), spec.trainer, spec.plans,
                                       spec.configuration))
    except RuntimeError as e:  # unknown dataset, unset nnUNet_results
        raise CommandError(str(e)) from None
    if not model.is_dir():
        raise CommandError(f"no trained model at {model} (check -d, -tr, -p, -c and nnUNet_results)")
    return model


def load_predictor(spec: ModelSpec, device: Optional[str] = None, mirroring: bool = True,
                   tile_workers: Optional[int] = None):
    """nnU-Net's predictor (``nnUNetPredictorParallelTiles``: ``tile_workers`` tiles at once on the CPU, None =
    ``inference/parallel_tiles.py`` chooses) for ``spec`` (tile step 0.5, Gaussian weighting, ``mirroring``), or
    ``CommandError`` naming what is missing (dataset, model folder, a fold's checkpoint, the CUDA device) or what is
    wrong (``tile_workers``, ``$NNUNET_MSFEN_TILE_WORKERS``). On the CPU the process keeps freed memory
    (``runtime/cpu_allocator.py``, as in training and the benchmark): every tile's full-resolution maps would otherwise
    be page-faulted in afresh."""
    import torch
    from nnunet_msfen.inference.parallel_tiles import nnUNetPredictorParallelTiles, resolve_tile_workers
    from nnunet_msfen.runtime.cpu_allocator import retain_freed_memory

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("-device cuda: torch finds no CUDA device here")
    model = model_folder(spec)
    folds = [f if f == "all" else int(f) for f in spec.folds]
    missing = [f for f in folds if not (model / f"fold_{f}" / spec.checkpoint).is_file()]
    if missing:
        raise CommandError(f"{spec.checkpoint} missing for fold(s) {missing} in {model}")
    try:
        resolve_tile_workers(tile_workers)  # a bad value fails here, not after the first case's preprocessing
        if device == "cpu":
            retain_freed_memory()
    except ValueError as e:  # a bad tile_workers, NNUNET_MSFEN_TILE_WORKERS or NNUNET_MSFEN_CPU_ALLOCATOR
        raise CommandError(str(e)) from None
    predictor = nnUNetPredictorParallelTiles(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                             perform_everything_on_device=device == "cuda", device=torch.device(device),
                                             verbose=False, allow_tqdm=False, tile_workers=tile_workers)
    predictor.initialize_from_trained_model_folder(str(model), folds, spec.checkpoint)
    return predictor


def has_modality_stem(predictor) -> bool:
    """Whether the network weighs the sequences (MSFEN's stem)."""
    return any(hasattr(m, "last_modality_weights") for m in predictor.network.modules())


class AttentionRecorder:
    """Sums the stem's modality weights over every forward pass (patches, mirrorings, folds) since ``reset``."""

    def __init__(self, network):
        stem = next(m for m in network.modules() if hasattr(m, "last_modality_weights"))
        self.handle = stem.register_forward_hook(self._hook)
        self.reset()

    def _hook(self, module, inputs, output) -> None:
        if module.last_modality_weights is not None:
            self.total = self.total + module.last_modality_weights.sum(dim=0).cpu()
            self.count += module.last_modality_weights.shape[0]

    def reset(self) -> None:
        self.total, self.count = 0, 0

    def mean(self) -> Dict[str, float]:
        """Mean weight per sequence since ``reset`` (empty when nothing ran)."""
        return {s: float(w) / self.count for s, w in zip(SEQUENCES, self.total)} if self.count else {}


def predict_case(predictor, case_id: str, files: List[Path], out: Path,
                 attention: Optional[AttentionRecorder] = None) -> Optional[Dict[str, float]]:
    """Read the case's four channel files with nnU-Net's reader and predict ``out/CASE.nii.gz``; the case's mean
    modality weights when ``attention`` records them."""
    reader = predictor.plans_manager.image_reader_writer_class()
    data, properties = reader.read_images([str(f) for f in files])
    if attention is not None:
        attention.reset()
    predictor.predict_single_npy_array(data, properties, None, str(out / case_id), False)
    return attention.mean() if attention is not None else None
