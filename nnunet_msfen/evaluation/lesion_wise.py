"""BraTS 2023 lesion-wise Dice and HD95, and the Dice of small lesions.

The rules and constants follow the official BraTS 2023 metrics code, ``brats_2023_metrics/surface_distance/
brats_metrics.py`` (github.com/rachitsaluja/BraTS-2023-Metrics, commit 5db2741), functions
``get_lesion_wise_score`` and ``get_lesion_wise_results``:

1. Lesions are 26-connected components of the region mask (``cc3d.connected_components(connectivity=26)``).
2. The reference mask is dilated ``dilation`` times with the 18-neighbourhood
   (``scipy.ndimage.generate_binary_structure(3, 2)``); reference components inside one dilated component are
   merged into one lesion.
3. A predicted component is matched to a reference lesion when it touches the lesion's dilated ROI; the
   lesion's Dice and HD95 are computed between the lesion and the union of all its matched components. An
   unmatched lesion scores Dice 0 and HD95 374 mm.
4. Only reference lesions whose volume (voxels x voxel volume, mm^3) is strictly above ``volume_threshold``
   are scored; a predicted component that touches a smaller lesion is neither scored nor a false positive.
5. Every predicted component matched to no reference lesion is a false positive and scores Dice 0 and
   HD95 374 mm: lesion-wise Dice = sum(Dice) / (n_scored + n_fp), HD95 = (sum(HD95) + 374 n_fp) / (...).
6. No scored lesion and no false positive (0 / 0): Dice 1, HD95 0.

Constants for the adult glioma task (``get_challenge_parameters('BraTS-GLI')``): dilation 3, threshold 50 mm^3,
penalty 374 mm. Other tasks (``nnunet_msfen.brats_tasks``) differ in dilation and threshold, and two in more: PED
2024 removes predicted components of ``min_predicted_voxels`` voxels or fewer before scoring, MEN-RT 2024 scores no
false positive (``count_false_positives=False``). Deviation: per-lesion HD95 uses this package's HD95 (medpy's definition, see ``metrics``)
where the official code uses DeepMind's surfel-area-weighted ``compute_robust_hausdorff``; the two agree to
within a fraction of a voxel and are identical for the penalty cases. Dice, matching and counts are identical.

Small lesions are not part of the BraTS definition: ``small_lesion_dice`` is the mean lesion Dice over the
reference lesions (as merged in step 2) whose equivalent-sphere diameter is below ``SMALL_LESION_DIAMETER_MM``,
exactly the lesions that step 4 leaves unscored or nearly so; ``None`` when a case has none.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from nnunet_msfen.evaluation.metrics import dice, hd95

LESION_DILATION = 3  # BraTS-GLI dilation_factor
LESION_VOLUME_THRESHOLD_MM3 = 50.0  # BraTS-GLI lesion_volume_thresh (lesions with volume <= 50 are not scored)
LESION_PENALTY_HD95 = 374.0  # official: np.inf and every false positive are replaced by 374
SMALL_LESION_DIAMETER_MM = 5.0

_CC_STRUCTURE = ndimage.generate_binary_structure(3, 3)  # 26-connectivity
_DILATION_STRUCTURE = ndimage.generate_binary_structure(3, 2)  # official dilation_struct


def _union_box(boxes: List[Tuple[slice, ...]]) -> Tuple[slice, ...]:
    return tuple(slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes)) for d in range(len(boxes[0])))


def lesion_wise(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], dilation: int = LESION_DILATION,
                volume_threshold: float = LESION_VOLUME_THRESHOLD_MM3, min_predicted_voxels: Optional[int] = None,
                count_false_positives: bool = True) -> Dict[str, Optional[float]]:
    """Lesion-wise scores of one region (boolean masks, 3-D) following the BraTS 2023 rules (module docstring).

    Returns ``lesion_dice``, ``lesion_hd95``, ``lesion_tp``/``lesion_fp``/``lesion_fn`` (counts over scored
    lesions, as the official ``Num_TP``/``Num_FP``/``Num_FN``), ``small_lesion_dice`` and ``n_small_lesions``.
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise ValueError(f"lesion_wise needs two 3-D masks of one shape, got {pred.shape} and {ref.shape}")
    if dilation < 0 or volume_threshold < 0:
        raise ValueError(f"dilation and volume_threshold must be >= 0, got {dilation} and {volume_threshold}")
    voxel_volume = float(np.prod(spacing))
    small_volume = math.pi / 6.0 * SMALL_LESION_DIAMETER_MM ** 3

    pred_cc, n_pred = ndimage.label(pred, structure=_CC_STRUCTURE)
    if min_predicted_voxels:  # PED 2024: predicted specks of at most this many voxels do not count
        sizes = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)
        keep = sizes > min_predicted_voxels
        keep[0] = False
        pred_cc, _ = ndimage.label(keep[pred_cc], structure=_CC_STRUCTURE)
    pred_boxes = ndimage.find_objects(pred_cc)
    roi = ndimage.binary_dilation(ref, structure=_DILATION_STRUCTURE, iterations=dilation) if dilation else ref
    roi_cc, n_lesions = ndimage.label(roi, structure=_CC_STRUCTURE)
    roi_boxes = ndimage.find_objects(roi_cc)
    # the ROI of a merged lesion (official: dilation of the merged lesion) is its dilated component
    lesion_cc = np.where(ref, roi_cc, 0)

    matched: set = set()
    scored_dice, scored_hd, small_dice = [], [], []
    tp = fn = 0
    for lesion in range(1, n_lesions + 1):
        hits = np.unique(pred_cc[roi_boxes[lesion - 1]][roi_cc[roi_boxes[lesion - 1]] == lesion])
        hits = hits[hits != 0]
        matched.update(hits.tolist())
        box = _union_box([roi_boxes[lesion - 1]] + [pred_boxes[h - 1] for h in hits])
        gt_mask = lesion_cc[box] == lesion
        pred_mask = np.isin(pred_cc[box], hits) if len(hits) else np.zeros_like(gt_mask)
        d = dice(pred_mask, gt_mask)
        volume = int(gt_mask.sum()) * voxel_volume
        if volume < small_volume:
            small_dice.append(d)
        if volume <= volume_threshold:
            continue
        scored_dice.append(d)
        scored_hd.append(hd95(pred_mask, gt_mask, spacing, empty_value=LESION_PENALTY_HD95))
        tp, fn = (tp + 1, fn) if len(hits) else (tp, fn + 1)

    n_fp = len(pred_boxes) - len(matched)
    penalised = n_fp if count_false_positives else 0
    n = len(scored_dice) + penalised
    return {
        "lesion_dice": float(sum(scored_dice) / n) if n else 1.0,
        "lesion_hd95": float((sum(scored_hd) + LESION_PENALTY_HD95 * penalised) / n) if n else 0.0,
        "lesion_tp": tp,
        "lesion_fp": n_fp,
        "lesion_fn": fn,
        "small_lesion_dice": float(np.mean(small_dice)) if small_dice else None,
        "n_small_lesions": len(small_dice),
    }
