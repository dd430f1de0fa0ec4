"""The BraTS enhancing-tumour postprocessing rule (``nnunet-msfen postprocess``).

nnU-Net's BraTS 2020 winning entry (Isensee et al., "nnU-Net for Brain Tumor Segmentation", BrainLes 2020,
arXiv:2011.00848): when a case's predicted enhancing tumour has fewer voxels than a threshold, all of it becomes
necrosis. A false-positive ET in a case without ET costs a whole Dice point (BraTS scores it 0 instead of 1), so
removing small ET predictions pays on average. The threshold is chosen on cross-validation predictions to
maximise mean ET Dice under the BraTS empty-mask convention, then applied to new predictions.
"""
import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from nnunet_msfen.evaluation.io import (SEG_SUFFIX, check_same_geometry, list_cases, read_json, read_segmentation,
                                        write_json, write_segmentation)
from nnunet_msfen.evaluation.regions import CONVENTIONS, NECROSIS_LABEL, check_convention, check_labels

EtStats = Tuple[int, float, float]  # (predicted ET voxels, ET Dice kept, ET Dice if the ET were removed)


def apply_et_rule(seg: np.ndarray, threshold: int, convention: str = "nnunet") -> np.ndarray:
    """A copy of ``seg`` where the enhancing tumour becomes necrosis when it has fewer than ``threshold`` voxels.

    TC and WT are unchanged in every convention: necrosis belongs to both.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 voxels, got {threshold}")
    (et_label,) = check_convention(convention)["ET"]
    out = seg.copy()
    et = seg == et_label
    if 0 < int(et.sum()) < threshold:
        out[et] = NECROSIS_LABEL[convention]
    return out


def _et_dice(pred_et: np.ndarray, ref_et: np.ndarray) -> float:
    total = int(pred_et.sum()) + int(ref_et.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred_et, ref_et).sum()) / total


def et_case_stats(pred: np.ndarray, ref: np.ndarray, convention: str = "nnunet") -> EtStats:
    """What the rule can do to one case: its ET size and its ET Dice with and without the ET."""
    (et_label,) = check_convention(convention)["ET"]
    pred_et, ref_et = pred == et_label, ref == et_label
    return int(pred_et.sum()), _et_dice(pred_et, ref_et), _et_dice(np.zeros_like(pred_et), ref_et)


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


def _case_stats(job: Tuple[Optional[str], str, str]) -> EtStats:
    pred_path, ref_path, convention = job
    ref, ref_geometry = read_segmentation(ref_path)
    if pred_path is None:
        return et_case_stats(np.zeros_like(ref), ref, convention)
    pred, pred_geometry = read_segmentation(pred_path)
    check_same_geometry(pred_geometry, ref_geometry, pred_path, ref_path)
    check_labels(pred, convention, pred_path)
    return et_case_stats(pred, ref, convention)


def threshold_study(pairs: Mapping[str, Tuple[Optional[str], str]], convention: str = "nnunet") -> Dict:
    """Choose the threshold on ``{case: (prediction or None, reference)}``: the result holds the threshold, the
    mean ET Dice before and after, the number of cases changed and the candidate table."""
    stats = [_case_stats((pairs[c][0], pairs[c][1], convention)) for c in sorted(pairs)]
    threshold, table = choose_threshold(stats)
    return {"threshold": threshold, "labels": convention, "et_dice_before": mean_et_dice(stats, 0),
            "et_dice_after": mean_et_dice(stats, threshold),
            "cases_changed": sum(1 for n, _, _ in stats if 0 < n < threshold), "n_cases": len(stats),
            "table": [{"threshold": t, "mean_et_dice": d} for t, d in table]}


def postprocess_folder(in_dir: str, out_dir: str, threshold: int, convention: str = "nnunet") -> List[str]:
    """Apply the rule to every label map of ``in_dir``, writing files of the same names to ``out_dir``.

    All files are processed into a staging folder and moved in only when every one succeeded; returns the
    changed cases.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 voxels, got {threshold}")
    cases = list_cases(in_dir)
    if not cases:
        raise ValueError(f"no {SEG_SUFFIX} files in {in_dir}")
    if Path(in_dir).resolve() == Path(out_dir).resolve():
        raise ValueError(f"output folder must differ from the input folder {in_dir}: predictions are not overwritten")
    os.makedirs(out_dir, exist_ok=True)
    # write into a hidden staging folder first: a corrupt file half-way leaves nothing behind in out_dir
    staging = tempfile.mkdtemp(prefix=".postprocess.", dir=out_dir)
    changed = []
    try:
        for case in cases:
            path = os.path.join(in_dir, case + SEG_SUFFIX)
            seg, geometry = read_segmentation(path)
            check_labels(seg, convention, path)
            out = apply_et_rule(seg, threshold, convention)
            if not np.array_equal(out, seg):
                changed.append(case)
            write_segmentation(os.path.join(staging, case + SEG_SUFFIX), out, geometry)
        for case in cases:
            os.replace(os.path.join(staging, case + SEG_SUFFIX), os.path.join(out_dir, case + SEG_SUFFIX))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return changed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen postprocess``."""
    parser.add_argument("input", help="folder of predicted label maps (*.nii.gz)")
    parser.add_argument("-o", "--output", required=True, help="folder for the postprocessed label maps")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--threshold", type=int, help="ET voxel threshold to apply")
    how.add_argument("--threshold-from", metavar="JSON",
                     help="postprocessing.json written by `compare` or by an earlier --ref run")
    how.add_argument("--ref", help="reference folder: choose the threshold on INPUT (cross-validation "
                                   "predictions) against it, then apply it")
    parser.add_argument("--labels", default="nnunet", choices=sorted(CONVENTIONS), help="label convention")


def _threshold_from_json(path: str) -> int:
    data = read_json(path)
    threshold = data.get("threshold") if isinstance(data, dict) else None
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise ValueError(f"{path}: no valid 'threshold' (a voxel count >= 0), found {threshold!r}")
    return threshold


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen postprocess``."""
    from nnunet_msfen.errors import CommandError

    if not os.path.isdir(args.input):
        raise CommandError(f"input folder not found: {args.input}")
    try:
        study = None
        if args.ref is not None:
            from nnunet_msfen.evaluation.evaluate import folder_pairs
            study = threshold_study(folder_pairs(args.input, args.ref), args.labels)
            threshold = study["threshold"]
        elif args.threshold_from is not None:
            threshold = _threshold_from_json(args.threshold_from)
        else:
            threshold = args.threshold
        changed = postprocess_folder(args.input, args.output, threshold, args.labels)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if study is not None:
        write_json(os.path.join(args.output, "postprocessing.json"), study)
        print(f"chosen threshold {threshold} voxels: mean ET Dice {study['et_dice_before']:.4f} -> "
              f"{study['et_dice_after']:.4f} on {study['n_cases']} cases")
    print(f"ET rule (threshold {threshold} voxels) changed {len(changed)} case(s); wrote {args.output}")
    return 0
