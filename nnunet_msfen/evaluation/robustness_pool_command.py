"""Pool ``nnunet-msfen robustness`` studies into one report, and compare trainers subset by subset.

    nnunet-msfen pool-robustness STUDY [STUDY ...] -o DIR [--versus A B [--versus C D ...]] [--overwrite]

A STUDY is an output folder of ``nnunet-msfen robustness``. Studies of disjoint test cases (the splits of a
cross-validation) are concatenated case by case; studies of other trainers on the same cases are merged, so a
trainer studied later need not repeat the others. The report (DIR/report.md, report.html, summary.json) has the
tables and heat-map of ``robustness`` over the pooled cases, and for each ``--versus A B`` the paired difference
B - A of Dice per region and of the mean Dice, per subset, with a bootstrap 95% CI: whether a trainer holds up better
than another with the same sequences missing.
"""
import argparse
from pathlib import Path

from nnunet_msfen.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen pool-robustness``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("studies", nargs="+", type=Path, metavar="STUDY", help="output folder of nnunet-msfen robustness")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the pooled report")
    parser.add_argument("--versus", nargs=2, action="append", default=[], metavar=("A", "B"),
                        help="add the paired Dice difference B - A per subset (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen pool-robustness``."""
    from nnunet_msfen.evaluation.robustness import format_diff, summarise, write_study
    from nnunet_msfen.evaluation.robustness_pool import load_study, pool_studies, versus, versus_table
    from nnunet_msfen.io.atomic import write_json
    from nnunet_msfen.io.outputs import claim_output

    out = claim_output(args.output, args.overwrite, folder=True)
    try:
        studies = [(str(folder), *load_study(folder)) for folder in args.studies]
        results, attention = pool_studies(studies)
        summary = summarise(results, attention)
        comparisons = {f"{b} - {a}": versus(results, a, b) for a, b in args.versus}
    except ValueError as e:
        raise CommandError(str(e)) from None
    sections = [(f"{name}: paired Dice difference per subset [95% CI]", None, versus_table(diffs))
                for name, diffs in comparisons.items()]
    cases = sorted({c for study in summary.values() for c in study["cases"]})
    data = f"{len(cases)} test cases pooled from {len(studies)} studies: {', '.join(str(f) for f in args.studies)}."
    md, page = write_study(out, summary, data, sections)
    if comparisons:
        write_json(out / "versus.json", comparisons)
    for name, diffs in comparisons.items():
        print(f"{name}: mean Dice difference per subset")
        for subset, row in diffs.items():
            print(f"  {subset:<16} {format_diff(row['mean'])}" + (f" n={row['mean']['n']}" if row["mean"] else ""))
    print(f"wrote {md}, {page} and {out / 'summary.json'}")
    return 0
