"""The BraTS enhancing-tumour postprocessing rule (``nnunet-msfen postprocess``; the lesion-wise component rules
are in ``component_postprocessing``, the command in ``postprocess_command``).

nnU-Net's BraTS 2020 winning entry (Isensee et al., "nnU-Net for Brain Tumor Segmentation", BrainLes 2020,
arXiv:2011.00848): when a case's predicted enhancing tumour has fewer voxels than a threshold, all of it becomes
necrosis. A false-positive ET in a case without ET costs a whole Dice point (BraTS scores it 0 instead of 1), so
removing small ET predictions pays on average. The threshold is chosen on cross-validation predictions to
maximise mean ET Dice under the BraTS empty-mask convention, then applied to new predictions.
"""
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from nnunet_msfen.evaluation.evaluate import read_case
from nnunet_msfen.labels import NECROSIS_LABEL, region_labels

EtStats = Tuple[int, float, float]  # (predicted ET voxels, ET Dice kept, ET Dice if the ET were removed)


def apply_et_rule(seg: np.ndarray, threshold: int, convention: str = "nnunet") -> np.ndarray:
    """A copy of ``seg`` where the enhancing tumour becomes necrosis when it has fewer than ``threshold`` voxels.

    TC and WT are unchanged in every convention: necrosis belongs to both.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 voxels, got {threshold}")
    (et_label,) = region_labels(convention)["ET"]
    out = seg.copy()
    et = seg == et_label
    if 0 < int(et.sum()) < threshold:
        out[et] = NECROSIS_LABEL[convention]
    return out


def et_case_stats(pred: np.ndarray, ref: np.ndarray, convention: str = "nnunet") -> EtStats:
    """What the rule can do to one case: its ET size and its ET Dice with and without the ET."""
    from nnunet_msfen.evaluation.metrics import dice  # SciPy stays out of `nnunet-msfen --help`

    (et_label,) = region_labels(convention)["ET"]
    pred_et, ref_et = pred == et_label, ref == et_label
    return int(pred_et.sum()), dice(pred_et, ref_et), dice(np.zeros_like(pred_et), ref_et)


def mean_et_dice(stats: List[EtStats], threshold: int) -> float:
    """Mean ET Dice over cases after the rule with ``threshold``."""
    return float(np.mean([removed if 0 < n < threshold else kept for n, kept, removed in stats]))


def choose_threshold(stats: List[EtStats]) -> Tuple[int, List[Tuple[int, float]]]:
    """The threshold maximising mean ET Dice, and the table (threshold, mean ET Dice) it was chosen from.

    Only thresholds just above an observed ET size change anything, so those (and 0, no postprocessing) are
    the candidates; ties go to the smallest threshold, the one changing the fewest predictions.
    """
    if not stats:
        raise ValueError("no cases to choose a threshold on")
    candidates = sorted({0} | {n + 1 for n, _, _ in stats if n > 0})
    table = [(t, mean_et_dice(stats, t)) for t in candidates]
    best = max(table, key=lambda row: (row[1], -row[0]))
    return best[0], table


def threshold_study(pairs: Mapping[str, Tuple[Optional[str], str]], convention: str = "nnunet") -> Dict:
    """Choose the threshold on ``{case: (prediction or None, reference)}``: the result holds the threshold, the
    mean ET Dice before and after, the number of cases changed and the candidate table."""
    stats = []
    for case in sorted(pairs):
        pred, ref, _ = read_case(*pairs[case], convention)
        stats.append(et_case_stats(pred, ref, convention))
    threshold, table = choose_threshold(stats)
    return {"threshold": threshold, "labels": convention, "et_dice_before": mean_et_dice(stats, 0),
            "et_dice_after": mean_et_dice(stats, threshold),
            "cases_changed": sum(1 for n, _, _ in stats if 0 < n < threshold), "n_cases": len(stats),
            "table": [{"threshold": t, "mean_et_dice": d} for t, d in table]}
