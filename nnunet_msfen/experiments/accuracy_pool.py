"""Pool several ``benchmark-accuracy`` runs on disjoint test folders into one cross-validation: every test case
of every run is one paired sample, and two trainers are compared case by case (paired bootstrap CI, Wilcoxon,
Holm) with the statistics of ``nnunet-msfen compare``.

A source is either a ``benchmark-accuracy`` workdir (every trainer of its ``accuracy.json``) or one evaluation file
of such a workdir, ``evaluation/TRAINER__PLANS__CONFIG.json`` (that trainer only: the way to take one trainer from
a workdir that also holds an older run of the other).
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from nnunet_msfen.evaluation.comparison import overall_verdict, stats_table
from nnunet_msfen.evaluation.evaluate import mean_results
from nnunet_msfen.evaluation.stats import bootstrap_ci, wilcoxon_p
from nnunet_msfen.labels import REGIONS
from nnunet_msfen.experiments.accuracy_settings import TRAINER_ALIASES

REPORT_FILE = "accuracy.json"
EVALUATION_FOLDER = "evaluation"


@dataclass
class TrainerRun:
    """One trainer's predictions of one test folder: per-case metrics and, when recorded, its training row."""

    trainer: str
    source: Path
    per_case: Dict[str, Dict]
    training: Optional[Dict] = field(default=None)


def _read_json(path: Path) -> Dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None


def _report_rows(workdir: Path) -> Tuple[Dict, Dict[str, Dict]]:
    report = _read_json(workdir / REPORT_FILE)
    try:
        return report["settings"], {row["trainer"]: row for row in report["results"]}
    except (KeyError, TypeError):
        raise ValueError(f"{workdir / REPORT_FILE} is not a benchmark-accuracy report (no settings/results)") from None


def _run_from_evaluation(path: Path, training: Optional[Dict]) -> TrainerRun:
    evaluation = _read_json(path)
    if not isinstance(evaluation.get("per_case"), dict) or not evaluation["per_case"]:
        raise ValueError(f"{path} holds no per-case metrics (not an evaluation file of benchmark-accuracy)")
    return TrainerRun(path.name.split("__")[0], path, evaluation["per_case"], training)


def load_source(source: Path) -> List[TrainerRun]:
    """The trainer runs of a workdir or of one evaluation file; ``ValueError`` naming the path if it is neither."""
    source = Path(source)
    if source.is_dir():
        if not (source / REPORT_FILE).is_file():
            raise ValueError(f"{source} is not a benchmark-accuracy workdir (no {REPORT_FILE})")
        settings, rows = _report_rows(source)
        runs = []
        for trainer, row in rows.items():
            path = source / EVALUATION_FOLDER / f"{trainer}__{settings['plans']}__{settings['config']}.json"
            if not path.is_file():
                raise ValueError(f"{source}: {REPORT_FILE} lists {trainer} but {path} is missing")
            runs.append(_run_from_evaluation(path, row))
        return runs
    if source.is_file() and source.suffix == ".json" and source.parent.name == EVALUATION_FOLDER:
        workdir = source.parent.parent
        rows = _report_rows(workdir)[1] if (workdir / REPORT_FILE).is_file() else {}
        return [_run_from_evaluation(source, rows.get(source.name.split("__")[0]))]
    raise ValueError(f"{source} is neither a benchmark-accuracy workdir nor an {EVALUATION_FOLDER}/*.json file of one")


def _run_names(trainers: Sequence[str]) -> Tuple[str, ...]:
    """``-tr`` names as their runs are called (``nnUNetTrainer`` -> its time-budget variant, as benchmark-accuracy)."""
    return tuple(TRAINER_ALIASES.get(t, t) for t in trainers)


def load_sources(sources: Sequence[Path], trainers: Tuple[str, str]) -> List[TrainerRun]:
    """The runs of every source (``load_source``); ``ValueError`` for a workdir that holds neither trainer in its
    ``accuracy.json``, which would otherwise drop out of the pool unnoticed (its report lists only the trainers of
    the last ``benchmark-accuracy`` call in it; their evaluation files take earlier ones)."""
    names = set(_run_names(trainers))
    runs: List[TrainerRun] = []
    for source in sources:
        found = load_source(source)
        if Path(source).is_dir() and not names & {r.trainer for r in found}:
            raise ValueError(f"{source}: its {REPORT_FILE} has no run of {' or '.join(sorted(names))} (it lists "
                             f"{sorted(r.trainer for r in found)}); pass the run's {EVALUATION_FOLDER}/TRAINER__*.json "
                             f"files instead, or leave the workdir out")
        runs += found
    return runs


def _merge(runs: Sequence[TrainerRun], trainer: str) -> Dict[str, Dict]:
    merged: Dict[str, Dict] = {}
    origin: Dict[str, Path] = {}
    for run in runs:
        for case, metrics in run.per_case.items():
            if case in merged:
                raise ValueError(f"test case {case} of {trainer} is in two sources, {origin[case]} and {run.source}: "
                                 f"pooled test folders must be disjoint (pass an evaluation file to pick one run)")
            merged[case], origin[case] = metrics, run.source
    return merged


def pool(runs: Sequence[TrainerRun], trainers: Tuple[str, str]) -> Dict[str, object]:
    """Compare ``trainers[1]`` against ``trainers[0]`` over the union of the test cases of ``runs``.

    ``-tr`` names (``nnUNetTrainer``) are mapped to their time-budget variants as in ``benchmark-accuracy``. Runs of
    other trainers are ignored. ``ValueError`` when a trainer has no run, a case appears twice for one trainer,
    or the two trainers were tested on different cases.
    """
    names = _run_names(trainers)
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"give two different trainers to compare, got {list(trainers)}")
    chosen = {name: [r for r in runs if r.trainer == name] for name in names}
    for name, found in chosen.items():
        if not found:
            raise ValueError(f"no run of {name} among the sources (found: {sorted({r.trainer for r in runs})})")
    per_case = {name: _merge(found, name) for name, found in chosen.items()}
    only = {name: sorted(set(per_case[name]) - set(per_case[other])) for name, other in zip(names, names[::-1])}
    if any(only.values()):
        raise ValueError("the trainers were tested on different cases: "
                         + "; ".join(f"only {n}: {', '.join(c)}" for n, c in only.items() if c))
    table = stats_table(per_case[names[0]], per_case[names[1]], names)
    return {
        "names": list(names),
        "cases": sorted(per_case[names[0]]),
        "means": {name: mean_results(per_case[name]) for name in names},
        "per_case_dice": {name: {c: {r: m[r]["dice"] for r in REGIONS} for c, m in per_case[name].items()}
                          for name in names},
        "splits": [_split_row(run) for name in names for run in chosen[name]],
        "table": table,
        "mean_dice": mean_dice_comparison(per_case[names[0]], per_case[names[1]]),
        "verdict": overall_verdict(table, names, len(per_case[names[0]])),
    }


def mean_dice_comparison(per_case_a: Mapping[str, Dict], per_case_b: Mapping[str, Dict]) -> Dict[str, float]:
    """The headline number of a cross-validation: each case's Dice averaged over WT, TC and ET, then B - A paired
    over the cases (mean, bootstrap 95% CI, Wilcoxon p; one comparison, so no Holm correction). ``per_case_a`` and
    ``per_case_b`` hold the same cases (``pool`` checks)."""
    cases = sorted(per_case_a)
    a = [sum(per_case_a[c][r]["dice"] for r in REGIONS) / len(REGIONS) for c in cases]
    b = [sum(per_case_b[c][r]["dice"] for r in REGIONS) / len(REGIONS) for c in cases]
    diff, low, high = bootstrap_ci(a, b)
    return {"A": sum(a) / len(a), "B": sum(b) / len(b), "diff": diff, "ci_low": low, "ci_high": high,
            "p": wilcoxon_p(a, b)}


def _split_row(run: TrainerRun) -> Dict[str, object]:
    mean = mean_results(run.per_case)
    training = run.training or {}
    return {"trainer": run.trainer, "source": str(run.source), "cases": sorted(run.per_case),
            "dice": {r: mean[r]["dice"] for r in REGIONS}, "hd95": {r: mean[r]["hd95"] for r in REGIONS},
            "iterations": training.get("iterations"), "seconds_per_iteration": training.get("seconds_per_iteration"),
            "training_minutes": training.get("training_minutes"), "parameters": training.get("parameters")}


def case_table(pooled: Mapping[str, object]) -> Tuple[List[str], List[List[str]]]:
    """Per case: each trainer's Dice of WT/TC/ET (the samples the statistics pair)."""
    names, dice = pooled["names"], pooled["per_case_dice"]
    header = ["case"] + [f"{n} Dice {r}" for n in names for r in REGIONS]
    rows = [[case] + [f"{dice[n][case][r]:.3f}" for n in names for r in REGIONS] for case in pooled["cases"]]
    return header, rows
