"""The report of ``benchmark-accuracy``: per trainer the mean Dice and HD95 of WT, TC and ET over the test cases,
beside what the budget bought (epochs, iterations) and cost (seconds per iteration, parameters).

Seconds per iteration = the summed epoch times / training iterations, where nnU-Net's epoch time (its log's
``Epoch time:``) also covers the epoch's validation iterations (5 for the time-budget trainers, next to 25
training iterations) and the checkpoint, so it overstates a bare training step by ~10-20 %, alike for all trainers.
The last epoch of a time-budget training is usually cut off within its iterations; it counts with the iterations
it ran.
"""
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from nnunet_msfen.labels import REGIONS
from nnunet_msfen.experiments.accuracy_workdir import AccuracyWorkdir
from nnunet_msfen.experiments.train_worker import STATS_FILE
from nnunet_msfen.io.atomic import write_text


def evaluate_trainer(wd: AccuracyWorkdir, trainer: str) -> Dict[str, object]:
    """Score ``trainer``'s predictions against the test labels (``evaluation/*.json``/``.csv``) and combine the
    means with the training statistics into one report row."""
    from nnunet_msfen.evaluation.evaluate import evaluate_folders, save_results

    results = evaluate_folders(str(wd.predictions(trainer)), str(wd.test_raw / "labelsTr"), "nnunet")
    wd.evaluation(trainer).parent.mkdir(exist_ok=True)
    save_results(results, str(wd.evaluation(trainer)))
    stats = json.loads((wd.fold_dir(trainer) / STATS_FILE).read_text())
    return report_row(trainer, results["mean"], stats, sorted(results["per_case"]))


def report_row(trainer: str, mean: Mapping[str, Mapping[str, Optional[float]]], stats: Mapping[str, object],
               cases: List[str]) -> Dict[str, object]:
    """One trainer's row from the mean metrics (evaluate.py) and the training statistics (train_worker.py)."""
    epoch_seconds = list(stats["epoch_seconds"])
    per_epoch = stats["iterations_per_epoch"]
    # the last epoch of a time-budget training can be cut off within its iterations: the median uses whole epochs
    whole = epoch_seconds[:-1] if stats.get("partial_epoch_iterations") is not None else epoch_seconds
    iterations = stats["iterations"]
    return {
        "trainer": trainer,
        "dice": {r: mean[r]["dice"] for r in REGIONS},
        "hd95": {r: mean[r]["hd95"] for r in REGIONS},
        "mean_dice": statistics.fmean(mean[r]["dice"] for r in REGIONS),
        "epochs": stats["epochs"],
        "iterations": stats["iterations"],
        "seconds_per_iteration": sum(epoch_seconds) / iterations if iterations else None,
        "median_seconds_per_iteration": statistics.median(whole) / per_epoch if whole else None,
        "training_minutes": sum(epoch_seconds) / 60,
        "parameters": stats["parameters"],
        "test_cases": cases,
        "training": dict(stats),
    }


def _f(value: Optional[float], digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


COLUMNS = ["trainer", "Dice WT", "Dice TC", "Dice ET", "HD95 WT", "HD95 TC", "HD95 ET", "epochs", "iterations",
           "min trained", "s/it", "params (M)"]


def table_cells(rows: List[Mapping]) -> List[List[str]]:
    """The table's cells, one list per trainer, in ``COLUMNS`` order."""
    return [[row["trainer"], *(_f(row["dice"][r], 4) for r in REGIONS), *(_f(row["hd95"][r], 2) for r in REGIONS),
             str(row["epochs"]), str(row["iterations"]), _f(row["training_minutes"], 1),
             _f(row["seconds_per_iteration"], 2),
             f"{row['parameters'] / 1e6:.2f}"] for row in rows]


def format_table(rows: List[Mapping]) -> str:
    """A fixed-width text table for the terminal."""
    cells = [COLUMNS] + table_cells(rows)
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in cells)


def settings_summary(wd: AccuracyWorkdir) -> Dict[str, object]:
    """The settings and the machine, for the JSON and the Markdown header."""
    s = wd.settings
    import torch

    from nnunet_msfen.benchmark.machine import describe, one_line

    return {"train": str(Path(s.train).absolute()), "test": str(Path(s.test).absolute()), "config": s.config,
            "minutes": s.minutes if s.iterations is None else None, "iterations": s.iterations, "budget": s.budget,
            "trainers": list(s.trainers), "nnunet_trainers": list(s.nnunet_trainers), "plans": s.plans,
            "batch_size": s.batch_size, "seed": s.seed, "device": s.device, "tta": s.tta,
            "da_processes": s.da_processes, "machine": one_line(describe(torch.device("cpu"))),
            "written": time.strftime("%Y-%m-%d %H:%M:%S")}


def markdown(rows: List[Mapping], summary: Mapping[str, object]) -> str:
    """The report as Markdown: settings, then the table."""
    s = summary
    equal = "number of iterations" if s.get("iterations") else "training budget"
    budget = s.get("budget") or f"{s['minutes']:g} min"  # records written before the iterations mode
    lines = [f"# Accuracy at an equal {equal} ({s['config']}, {budget} per trainer)", "",
             f"- train: `{s['train']}`; test: `{s['test']}` ({len(rows[0]['test_cases'])} cases: "
             f"{', '.join(rows[0]['test_cases'])})",
             f"- plans `{s['plans']}`"
             + (f" (batch size {s['batch_size']})" if s["batch_size"] is not None else "")
             + f", fold all, seed {s['seed']}, device {s['device']}, test-time mirroring "
             + ("on" if s["tta"] else "off"),
             f"- machine {s['machine']}, written {s['written']}",
             "- Dice and HD95 (mm): means over the test cases; min trained: sum of the epoch times (a time-budget "
             "trainer stops before the first training iteration past the budget); s/it: minutes trained / training "
             "iterations (the epoch times include their validation iterations)", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c) + " |" for c in table_cells(rows)]
    return "\n".join(lines) + "\n"


def write_report(wd: AccuracyWorkdir, rows: List[Mapping]) -> None:
    """``accuracy.json`` (settings and rows) and ``accuracy.md`` in the workdir."""
    summary = settings_summary(wd)
    # json.dumps, not write_json: a diverged training's NaN loss (in "training") is kept as it was logged
    write_text(wd.report_json, json.dumps({"settings": summary, "results": list(rows)}, indent=2))
    write_text(wd.report_md, markdown(rows, summary))
