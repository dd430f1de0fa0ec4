"""Pool ``benchmark-accuracy`` runs on disjoint test folders into one paired comparison of two trainers.

    nnunet-msfen pool-accuracy SOURCE [SOURCE ...] [-tr A B] [-o DIR]

A SOURCE is a benchmark-accuracy workdir (the trainers of its accuracy.json, i.e. of the last benchmark-accuracy
call in it; a workdir with neither trainer there is an error) or one of its evaluation/TRAINER__PLANS__CONFIG.json
files (to take one trainer from a workdir, also one trained by an earlier call). Run benchmark-accuracy once per
split of a k-fold partition of your cases (the --test folders disjoint, each --train folder the rest), then pool
the workdirs: every test case is one paired sample.
Prints and writes (pooled.md, pooled.json in DIR): the pooled means of Dice and HD95 per region, each source's
means beside its iterations and seconds per iteration, the mean Dice over WT/TC/ET per case compared paired (B - A,
bootstrap 95% CI, Wilcoxon), the paired statistics of nnunet-msfen compare (bootstrap 95% CI of B - A, Wilcoxon,
Holm over all region-metric rows) and the Dice of every case.
With --lesion-wise-postprocessing every source's predictions are first postprocessed with the lesion-wise component
rules chosen on the same trainer's other sources (leave-one-source-out) and scored again: the comparison a user
ranked on BraTS 2023+ lesion-wise scores cares about (the evaluation files' prediction folders must still exist).
"""
import argparse
from pathlib import Path
from typing import List, Mapping

from nnunet_msfen.labels import REGIONS
from nnunet_msfen.experiments.accuracy_settings import DEFAULT_TRAINERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen pool-accuracy``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE",
                        help="benchmark-accuracy workdir, or an evaluation/*.json file of one")
    parser.add_argument("-tr", "--trainers", nargs=2, default=list(DEFAULT_TRAINERS), metavar=("A", "B"),
                        help="reference and candidate trainer (default: nnUNetTrainer nnUNetTrainerMSFEN)")
    parser.add_argument("-o", "--output", type=Path, default=Path("accuracy_pool"),
                        help="folder for pooled.md and pooled.json (default ./accuracy_pool)")
    parser.add_argument("--lesion-wise-postprocessing", action="store_true",
                        help="score each source after lesion-wise component rules chosen on its trainer's other "
                             "sources")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _f(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def means_table(pooled: Mapping) -> List[List[str]]:
    """Pooled means per trainer: Dice per region, their mean, HD95 per region."""
    header = ["trainer", *(f"Dice {r}" for r in REGIONS), "mean Dice", *(f"HD95 {r}" for r in REGIONS)]
    rows = [[name, *(_f(m[r]["dice"], 3) for r in REGIONS), _f(sum(m[r]["dice"] for r in REGIONS) / len(REGIONS), 3),
             *(_f(m[r]["hd95"], 1) for r in REGIONS)] for name, m in pooled["means"].items()]
    return [header] + rows


def splits_table(pooled: Mapping) -> List[List[str]]:
    """Each source: its test cases, mean Dice per region and the training it bought."""
    header = ["trainer", "source", "test cases", *(f"Dice {r}" for r in REGIONS), "iterations", "s/it", "min trained"]
    rows = [[s["trainer"], s["source"], ", ".join(s["cases"]), *(_f(s["dice"][r], 3) for r in REGIONS),
             str(s["iterations"] or "n/a"), _f(s["seconds_per_iteration"], 2), _f(s["training_minutes"], 1)]
            for s in pooled["splits"]]
    return [header] + rows


def mean_dice_line(pooled: Mapping) -> str:
    """B - A in the per-case mean Dice over the regions, with its bootstrap CI and Wilcoxon p."""
    a, b = pooled["names"]
    m = pooled["mean_dice"]
    return (f"Mean Dice over {'/'.join(REGIONS)}, paired over {len(pooled['cases'])} cases: {a} {m['A']:.3f}, "
            f"{b} {m['B']:.3f}; {b} - {a} {m['diff']:+.3f} [95% CI {m['ci_low']:+.3f}, {m['ci_high']:+.3f}], "
            f"Wilcoxon p {m['p']:.3g}")


def _markdown_table(table: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])] + \
           ["| " + " | ".join(row) + " |" for row in table[1:]] + [""]


def markdown(pooled: Mapping) -> str:
    """The pooled report as Markdown."""
    from nnunet_msfen.evaluation.report import stats_rows
    from nnunet_msfen.experiments.accuracy_pool import case_table

    a, b = pooled["names"]
    n_splits = len({tuple(s["cases"]) for s in pooled["splits"]})
    lines = [f"# {b} vs {a}: {len(pooled['cases'])} test cases from {n_splits} test folder(s)", "",
             pooled["verdict"], "", mean_dice_line(pooled), "", "## Pooled means (HD95 in mm)", ""]
    lines += _markdown_table(means_table(pooled))
    lines += ["## Per source", ""] + _markdown_table(splits_table(pooled))
    if "lesion_wise_postprocessing" in pooled:
        lines += ["## Lesion-wise postprocessing (chosen on each trainer's other sources)", ""]
        lines += _markdown_table([["trainer", "source", *REGIONS]] + [
            [trainer, source, *(str(rules.get(r, "-")) for r in REGIONS)]
            for trainer, by_source in pooled["lesion_wise_postprocessing"].items() for source, rules in by_source.items()])
    header, rows = stats_rows(pooled)
    lines += ["## Paired statistics", ""] + _markdown_table([header] + rows)
    header, rows = case_table(pooled)
    lines += ["## Dice per case", ""] + _markdown_table([header] + rows)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen pool-accuracy``."""
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.experiments.accuracy_pool import _run_names, load_sources, pool
    from nnunet_msfen.experiments.accuracy_pool_postprocessing import postprocess_runs
    from nnunet_msfen.io.atomic import write_json, write_text
    from nnunet_msfen.io.outputs import claim_output

    claim_output(args.output, args.overwrite, folder=True)
    try:
        runs = load_sources(args.sources, tuple(args.trainers))
        pooled = pool(runs, tuple(args.trainers))  # checks the sources before the slow postprocessing
        rules = postprocess_runs(runs, _run_names(args.trainers)) if args.lesion_wise_postprocessing else None
        if rules is not None:
            pooled = pool(runs, tuple(args.trainers))
            pooled["lesion_wise_postprocessing"] = rules
    except ValueError as e:
        raise CommandError(str(e)) from None
    for table in (means_table(pooled), splits_table(pooled)):
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table), end="\n\n")
    for trainer, by_source in (rules or {}).items():
        for source, chosen in by_source.items():
            print(f"lesion-wise rules of {trainer} for {source} (chosen on its other sources): {dict(chosen)}")
    print(mean_dice_line(pooled))
    print(pooled["verdict"])
    write_json(args.output / "pooled.json", pooled)
    write_text(args.output / "pooled.md", markdown(pooled))
    print(f"\nreport: {args.output / 'pooled.md'} and {args.output / 'pooled.json'}")
    return 0
