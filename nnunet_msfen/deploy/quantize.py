"""Optional int8 models beside an ONNX export (``nnunet-msfen export-onnx --quantize static|dynamic``).

ONNX Runtime's quantisation tools (``onnxruntime.quantization``) turn each verified float fold into
``fold_F.int8.onnx``: ``static`` inserts QDQ pairs calibrated on the first half of the real preprocessed patches
(per-channel int8 weights, uint8 activations), ``dynamic`` quantises the weights and computes activation scales at
run time. The int8 model is *offered* only where it keeps the float model's result: on the other half of the
patches (held out from calibration), for every region of every fold, its Dice against the reference segmentation
must be within ``MAX_DICE_LOSS`` of the float model's, *and* its segmentation must agree with the float model's at
a Dice of at least ``1 - MAX_DICE_LOSS``. (Accuracy alone was not enough: on a real BraTS case, models that lost
only 0.003 on the patches agreed with the float output at Dice 0.94-0.96 and lost 0.006-0.012 on the whole case;
docs/deploy.md.) Otherwise the int8 files are deleted and ``export.json`` keeps the measurement that refused them.
``predict --int8`` runs only an offered int8 model.
"""
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

METHODS = ("static", "dynamic")
MAX_DICE_LOSS = 0.005
MIN_PATCHES = 2  # one to calibrate on, one to check Dice on


def region_dice(predictions: List[np.ndarray], references: List[np.ndarray],
                regions: Dict[str, Tuple[int, ...]]) -> Dict[str, float]:
    """Dice per region pooled over all patches (sum of overlaps over sum of sizes: stable where a patch has
    little of a region); NaN where a region is absent from both."""
    out = {}
    for name, labels in regions.items():
        inter = size = 0
        for p, r in zip(predictions, references):
            pm, rm = np.isin(p, labels), np.isin(r, labels)
            inter += int(np.logical_and(pm, rm).sum())
            size += int(pm.sum() + rm.sum())
        out[name] = 2 * inter / size if size else float("nan")
    return out


def compare_int8(seg_float: List[np.ndarray], seg_int8: List[np.ndarray], references: List[np.ndarray],
                 regions: Dict[str, Tuple[int, ...]]) -> Dict:
    """The checks of one fold (module docstring): Dice of both models against the references, the largest loss,
    the int8 output's Dice against the float output per region (NaN: the region is in neither), and ``kept``."""
    dice_float = region_dice(seg_float, references, regions)
    dice_int8 = region_dice(seg_int8, references, regions)
    loss = max((dice_float[r] - dice_int8[r] for r in regions if not np.isnan(dice_float[r])), default=0.0)
    agreement = region_dice(seg_int8, seg_float, regions)
    worst = min((a for a in agreement.values() if not np.isnan(a)), default=1.0)
    return {"dice": {"float": dice_float, "int8": dice_int8}, "dice_loss": float(loss),
            "agreement_with_float": agreement, "worst_agreement": float(worst),
            "kept": bool(loss <= MAX_DICE_LOSS and worst >= 1 - MAX_DICE_LOSS)}


def _regions(label_manager) -> Dict[str, Tuple[int, ...]]:
    """The model's regions (region-based training) or foreground labels by their dataset.json names."""
    return {name: tuple(value) if isinstance(value, (list, tuple)) else (int(value),)
            for name, value in label_manager.label_dict.items() if name not in ("background", "ignore")}


def _segment(run, images: List[np.ndarray], label_manager) -> List[np.ndarray]:
    import torch

    return [label_manager.convert_logits_to_segmentation(torch.from_numpy(run(x)[0])).numpy() for x in images]


def _seconds(run, x: np.ndarray, repeats: int = 3) -> float:
    """Median seconds of ``run(x)`` after one warm-up call."""
    run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def quantize_model(source: Path, target: Path, method: str, calibration: List[np.ndarray]) -> None:
    """Write the int8 version of the ONNX model ``source`` to ``target`` (atomically).

    Raises:
        ValueError: for an unknown ``method``, or ``static`` without calibration patches.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from nnunet_msfen.io.atomic import atomic_path

    if method not in METHODS:
        raise ValueError(f"quantisation method must be one of {METHODS}, got {method!r}")
    if method == "static" and not calibration:
        raise ValueError("static quantisation needs calibration patches")

    class Patches(CalibrationDataReader):
        def __init__(self):
            self.patches = iter({"image": x} for x in calibration)

        def get_next(self):
            return next(self.patches, None)

    with atomic_path(target) as tmp:
        prepared = tmp.with_name(tmp.name + ".pre.onnx")
        try:
            quant_pre_process(str(source), str(prepared))  # shape inference and folding, as the tools advise
            if method == "static":
                quantize_static(str(prepared), str(tmp), Patches(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            else:
                quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8)
        finally:
            prepared.unlink(missing_ok=True)


def quantize_export(out: Path, record: Dict, method: str, patches: List[Tuple[np.ndarray, np.ndarray]],
                    label_manager, threads: int = None) -> Dict:
    """Quantise every fold of the export in ``out`` (``record``: its export.json content), check each against
    the float model on the held-out half of ``patches`` (``(image, reference)`` pairs) and return the ``int8``
    entry of export.json: method, files (only when offered), sizes, Dice per fold and region, seconds per patch.

    Raises:
        ValueError: fewer than ``MIN_PATCHES`` patches.
    """
    from nnunet_msfen.deploy.backends import onnxruntime_runner

    if len(patches) < MIN_PATCHES:
        raise ValueError(f"int8 quantisation needs at least {MIN_PATCHES} real preprocessed patches (half to "
                         f"calibrate, half to check Dice), found {len(patches)}")
    half = len(patches) // 2
    calibration = [x for x, _ in patches[:half]]
    held_out, references = [x for x, _ in patches[half:]], [r for _, r in patches[half:]]
    regions = _regions(label_manager)
    entry = {"method": method, "max_dice_loss": MAX_DICE_LOSS, "calibration_patches": len(calibration),
             "checked_patches": len(held_out), "folds": {}}
    files = {}
    for fold, name in record["files"].items():
        source, target = out / name, out / name.replace(".onnx", ".int8.onnx")
        quantize_model(source, target, method, calibration)
        fp, q = onnxruntime_runner(source, threads), onnxruntime_runner(target, threads)
        checks = compare_int8(_segment(fp, held_out, label_manager), _segment(q, held_out, label_manager),
                              references, regions)
        entry["folds"][fold] = {"file": target.name, "bytes": {"float": source.stat().st_size,
                                                               "int8": target.stat().st_size}, **checks,
                                "seconds_per_patch": {"float": _seconds(fp, held_out[0]),
                                                      "int8": _seconds(q, held_out[0])}}
        files[fold] = target.name
    entry["offered"] = all(f["kept"] for f in entry["folds"].values())
    if entry["offered"]:
        entry["files"] = files
    else:
        for name in files.values():
            (out / name).unlink()
    return entry
