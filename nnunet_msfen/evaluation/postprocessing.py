"""The BraTS enhancing-tumour postprocessing rule (``nnunet-msfen postprocess``).

nnU-Net's BraTS 2020 winning entry (Isensee et al., "nnU-Net for Brain Tumor Segmentation", BrainLes 2020,
arXiv:2011.00848): when a case's predicted enhancing tumour has fewer voxels than a threshold, all of it becomes
necrosis. A false-positive ET in a case without ET costs a whole Dice point (BraTS scores it 0 instead of 1), so
removing small ET predictions pays on average. The threshold is chosen on cross-validation predictions to
maximise mean ET Dice under the BraTS empty-mask convention, then applied to new predictions.
"""
import argparse
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from nnunet_msfen.evaluation.evaluate import folder_pairs, read_case
from nnunet_msfen.evaluation.io import SEG_SUFFIX, list_cases, read_json
from nnunet_msfen.io.atomic import staged_files, write_image, write_json
from nnunet_msfen.io.images import read_image, to_image
from nnunet_msfen.labels import CONVENTIONS, NECROSIS_LABEL, check_labels, region_labels

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
    changed = []
    # staged: a corrupt file half-way leaves nothing behind in out_dir
    with staged_files(out_dir) as staging:
        for case in cases:
            path = os.path.join(in_dir, case + SEG_SUFFIX)
            seg, geometry = read_image(path, label=True)
            check_labels(seg, convention, path)
            out = apply_et_rule(seg, threshold, convention)
            if not np.array_equal(out, seg):
                changed.append(case)
            write_image(staging / (case + SEG_SUFFIX), to_image(out.astype(np.uint8), geometry))
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
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _threshold_from_json(path: str) -> int:
    data = read_json(path)
    threshold = data.get("threshold") if isinstance(data, dict) else None
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise ValueError(f"{path}: no valid 'threshold' (a voxel count >= 0), found {threshold!r}")
    return threshold


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen postprocess``."""
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.io.outputs import claim_output

    if not os.path.isdir(args.input):
        raise CommandError(f"input folder not found: {args.input}")
    if Path(args.input).resolve() != Path(args.output).resolve():  # the same folder: postprocess_folder's error
        claim_output(args.output, args.overwrite, folder=True)
    try:
        study = None
        if args.ref is not None:
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
