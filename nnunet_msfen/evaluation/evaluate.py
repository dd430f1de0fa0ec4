"""Evaluate a folder of predicted label maps against a folder of references (``nnunet-msfen evaluate``).

Writes ``{"per_case": {CASE: {"WT": {metric: value}, "TC": ..., "ET": ...}}, "mean": {...}, "missing": [...]}``
to OUT.json and the same numbers, one row per case and region, to OUT.csv beside it. A reference case without a
prediction is scored as an empty prediction and listed under "missing": dropping it would flatter the model.
"""
import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from nnunet_msfen.evaluation.io import SEG_SUFFIX, list_cases
from nnunet_msfen.io.atomic import write_csv, write_json
from nnunet_msfen.io.images import Geometry, check_same_geometry, read_image, spacing_zyx
from nnunet_msfen.evaluation.scoring import Scoring, add_scoring_arguments, scoring_for

CaseResult = Dict[str, Dict[str, Optional[float]]]
Labels = Union[str, Scoring]  # a convention name (nnunet, legacy, 2023) or a task's scoring


def _scoring(labels: Labels) -> Scoring:
    return labels if isinstance(labels, Scoring) else scoring_for(labels)


def evaluate_arrays(pred: np.ndarray, ref: np.ndarray, spacing: Tuple[float, ...],
                    convention: Labels = "nnunet") -> CaseResult:
    """Metrics of one case, given label arrays and the spacing in array axis order: per region the voxel-wise ones
    (``metrics``), the BraTS 2023 lesion-wise ones (``lesion_wise``) and the current official ones (``panoptic``)."""
    # SciPy is imported here, not at module level: the CLI imports this module for every `nnunet-msfen --help`
    from nnunet_msfen.evaluation.lesion_wise import lesion_wise
    from nnunet_msfen.evaluation.metrics import region_metrics
    from nnunet_msfen.evaluation.panoptic import panoptic_metrics

    scoring = _scoring(convention)
    rule = scoring.lesion_wise
    pred_regions, ref_regions = scoring.region_masks(pred), scoring.region_masks(ref)
    result = {}
    for region in scoring.regions:
        scores: Dict[str, Optional[float]] = region_metrics(pred_regions[region], ref_regions[region], spacing)
        scores.update(lesion_wise(pred_regions[region], ref_regions[region], spacing, rule.dilation,
                                  rule.threshold(region), rule.min_predicted_voxels, rule.count_false_positives))
        scores.update(panoptic_metrics(pred_regions[region], ref_regions[region], spacing))
        result[region] = scores
    return result


def read_case(pred_path: Optional[str], ref_path: str,
              convention: Labels = "nnunet") -> Tuple[np.ndarray, np.ndarray, Geometry]:
    """The prediction (zeros when ``pred_path`` is None: a missing prediction), the reference and the reference's
    geometry, checked: both on one grid, every label one of ``convention``; ``ValueError`` naming the file."""
    scoring = _scoring(convention)
    ref, ref_geometry = read_image(ref_path, label=True)
    scoring.check_labels(ref, ref_path)
    if pred_path is None:
        return np.zeros_like(ref), ref, ref_geometry
    pred, pred_geometry = read_image(pred_path, label=True)
    check_same_geometry(pred_geometry, ref_geometry, pred_path, ref_path)
    scoring.check_labels(pred, pred_path)
    return pred, ref, ref_geometry


def evaluate_case(pred_path: Optional[str], ref_path: str, convention: Labels = "nnunet") -> CaseResult:
    """Metrics of one case read from disk; ``pred_path`` None means a missing (empty) prediction."""
    pred, ref, ref_geometry = read_case(pred_path, ref_path, convention)
    return evaluate_arrays(pred, ref, spacing_zyx(ref_geometry), convention)


def _evaluate_star(job: Tuple[Optional[str], str, str]) -> CaseResult:
    return evaluate_case(*job)


def mean_results(per_case: Mapping[str, CaseResult]) -> CaseResult:
    """Mean of each metric over cases; values that are None (no small lesion in a case) are left out."""
    if not per_case:
        raise ValueError("no cases to average")
    first = next(iter(per_case.values()))
    mean: CaseResult = {}
    for region, metrics in first.items():
        mean[region] = {}
        for metric in metrics:
            values = [c[region][metric] for c in per_case.values() if c[region][metric] is not None]
            mean[region][metric] = float(np.mean(values)) if values else None
    return mean


def evaluate_pairs(pairs: Mapping[str, Tuple[Optional[str], str]], convention: Labels = "nnunet",
                   num_processes: int = 1) -> Dict[str, object]:
    """Evaluate ``{case: (prediction path or None, reference path)}``; the result has per_case, mean, missing."""
    scoring = _scoring(convention)
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    cases = sorted(pairs)
    jobs = [(pairs[c][0], pairs[c][1], scoring) for c in cases]
    if num_processes == 1 or len(jobs) < 2:
        results = [_evaluate_star(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(num_processes, len(jobs))) as pool:
            results = list(pool.map(_evaluate_star, jobs))
    per_case = dict(zip(cases, results))
    return {"per_case": per_case, "mean": mean_results(per_case), "missing": [c for c in cases if pairs[c][0] is None],
            "labels": scoring.name}


def folder_pairs(pred_dir: str, ref_dir: str) -> Dict[str, Tuple[Optional[str], str]]:
    """``{case: (prediction path or None when missing, reference path)}`` for every reference of ``ref_dir``;
    ``ValueError`` when a folder is missing, the references are empty or a prediction has no reference."""
    ref_cases = list_cases(ref_dir)
    if not ref_cases:
        raise ValueError(f"no {SEG_SUFFIX} files in the reference folder {ref_dir}")
    pred_cases = set(list_cases(pred_dir))
    extra = sorted(pred_cases - set(ref_cases))
    if extra:
        raise ValueError(f"predictions without a reference in {ref_dir}: {extra[:5]}{' ...' if len(extra) > 5 else ''}")
    return {c: (os.path.join(pred_dir, c + SEG_SUFFIX) if c in pred_cases else None,
                os.path.join(ref_dir, c + SEG_SUFFIX)) for c in ref_cases}


def evaluate_folders(pred_dir: str, ref_dir: str, convention: Labels = "nnunet", num_processes: int = 1) -> Dict:
    """Evaluate every reference case of ``ref_dir`` against the file of the same name in ``pred_dir``."""
    results = evaluate_pairs(folder_pairs(pred_dir, ref_dir), convention, num_processes)
    results.update(pred=str(pred_dir), ref=str(ref_dir))
    return results


def csv_path_for(json_path: str) -> Path:
    """OUT.json -> OUT.csv (the CSV lives beside the JSON)."""
    p = Path(json_path)
    return p.with_suffix(".csv") if p.suffix == ".json" else p.with_name(p.name + ".csv")


def save_results(results: Mapping, json_path: str) -> Path:
    """Write the JSON and the CSV beside it, each atomically; returns the CSV path."""
    per_case, mean = results["per_case"], results["mean"]
    metrics: List[str] = list(next(iter(mean.values())))
    rows = [[case, region] + ["" if v[m] is None else v[m] for m in metrics]
            for case, scores in list(per_case.items()) + [("mean", mean)] for region, v in scores.items()]
    csv_path = csv_path_for(json_path)
    write_json(json_path, dict(results))
    write_csv(csv_path, ["case", "region"] + metrics, rows)
    return csv_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen evaluate``."""
    parser.add_argument("pred", help="folder of predicted label maps (*.nii.gz)")
    parser.add_argument("ref", help="folder of reference label maps with the same file names")
    parser.add_argument("-o", "--output", required=True, help="OUT.json (OUT.csv is written beside it)")
    add_scoring_arguments(parser, "both folders")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.json / OUT.csv")


def format_mean(mean: Mapping[str, Mapping[str, Optional[float]]]) -> str:
    """A small text table of the mean metrics, for the terminal."""
    keys = ["dice", "hd95", "lesion_dice", "lesion_hd95", "small_lesion_dice", "sensitivity", "precision"]
    lines = ["region " + " ".join(f"{k:>17}" for k in keys)]
    for region, v in mean.items():
        lines.append(f"{region:<6} " + " ".join(f"{'n/a' if v[k] is None else f'{v[k]:.4f}':>17}" for k in keys))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen evaluate``."""
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.io.outputs import claim_output

    for folder, what in ((args.pred, "prediction"), (args.ref, "reference")):
        if not os.path.isdir(folder):
            raise CommandError(f"{what} folder not found: {folder}")
    if args.num_processes < 1:
        raise CommandError(f"-np must be >= 1, got {args.num_processes}")
    for path in (args.output, csv_path_for(args.output)):
        claim_output(path, args.overwrite, folder=False)
    if not list_cases(args.pred):
        raise CommandError(f"no prediction (*{SEG_SUFFIX}) in {args.pred}: nothing to evaluate")
    try:
        results = evaluate_folders(args.pred, args.ref, scoring_for(args.labels, args.task), args.num_processes)
    except ValueError as e:
        raise CommandError(str(e)) from None
    csv_path = save_results(results, args.output)
    print(format_mean(results["mean"]))
    if results["missing"]:
        print(f"missing predictions (scored as empty): {', '.join(results['missing'])}")
    print(f"wrote {args.output} and {csv_path}")
    return 0
