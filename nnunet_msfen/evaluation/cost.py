"""Cost of a trained nnU-Net model: parameter count and training time per epoch from the files training left, and
the time nnU-Net's predictor takes for one case (measured here: nnU-Net records no prediction time)."""
import re
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

# nnU-Net's trainer logs "Epoch time: 12.34 s" once per epoch (nnUNetTrainer.on_epoch_end)
_EPOCH_TIME = re.compile(r"Epoch time:\s*([0-9]+(?:\.[0-9]+)?)\s*s")


def count_parameters(checkpoint: Path) -> int:
    """Number of trainable-weight elements in the ``network_weights`` of an nnU-Net checkpoint.

    Non-float entries (integer buffers such as BatchNorm's ``num_batches_tracked``) are not parameters.
    ``ValueError`` naming the file when it is unreadable or has no ``network_weights``.
    """
    import torch

    try:
        # nnU-Net checkpoints hold plain Python objects beside the tensors (init args, trainer name), which the
        # weights-only unpickler rejects; the file is the user's own training output
        data = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise ValueError(f"cannot read checkpoint {checkpoint}: {e}") from None
    weights = data.get("network_weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f"{checkpoint} has no 'network_weights' state dict")
    return int(sum(t.numel() for t in weights.values() if torch.is_tensor(t) and t.is_floating_point()))


def epoch_times(log_files: List[Path]) -> List[float]:
    """All epoch times (s) logged in nnU-Net ``training_log_*.txt`` files."""
    times: List[float] = []
    for log in log_files:
        times.extend(float(m) for m in _EPOCH_TIME.findall(log.read_text(encoding="utf-8", errors="replace")))
    return times


def training_cost(fold_dirs: List[Path]) -> Dict[str, Optional[float]]:
    """Parameters (from the first fold with ``checkpoint_final.pth``) and epoch-time statistics over all folds.

    Values that the files do not hold are None, and the report says "not available" rather than guessing.
    """
    checkpoints = [d / "checkpoint_final.pth" for d in fold_dirs if (d / "checkpoint_final.pth").is_file()]
    times = epoch_times([log for d in fold_dirs for log in sorted(d.glob("training_log_*.txt"))])
    return {
        "parameters": count_parameters(checkpoints[0]) if checkpoints else None,
        "epoch_time_mean_s": float(np.mean(times)) if times else None,
        "epoch_time_std_s": float(np.std(times)) if times else None,
        "epochs_logged": len(times),
        "inference_time_s": None,  # filled in by inference_time() when the raw images are at hand
    }


def inference_time(fold_dir: Path, images: List[Path], device: str = "cpu", repeats: int = 2) -> float:
    """Seconds nnU-Net's predictor (``nnUNetPredictorParallelTiles``, as ``nnunet-msfen predict`` runs it) takes to
    segment one case (the image files ``images``) with the final checkpoint of ``fold_dir``: preprocessing, sliding
    window with step 0.5, Gaussian weighting and the mirroring the model was trained with, and the conversion back
    to the original geometry; file writing excluded. The last of ``repeats`` runs counts (the first warms up).
    ``ValueError`` naming the folder when it holds no model."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from nnunet_msfen.inference.parallel_tiles import nnUNetPredictorParallelTiles

    if not (fold_dir / "checkpoint_final.pth").is_file():
        raise ValueError(f"no checkpoint_final.pth in {fold_dir}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    fold = fold_dir.name[len("fold_"):]
    predictor = nnUNetPredictorParallelTiles(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                             perform_everything_on_device=device == "cuda", device=torch.device(device),
                                             verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(fold_dir.parent), use_folds=(fold if fold == "all" else int(fold),),
                                                   checkpoint_name="checkpoint_final.pth")
    image, properties = SimpleITKIO().read_images([str(p) for p in images])
    seconds = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_single_npy_array(image, properties)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds
