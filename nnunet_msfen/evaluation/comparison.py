"""The numbers of a two-model comparison (statistics, cost, curves, postprocessing) and writing its report.

The regions are those of the scoring (``scoring.Scoring``): WT, TC, ET for the label conventions, the task's
regions with a BraTS task.
"""
import dataclasses
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nnunet_msfen.evaluation.evaluate import Labels, evaluate_pairs, save_results
from nnunet_msfen.evaluation.io import SEG_SUFFIX
from nnunet_msfen.evaluation.metrics import HIGHER_IS_BETTER
from nnunet_msfen.evaluation.scoring import Scoring, scoring_for
from nnunet_msfen.evaluation.stats import bootstrap_ci, holm, wilcoxon_p
from nnunet_msfen.io.atomic import write_json
from nnunet_msfen.io.images import read_image
from nnunet_msfen.labels import CONVENTIONS

TESTED_METRICS: Tuple[str, ...] = ("dice", "hd95", "lesion_dice", "lesion_hd95", "sensitivity", "precision")
ALPHA = 0.05


def _describe(values: Sequence[float]) -> Dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def stats_table(per_case_a: Mapping, per_case_b: Mapping, names: Tuple[str, str],
                regions: Optional[Sequence[str]] = None) -> List[Dict]:
    """One row per region and tested metric: descriptive statistics of A and B, mean difference B - A with a
    paired bootstrap 95% CI, Wilcoxon p, Holm-corrected p over all rows, and a verdict. ``regions``: those of
    the per-case results (in their order) when not given."""
    cases = sorted(per_case_a)
    if sorted(per_case_b) != cases:
        raise ValueError("the two models were evaluated on different cases")
    if not cases:
        raise ValueError("no cases to compare")
    rows = []
    for region in regions if regions is not None else list(per_case_a[cases[0]]):
        for metric in TESTED_METRICS:
            a = [per_case_a[c][region][metric] for c in cases]
            b = [per_case_b[c][region][metric] for c in cases]
            diff, low, high = bootstrap_ci(a, b)
            rows.append({"region": region, "metric": metric, "A": _describe(a), "B": _describe(b), "diff": diff,
                         "ci_low": low, "ci_high": high, "p": wilcoxon_p(a, b)})
    for row, p_holm in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = float(p_holm)
        row["verdict"] = row_verdict(row, names)
    return rows


def row_verdict(row: Mapping, names: Tuple[str, str]) -> str:
    """"B better" / "A better" when the Holm p is below ALPHA and the CI excludes 0, else no difference."""
    excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    if row["p_holm"] >= ALPHA or not excludes_zero:
        return "no significant difference"
    b_better = (row["diff"] > 0) == HIGHER_IS_BETTER[row["metric"]]
    return f"{names[1] if b_better else names[0]} better"


def overall_verdict(rows: List[Mapping], names: Tuple[str, str], n_cases: int) -> str:
    """A plain-words summary of the table."""
    b_wins = [r for r in rows if r["verdict"] == f"{names[1]} better"]
    a_wins = [r for r in rows if r["verdict"] == f"{names[0]} better"]
    rule = (f"Holm-corrected Wilcoxon p < {ALPHA} and a bootstrap 95% CI of the paired difference excluding 0, "
            f"{len(rows)} region-metric comparisons, {n_cases} cases")
    if not b_wins and not a_wins:
        return f"No significant difference between {names[1]} and {names[0]} on any comparison ({rule})."
    parts = []
    for winner, loser, wins in ((names[1], names[0], b_wins), (names[0], names[1], a_wins)):
        if wins:
            what = ", ".join(f"{r['region']} {r['metric']} ({r['diff']:+.3f})" for r in wins)
            parts.append(f"{winner} is significantly better than {loser} on {len(wins)} of {len(rows)}: {what}")
    return "; ".join(parts) + f" ({rule}; differences are {names[1]} - {names[0]})."


def _curves_for(pairs: Mapping, scoring: Scoring) -> Tuple[Optional[Dict], str]:
    """ROC/PR curves per region from the ``.npz`` files beside the predictions, or None and why not. A region
    the model has no output channel for (a task region a region-based model does not train) gets no curve."""
    from nnunet_msfen.evaluation.io import read_json
    from nnunet_msfen.evaluation.probabilities import accumulate, curves, region_channels

    preds = [p for p, _ in pairs.values() if p is not None]
    npz = [p[: -len(SEG_SUFFIX)] + ".npz" for p in preds]
    if not preds or not all(os.path.isfile(f) for f in npz):
        return None, "not available: the predictions have no .npz probabilities (train/predict with --npz)"
    # nnU-Net copies dataset.json to the trainer folder (fold_x/validation/../..) and to predict outputs
    folder = Path(preds[0]).parent
    candidates = [folder / "dataset.json", folder.parent.parent / "dataset.json"]
    found = [c for c in candidates if c.is_file()]
    if not found:
        return None, f"not available: no dataset.json beside the predictions ({candidates[0]} or {candidates[1]})"
    dataset_json, channels = read_json(found[0]), {}
    for region, labels in scoring.regions.items():
        try:  # region by region: e.g. GLI 2024 reports NETC and SNFH, which nnU-Net trains only inside WT/TC
            channels.update(region_channels(dataset_json, {region: labels})[1])
        except ValueError:
            continue
    if not channels:
        return None, f"not available: {found[0]} has no output channel for any of {list(scoring.regions)}"
    hist: Dict[str, np.ndarray] = {}
    for case, (pred, ref) in pairs.items():
        if pred is None:
            continue
        with np.load(pred[: -len(SEG_SUFFIX)] + ".npz") as data:
            probs = data["probabilities"]
        accumulate(hist, probs, scoring.region_masks(read_image(ref, label=True)[0]), channels)
    return {region: curves(h) for region, h in hist.items()}, ""


def _overlay_cases(per_case_b: Mapping, setup: Mapping) -> List[Dict]:
    """Best, median and worst case by B's mean Dice over the regions, with the arrays for the overlays."""
    def mean_dice(case: str) -> float:
        return float(np.mean([scores["dice"] for scores in per_case_b[case].values()]))

    ranked = sorted(per_case_b, key=mean_dice)
    picks = [("best", ranked[-1]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[0])]
    out = []
    for label, case in picks:
        ref_path = setup["pairs"][0][case][1]
        ref = read_image(ref_path, label=True)[0]
        preds = [read_image(p[case][0], label=True)[0] if p[case][0] else np.zeros_like(ref) for p in setup["pairs"]]
        image = None
        raw = setup.get("raw_images")
        if raw is not None and (raw / f"{case}_0000{SEG_SUFFIX}").is_file():
            image = read_image(raw / f"{case}_0000{SEG_SUFFIX}")[0]
        out.append({"label": label, "case": case, "image": image, "ref": ref, "preds": preds,
                    "dice_b": mean_dice(case)})
    return out


def timed_inference(setup: Mapping, device: Optional[str]) -> Dict[str, Dict[str, object]]:
    """Per model: the prediction time of one case (the first, the same for both) with the final checkpoint of the
    fold that held it out, or why it was not measured. ``device`` None: not measured (switched off)."""
    from nnunet_msfen.evaluation.cost import inference_time

    names, raw = setup["names"], setup.get("raw_images")
    if device is None:
        return {n: {"seconds": None, "why": "not measured (--no-inference-timing)"} for n in names}
    if raw is None:
        return {n: {"seconds": None, "why": "not measured (raw images not found under $nnUNet_raw)"} for n in names}
    case = sorted(setup["pairs"][0])[0]
    images = sorted(raw.glob(f"{case}_[0-9][0-9][0-9][0-9]{SEG_SUFFIX}"))
    out = {}
    for name, folds, pairs in zip(names, setup["folds"], setup["pairs"]):
        pred = pairs[case][0]
        fold_dir = Path(pred).parent.parent if pred else None  # FOLD/validation/CASE.nii.gz
        if not images or fold_dir is None or fold_dir not in folds:
            out[name] = {"seconds": None, "why": f"not measured (no images or model for case {case})"}
            continue
        if not (fold_dir / "checkpoint_final.pth").is_file():
            out[name] = {"seconds": None, "why": f"not measured (no checkpoint_final.pth in {fold_dir.name})"}
            continue
        try:
            seconds = inference_time(fold_dir, images, device)
        except Exception as e:  # a model folder nnU-Net cannot load: the report says so, the comparison stands
            out[name] = {"seconds": None, "why": f"not measured (nnU-Net could not predict with {fold_dir}: "
                                                 f"{type(e).__name__}: {e})"}
            continue
        out[name] = {"seconds": seconds, "case": case, "fold": fold_dir.name, "device": device}
    return out


def compare_and_report(setup: Mapping, labels: Labels = "nnunet", num_processes: int = 1,
                       inference_device: Optional[str] = "cpu") -> Dict[str, str]:
    """Evaluate both sides of ``setup`` (from ``compare._resolve``; optional ``labels`` and ``task``, the
    command's arguments, are stored with the lesion-wise choice so that ``postprocess --from`` can apply it) with
    ``labels`` (a convention or a task's ``Scoring``), run the statistics and the postprocessing studies, time
    one prediction per model (cross-validation mode, ``inference_device``; None skips it), and write the
    report; returns the verdict and the report paths."""
    from nnunet_msfen.evaluation.component_postprocessing import choose_rules_on_pairs
    from nnunet_msfen.evaluation.cost import training_cost
    from nnunet_msfen.evaluation.figures import make_figures
    from nnunet_msfen.evaluation.postprocessing import threshold_study
    from nnunet_msfen.evaluation.report import write_report

    scoring = labels if isinstance(labels, Scoring) else scoring_for(labels)
    # the ET rule needs a convention's label values; a convention's scoring is named after it, a task's is not
    convention = scoring.name if scoring.name in CONVENTIONS else None
    regions = list(scoring.regions)
    names, out = setup["names"], Path(setup["out"])
    results = [evaluate_pairs(p, scoring, num_processes) for p in setup["pairs"]]
    rows = stats_table(results[0]["per_case"], results[1]["per_case"], names, regions)
    n_cases = len(results[0]["per_case"])
    stored_as = {"label_convention": setup.get("labels", convention), "task": setup.get("task")}
    comparison = {
        "names": list(names), "source": setup["source"], "labels": scoring.name, "task": stored_as["task"],
        "regions": regions, "lesion_wise": dataclasses.asdict(scoring.lesion_wise), "n_cases": n_cases,
        "missing": {names[i]: results[i]["missing"] for i in range(2)},
        "folds": {names[i]: [f.name for f in setup["folds"][i]] for i in range(2)},
        "table": rows, "verdict": overall_verdict(rows, names, n_cases),
        "descriptive": {names[i]: results[i]["mean"] for i in range(2)},
        "cost": {names[i]: training_cost(setup["folds"][i]) if setup["folds"][i] else None for i in range(2)},
        "inference": timed_inference(setup, inference_device) if all(setup["folds"]) else None,
        "postprocessing": ({names[i]: threshold_study(setup["pairs"][i], convention) for i in range(2)}
                           if convention is not None else None),
        "lesion_wise_postprocessing": {names[i]: {**choose_rules_on_pairs(setup["pairs"][i], scoring), **stored_as}
                                       for i in range(2)},
    }
    curve_sets = [_curves_for(p, scoring) for p in setup["pairs"]]
    comparison["curves_note"] = {names[i]: curve_sets[i][1] for i in range(2)}
    comparison["auc"] = {names[i]: ({r: (c or {}).get("auc") for r, c in curve_sets[i][0].items()}
                                    if curve_sets[i][0] else None) for i in range(2)}
    figures = make_figures(results, names, [c[0] for c in curve_sets],
                           _overlay_cases(results[1]["per_case"], setup))
    # every number is computed before the first file is written, so a bad input leaves no partial report
    out.mkdir(parents=True, exist_ok=True)
    for i, tag in enumerate(("A", "B")):
        save_results(results[i], str(out / f"metrics_{tag}.json"))
        if comparison["postprocessing"] is not None:
            write_json(out / f"postprocessing_{tag}.json", comparison["postprocessing"][names[i]])
        write_json(out / f"postprocessing_lesion_wise_{tag}.json", comparison["lesion_wise_postprocessing"][names[i]])
    write_json(out / "compare.json", comparison)
    md, html = write_report(out, comparison, figures)
    return {"verdict": comparison["verdict"], "report_md": str(md), "report_html": str(html)}
