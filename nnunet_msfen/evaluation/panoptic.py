"""The current official BraTS metrics of one region: panoptica's global and instance-wise DSC, NSD and HD95.

Source: the official evaluation package ``brats-evaluation`` 0.0.10 (github.com/BraTS/BraTS_evaluation), which scores
with ``panoptica`` 2.1.7 (github.com/BrainLesion/panoptica) under its ``configs/config_<name>.yaml``. Reimplemented
from their behaviour, no code taken; ``tests/test_official_metrics.py`` checks every value against the package's
outputs recorded in ``tests/golden/official_metrics.json``. The rules, for the two masks of one group (region):

1. Instances are the 26-connected components of each mask (panoptica's connected-components approximator, ``cc3d``
   backend); a merged group (TC, WT) is one binary mask.
2. Matching: each overlapping (reference, prediction) pair scores its DSC; a one-to-one assignment
   (``scipy.optimize.linear_sum_assignment``, rows and columns in component-label order) minimises the summed cost,
   1 - DSC for a pair with DSC >= 1e-6 and 1 + 1e-6 for any other; an assigned pair costing less than 1 is a match.
   tp = matches, fp = predicted components - tp, fn = reference components - tp.
3. Per match: DSC, HD95 (mm) and NSD with a tolerance of the smallest voxel spacing (mm).
4. Global: DSC, NSD and HD95 of the two masks, which panoptica computes *without the voxel spacing*: HD95 in voxels
   and NSD with a tolerance of 0.5 voxel, so only coinciding surface voxels count (its warning "threshold is set to
   0.5"). On BraTS' 1 mm isotropic grid voxels are millimetres.
5. Surfaces and HD95 as in ``metrics`` (mask minus its 6-neighbourhood erosion, exact Euclidean distance from each
   surface voxel to the other surface, 95th percentile of both directions pooled). NSD is panoptica's (GaNDLF's)
   variant: the mean over the two directions of the fraction of surface voxels within the tolerance of the other
   surface, not DeepMind's surfel-area surface Dice.
6. sq_* = mean over the matches; rq = tp / (tp + fp / 2 + fn / 2); pq_dsc = sq_dsc * rq.
7. Edge cases (the YAML's ``edge_case_handler``): no match (instance scores) or no overlapping voxel (global scores)
   gives DSC 0, NSD 0 and an infinite HD95, unless neither mask has a component: then every score and rq are NaN.

Keys returned [official field]: ``global_dice`` [global_bin_dsc], ``global_nsd`` [global_bin_nsd], ``global_hd95``
[global_bin_hd95], ``instance_tp`` / ``instance_fp`` / ``instance_fn`` [tp / fp / fn], ``instance_rq`` [rq, the
detection F1], ``instance_dice`` [sq_dsc, what the challenge reports as lesion-wise DSC: ``lesionwise_dsc_mean`` of
``brats_evaluation.parse_seg_results``], ``instance_pq`` [pq_dsc], ``instance_nsd`` [sq_nsd], ``instance_hd95``
[sq_hd95]. Values are JSON-safe: NaN -> None (``mean_results`` leaves it out) and an infinite HD95 ->
``OFFICIAL_HD95_PENALTY``, the 373 that ``brats_evaluation``'s parsers put in its place (global HD95 in both parsers,
lesion-wise HD95 in the METS one).

Deviation, spacing only: panoptica reads NIfTI with SimpleITK and applies ``GetSpacing()`` (x, y, z) to the array axes
(z, y, x) one by one; ``spacing`` here is per array axis, as everywhere in this package. The two agree on isotropic
images (all BraTS data); on anisotropic ones the official instance NSD and HD95 use the spacing on the wrong axes.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from nnunet_msfen.evaluation.lesion_wise import _union_box
from nnunet_msfen.evaluation.metrics import _bbox, _surface

OFFICIAL_HD95_PENALTY = 373.0  # brats_evaluation.metrics_parser: "diameter of the cube in SRI space"
MATCH_THRESHOLD = 1e-6  # config_*.yaml: MaxBipartiteMatching matching_threshold
GLOBAL_NSD_TOLERANCE = 0.5  # voxels: panoptica's default when no spacing is passed
PANOPTIC_KEYS: Tuple[str, ...] = ("global_dice", "global_nsd", "global_hd95", "instance_tp", "instance_fp",
                                  "instance_fn", "instance_rq", "instance_dice", "instance_pq", "instance_nsd",
                                  "instance_hd95")
# task (nnunet_msfen.brats_tasks) -> the brats_evaluation config whose groups hold the task's regions (same labels)
OFFICIAL_CONFIGS: Dict[str, str] = {"gli2023": "gli", "gli2024": "gli", "ssa": "gli", "ped2023": "gli",
                                    "men": "MenPre", "met": "mets", "ped": "ped", "menrt": "MenRT"}

_CC_STRUCTURE = ndimage.generate_binary_structure(3, 3)  # 26-connectivity, cc3d's default
_NO_MATCH_COST = 1.0 + 1e-6


def _components(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    labels, n = ndimage.label(mask, structure=_CC_STRUCTURE)  # same label order as cc3d (raster order)
    return labels, int(n)


def _surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``pred`` to the surface of ``ref`` and the other way round.

    The values of ``metrics.surface_distances`` (a distance transform of the bounding box) from a k-d tree of the
    surface voxels, several times faster on a BraTS image: the nearest voxel comes from the tree and its distance is
    computed as SciPy's transform does, so the two agree exactly on an isotropic grid and to the last bit of a tie
    otherwise. Masks are non-empty with nothing outside the arrays (erosion's border counts as background).
    """
    sampling = np.asarray(spacing, dtype=np.float64)
    surfaces = [np.argwhere(_surface(m)) for m in (pred, ref)]
    out = []
    for src, dst in (surfaces, surfaces[::-1]):
        _, nearest = cKDTree(dst * sampling).query(src * sampling)
        d = (dst[nearest] - src).astype(np.float64) * sampling
        out.append(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]))
    return out[0], out[1]


def _surface_scores(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], tolerance: float) -> Tuple[float, float]:
    """(NSD, HD95) of two non-empty masks; NSD as panoptica: mean of the two directional fractions."""
    to_ref, to_pred = _surface_distances(pred, ref, spacing)
    nsd = (float(np.mean(to_ref <= tolerance)) + float(np.mean(to_pred <= tolerance))) / 2.0
    return nsd, float(np.percentile(np.hstack((to_ref, to_pred)), 95))


def _no_match(n_pred: int, n_ref: int) -> Tuple[float, float, float]:
    """(DSC, NSD, HD95) of the YAML edge cases: NaN without any component, else 0, 0, inf."""
    if n_pred + n_ref == 0:
        return math.nan, math.nan, math.nan
    return 0.0, 0.0, math.inf


def match_instances(ref_cc: np.ndarray, n_ref: int, pred_cc: np.ndarray, n_pred: int) -> List[Tuple[int, int, float]]:
    """One-to-one matches ``(reference label, predicted label, DSC)`` of two component maps (rule 2)."""
    if n_ref == 0 or n_pred == 0:
        return []
    both = (ref_cc > 0) & (pred_cc > 0)
    codes, inter = np.unique(ref_cc[both].astype(np.int64) * (n_pred + 1) + pred_cc[both], return_counts=True)
    r, p = codes // (n_pred + 1), codes % (n_pred + 1)
    ref_size = np.bincount(ref_cc.ravel(), minlength=n_ref + 1)
    pred_size = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)
    score = 2.0 * inter / (ref_size[r] + pred_size[p])
    dsc = np.zeros((n_ref, n_pred))
    dsc[r - 1, p - 1] = score
    cost = np.where(dsc >= MATCH_THRESHOLD, 1.0 - dsc, _NO_MATCH_COST)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i) + 1, int(j) + 1, float(dsc[i, j])) for i, j in zip(rows, cols) if cost[i, j] < 1.0]


def _json_safe(value: float) -> Optional[float]:
    if math.isnan(value):
        return None
    return OFFICIAL_HD95_PENALTY if math.isinf(value) else float(value)


def panoptic_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> Dict[str, Optional[float]]:
    """The official global and instance-wise scores of one region (module docstring), keys ``PANOPTIC_KEYS``.

    Args:
        pred, ref: boolean 3-D masks of one shape.
        spacing: voxel spacing in mm, per array axis.

    Raises:
        ValueError: for masks of different shapes or not 3-D, or a spacing of the wrong length or not positive.
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise ValueError(f"panoptic_metrics needs two 3-D masks of one shape, got {pred.shape} and {ref.shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive numbers, got {tuple(spacing)}")
    union = pred | ref
    if union.any():
        box = _bbox(union, margin=1)  # components, surfaces and distances are unchanged inside it
        pred, ref = pred[box], ref[box]
    pred_cc, n_pred = _components(pred)
    ref_cc, n_ref = _components(ref)

    if (pred & ref).any():
        g_nsd, g_hd95 = _surface_scores(pred, ref, (1.0, 1.0, 1.0), GLOBAL_NSD_TOLERANCE)
        g_dice = 2.0 * int((pred & ref).sum()) / (int(pred.sum()) + int(ref.sum()))
    else:
        g_dice, g_nsd, g_hd95 = _no_match(n_pred, n_ref)

    matches = match_instances(ref_cc, n_ref, pred_cc, n_pred)
    tp = len(matches)
    fp, fn = n_pred - tp, n_ref - tp
    if tp:
        ref_boxes, pred_boxes = ndimage.find_objects(ref_cc), ndimage.find_objects(pred_cc)
        nsds, hds = [], []
        for r, p, _ in matches:
            box = _union_box([ref_boxes[r - 1], pred_boxes[p - 1]])
            nsd, hd = _surface_scores(pred_cc[box] == p, ref_cc[box] == r, spacing, float(min(spacing)))
            nsds.append(nsd)
            hds.append(hd)
        rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        i_dice, i_nsd, i_hd95 = float(np.mean([d for _, _, d in matches])), float(np.mean(nsds)), float(np.mean(hds))
    else:
        rq = 0.0 if n_pred + n_ref else math.nan
        i_dice, i_nsd, i_hd95 = _no_match(n_pred, n_ref)

    return {
        "global_dice": _json_safe(g_dice), "global_nsd": _json_safe(g_nsd), "global_hd95": _json_safe(g_hd95),
        "instance_tp": tp, "instance_fp": fp, "instance_fn": fn, "instance_rq": _json_safe(rq),
        "instance_dice": _json_safe(i_dice), "instance_pq": _json_safe(i_dice * rq),
        "instance_nsd": _json_safe(i_nsd), "instance_hd95": _json_safe(i_hd95),
    }
