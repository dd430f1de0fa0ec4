"""Voxel-wise overlap and surface-distance metrics of two binary masks, with the BraTS empty-mask conventions.

HD95 follows the classic definition of ``medpy.metric.binary.hd95`` (the tests cross-check it): the surface of a
mask is the mask minus its erosion by the 6-neighbourhood, distances are Euclidean in millimetres (SciPy's exact
distance transform with the voxel spacing), and HD95 is the 95th percentile of the distances of both surfaces to
each other, pooled.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

# BraTS convention for an HD95 when exactly one mask is empty: the diagonal of the 240 x 240 x 155 mm BraTS
# volume, sqrt(240^2 + 240^2 + 155^2) = 373.13 mm (the value used by the BraTS 2018-2021 evaluation).
EMPTY_HD95 = 373.13

METRICS: Tuple[str, ...] = ("dice", "iou", "hd95", "sensitivity", "specificity", "precision")
HIGHER_IS_BETTER = {"dice": True, "iou": True, "hd95": False, "sensitivity": True, "specificity": True,
                    "precision": True, "lesion_dice": True, "lesion_hd95": False, "small_lesion_dice": True,
                    # the current official (panoptica) scores of ``panoptic``
                    "global_dice": True, "global_nsd": True, "global_hd95": False, "instance_rq": True,
                    "instance_dice": True, "instance_pq": True, "instance_nsd": True, "instance_hd95": False}

_SURFACE_STRUCTURE = ndimage.generate_binary_structure(3, 1)


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs reference {ref.shape}")
    return np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice coefficient; 1.0 when both masks are empty (BraTS convention)."""
    pred, ref = _check_pair(pred, ref)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """Intersection over union (Jaccard); 1.0 when both masks are empty."""
    pred, ref = _check_pair(pred, ref)
    union = int(np.logical_or(pred, ref).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, ref).sum()) / union


def _bbox(mask: np.ndarray, margin: int) -> Tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin`` voxels, clipped to the image."""
    coords = np.nonzero(mask)
    return tuple(slice(max(int(c.min()) - margin, 0), min(int(c.max()) + 1 + margin, n))
                 for c, n in zip(coords, mask.shape))


def _surface(mask: np.ndarray) -> np.ndarray:
    # border_value=0: a voxel on the image border is surface, as in medpy
    return mask & ~ndimage.binary_erosion(mask, structure=_SURFACE_STRUCTURE, iterations=1)


def surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``pred`` to the surface of ``ref``, and the other way round.

    Both masks must be non-empty. The work is cropped to the bounding box of both masks plus one voxel: the
    erosion inside it and every distance between the two surfaces are the same as on the full image, and a
    240 x 240 x 155 volume is evaluated in a fraction of the time.
    """
    pred, ref = _check_pair(pred, ref)
    if not pred.any() or not ref.any():
        raise ValueError("surface_distances needs two non-empty masks")
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match the {pred.ndim}-D masks")
    box = _bbox(pred | ref, margin=1)
    pred_s, ref_s = _surface(pred[box]), _surface(ref[box])
    to_ref = ndimage.distance_transform_edt(~ref_s, sampling=spacing)[pred_s]
    to_pred = ndimage.distance_transform_edt(~pred_s, sampling=spacing)[ref_s]
    return to_ref, to_pred


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], empty_value: float = EMPTY_HD95) -> float:
    """95th-percentile Hausdorff distance in mm; 0 when both masks are empty, ``empty_value`` when one is."""
    pred, ref = _check_pair(pred, ref)
    has_pred, has_ref = bool(pred.any()), bool(ref.any())
    if not has_pred and not has_ref:
        return 0.0
    if has_pred != has_ref:
        return float(empty_value)
    to_ref, to_pred = surface_distances(pred, ref, spacing)
    return float(np.percentile(np.hstack((to_ref, to_pred)), 95))


def confusion(pred: np.ndarray, ref: np.ndarray) -> Dict[str, int]:
    """Voxel counts tp, fp, fn, tn."""
    pred, ref = _check_pair(pred, ref)
    tp = int(np.logical_and(pred, ref).sum())
    fp = int(pred.sum()) - tp
    fn = int(ref.sum()) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(pred.size) - tp - fp - fn}


def _ratio(num: int, den: int, both_empty: Optional[float]) -> float:
    # den == 0 only when the mask the ratio is conditioned on is empty: BraTS scores "nothing to find, nothing
    # found" as perfect and anything else as 0 (GaNDLF/BraTS 2023 code sets sensitivity 1 when both are empty)
    if den == 0:
        return float(both_empty) if both_empty is not None else 0.0
    return num / den


def region_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> Dict[str, float]:
    """All voxel-wise metrics of ``METRICS`` for one region.

    Empty masks: both empty -> every score 1 (hd95 0); reference empty and prediction not -> sensitivity 0
    (nothing to detect, yet something was claimed); prediction empty and reference not -> precision 0.
    """
    c = confusion(pred, ref)
    both_empty = c["tp"] + c["fp"] + c["fn"] == 0
    return {
        "dice": dice(pred, ref),
        "iou": iou(pred, ref),
        "hd95": hd95(pred, ref, spacing),
        "sensitivity": _ratio(c["tp"], c["tp"] + c["fn"], 1.0 if both_empty else 0.0),
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"], 1.0),
        "precision": _ratio(c["tp"], c["tp"] + c["fp"], 1.0 if both_empty else 0.0),
    }
