"""Pool ``nnunet-msfen robustness`` studies into one: the splits of a cross-validation (disjoint test cases) and
studies of other trainers on the same cases, plus paired comparisons between trainers subset by subset.

Each study folder holds ``evaluation/TRAINER/SUBSET.json`` (per-case scores) and ``summary.json`` (the stem's mean
weights). Pooling concatenates the cases of every trainer and subset; a case scored twice for the same trainer and
subset is an error, never averaged. The stem's weights are pooled as a case-weighted mean of the studies' means.
"""
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nnunet_msfen.evaluation.io import read_json
from nnunet_msfen.evaluation.robustness import format_diff, subset_name, subsets
from nnunet_msfen.labels import REGIONS

Results = Dict[str, Dict[str, dict]]  # trainer -> subset name -> {"per_case": {case: {region: {metric: value}}}}
Attention = Dict[str, Dict[str, Dict[str, float]]]  # trainer -> subset name -> sequence -> mean weight


def load_study(folder: Path) -> Tuple[Results, Attention, Dict[str, List[str]]]:
    """One study folder as (results, attention, cases per trainer).

    Raises:
        ValueError: naming the folder or file when it is not a finished robustness study.
    """
    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise ValueError(f"{folder} is not a finished robustness study (no summary.json)")
    summary = read_json(folder / "summary.json")
    known = {subset_name(s) for s in subsets()}
    results: Results = {}
    attention: Attention = {}
    cases: Dict[str, List[str]] = {}
    for trainer, study in summary.items():
        cases[trainer] = list(study["cases"])
        results[trainer], attention[trainer] = {}, {}
        for name, row in study["subsets"].items():
            if name not in known:
                raise ValueError(f"{folder / 'summary.json'}: unknown subset {name!r}")
            path = folder / "evaluation" / trainer / f"{name}.json"
            if not path.is_file():
                raise ValueError(f"{folder}: missing {path.relative_to(folder)} for {trainer}, subset {name}")
            results[trainer][name] = {"per_case": read_json(path)["per_case"]}
            if row.get("attention"):
                attention[trainer][name] = dict(row["attention"])
    return results, attention, cases


def pool_studies(studies: Sequence[Tuple[str, Results, Attention, Dict[str, List[str]]]]) -> Tuple[Results, Attention]:
    """Merge ``(source name, results, attention, cases)`` of several studies.

    Raises:
        ValueError: when a case appears in two studies for the same trainer and subset, or when a trainer's studies
            do not all cover the same subsets.
    """
    results: Results = {}
    weights: Dict[Tuple[str, str], List[Tuple[Mapping[str, float], int]]] = {}  # (trainer, subset) -> [(means, cases)]
    origin: Dict[Tuple[str, str, str], str] = {}
    subsets_of: Dict[str, Tuple[set, str]] = {}
    for source, study_results, study_attention, study_cases in studies:
        for trainer, by_subset in study_results.items():
            names = set(by_subset)
            if trainer in subsets_of and subsets_of[trainer][0] != names:
                raise ValueError(f"{trainer}: {source} has subsets {sorted(names)}, {subsets_of[trainer][1]} has "
                                 f"{sorted(subsets_of[trainer][0])}; pool studies of the same subsets")
            subsets_of.setdefault(trainer, (names, source))
            for name, result in by_subset.items():
                merged = results.setdefault(trainer, {}).setdefault(name, {"per_case": {}})["per_case"]
                for case, scores in result["per_case"].items():
                    key = (trainer, name, case)
                    if key in origin:
                        raise ValueError(f"case {case} of {trainer}, subset {name} is in both {origin[key]} and "
                                         f"{source}; pool studies of disjoint cases")
                    origin[key] = source
                    merged[case] = scores
                if study_attention.get(trainer, {}).get(name):
                    weights.setdefault((trainer, name), []).append((study_attention[trainer][name],
                                                                    len(study_cases[trainer])))
    attention: Attention = {}
    for (trainer, name), parts in weights.items():
        total = sum(n for _, n in parts)
        attention.setdefault(trainer, {})[name] = {s: sum(w[s] * n for w, n in parts) / total for s in parts[0][0]}
    return results, attention


def _mean_dice(scores: Mapping) -> Optional[float]:
    values = [scores[r]["dice"] for r in REGIONS if scores[r]["dice"] is not None]
    return float(np.mean(values)) if len(values) == len(REGIONS) else None


def versus(results: Results, a: str, b: str) -> Dict[str, Dict[str, Optional[dict]]]:
    """Paired difference ``b - a`` of Dice per region and of the mean Dice over regions, per subset both trainers
    have, over the cases both scored: ``{subset: {region or "mean": {mean, low, high, n} or None}}``.

    Raises:
        ValueError: naming a trainer that is not in ``results``.
    """
    from nnunet_msfen.evaluation.stats import bootstrap_ci

    for name in (a, b):
        if name not in results:
            raise ValueError(f"trainer {name!r} is not in the studies; they have {sorted(results)}")
    out: Dict[str, Dict[str, Optional[dict]]] = {}
    for name in [n for n in results[a] if n in results[b]]:
        pa, pb = results[a][name]["per_case"], results[b][name]["per_case"]
        cases = sorted(set(pa) & set(pb))
        row: Dict[str, Optional[dict]] = {}
        for key in (*REGIONS, "mean"):
            if key == "mean":
                pairs = [(_mean_dice(pa[c]), _mean_dice(pb[c])) for c in cases]
            else:
                pairs = [(pa[c][key]["dice"], pb[c][key]["dice"]) for c in cases]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            if len(pairs) < 2:
                row[key] = None
                continue
            mean, low, high = bootstrap_ci(*zip(*pairs))
            row[key] = {"mean": mean, "low": low, "high": high, "n": len(pairs)}
        out[name] = row
    return out


def versus_table(diffs: Mapping[str, Mapping[str, Optional[dict]]]) -> Tuple[List[str], List[List[str]]]:
    """A row per subset: the paired Dice difference per region and of the mean, with its 95% CI and case count."""
    header = ["sequences present", *(f"Dice {r}" for r in REGIONS), "mean Dice", "cases"]
    rows = [[name, *(format_diff(row[r]) for r in REGIONS), format_diff(row["mean"]),
             str(max((d["n"] for d in row.values() if d), default=0))] for name, row in diffs.items()]
    return header, rows
