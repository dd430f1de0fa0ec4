"""Segmentation quality under every subset of the four MRI sequences: the tables, statistics and figure of
``nnunet-msfen robustness``.

For each trainer and each of the 15 non-empty subsets of (T1, T1ce, T2, FLAIR), the test cases are predicted with
the other sequences missing (zero images) and scored; every subset is compared with the full input of the same
trainer, case by case: the mean paired difference of Dice and HD95 with a percentile bootstrap CI (10,000
resamples of cases, seed 0), and the share of the full-input mean Dice the subset keeps. The missing-modality
literature (HeMIS, U-HVED, RFNet, mmFormer, M3AE) reports the same 15 subsets.
"""
from itertools import combinations
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nnunet_msfen.inference.sequences import SEQUENCES
from nnunet_msfen.labels import REGIONS

FULL = "all"


def subsets() -> List[Tuple[str, ...]]:
    """The 15 non-empty subsets of the sequences, the full set first, then by size and in channel order."""
    return [c for k in range(len(SEQUENCES), 0, -1) for c in combinations(SEQUENCES, k)]


def subset_name(subset: Sequence[str]) -> str:
    """``all`` for the full set, else the present sequences joined by ``+``."""
    return FULL if len(subset) == len(SEQUENCES) else "+".join(subset)


def missing_of(subset: Sequence[str]) -> List[str]:
    """The sequences a subset leaves out."""
    return [s for s in SEQUENCES if s not in subset]


def _values(result: Mapping, region: str, metric: str, cases: Sequence[str]) -> List[Optional[float]]:
    return [result["per_case"][c][region][metric] for c in cases]


def summarise(results: Mapping[str, Mapping[str, Mapping]],
              attention: Optional[Mapping[str, Mapping[str, Mapping[str, float]]]] = None) -> Dict[str, object]:
    """``results[trainer][subset name]``: ``evaluate_folders`` results of the same cases. Returns per trainer and
    subset: mean Dice and HD95 per region, the mean Dice over regions and its share of the full input's, and per
    region the paired difference to the full input (mean, 95% CI) for Dice and HD95; ``attention[trainer][subset]``
    (mean stem weight per sequence), when given, is carried along.

    Raises:
        ValueError: when a trainer lacks the full-input result or the results cover different cases.
    """
    from nnunet_msfen.evaluation.stats import bootstrap_ci

    out: Dict[str, object] = {}
    for trainer, by_subset in results.items():
        if FULL not in by_subset:
            raise ValueError(f"{trainer}: no full-input ('{FULL}') result to compare the subsets with")
        cases = sorted(by_subset[FULL]["per_case"])
        rows = {}
        full_mean = None
        for name, result in by_subset.items():
            if sorted(result["per_case"]) != cases:
                raise ValueError(f"{trainer}, subset {name}: other cases than the full input's")
            row: Dict[str, object] = {"dice": {}, "hd95": {}, "vs_full": {}}
            for region in REGIONS:
                for metric in ("dice", "hd95"):
                    values = [v for v in _values(result, region, metric, cases) if v is not None]
                    row[metric][region] = float(np.mean(values)) if values else None
                row["vs_full"][region] = _paired(by_subset[FULL], result, region, cases, bootstrap_ci)
            row["mean_dice"] = float(np.mean([row["dice"][r] for r in REGIONS]))
            if name == FULL:
                full_mean = row["mean_dice"]
            if attention and trainer in attention and name in attention[trainer]:
                row["attention"] = dict(attention[trainer][name])
            rows[name] = row
        for row in rows.values():
            row["share_of_full"] = row["mean_dice"] / full_mean if full_mean else None
        out[trainer] = {"cases": cases, "subsets": rows}
    return out


def _paired(full: Mapping, result: Mapping, region: str, cases: Sequence[str], bootstrap_ci) -> Dict[str, object]:
    """Paired difference subset - full of Dice and HD95 over the cases where both are defined."""
    diff = {}
    for metric in ("dice", "hd95"):
        pairs = [(a, b) for a, b in zip(_values(full, region, metric, cases), _values(result, region, metric, cases))
                 if a is not None and b is not None]
        if len(pairs) < 2:
            diff[metric] = None
            continue
        a, b = zip(*pairs)
        mean, low, high = bootstrap_ci(a, b)
        diff[metric] = {"mean": mean, "low": low, "high": high, "n": len(pairs)}
    return diff


def _num(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_diff(d: Optional[Mapping], digits: int = 3) -> str:
    """A paired difference as ``+0.012 [-0.003, +0.027]`` (mean [95% CI]), ``n/a`` without one."""
    return "n/a" if d is None else f"{d['mean']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"


def table(summary: Mapping, trainer: str) -> Tuple[List[str], List[List[str]]]:
    """One trainer's table: a row per subset, Dice and HD95 per region, Dice difference to the full input."""
    header = (["sequences present", "missing"] + [f"Dice {r}" for r in REGIONS] + ["mean Dice", "of full"]
              + [f"HD95 {r}" for r in REGIONS] + [f"Dice {r} - full [95% CI]" for r in REGIONS])
    rows = []
    for name, row in summary[trainer]["subsets"].items():
        missing = "none" if name == FULL else ", ".join(missing_of(name.split("+")))
        rows.append([name, missing] + [_num(row["dice"][r]) for r in REGIONS] + [_num(row["mean_dice"]),
                    _num(row["share_of_full"], 2)] + [_num(row["hd95"][r], 1) for r in REGIONS]
                    + [format_diff(row["vs_full"][r]["dice"]) for r in REGIONS])
    return header, rows


def attention_table(summary: Mapping, trainer: str) -> Optional[Tuple[List[str], List[List[str]]]]:
    """Mean stem weight per sequence per subset (0 for a missing one), or None without recorded weights."""
    rows = [[name] + [_num(row["attention"].get(s), 2) for s in SEQUENCES]
            for name, row in summary[trainer]["subsets"].items() if row.get("attention")]
    return (["sequences present"] + list(SEQUENCES), rows) if rows else None


def heatmap(summary: Mapping) -> bytes:
    """Mean Dice per subset (rows) and region (columns), one panel per trainer, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunet_msfen.evaluation.figures import _png

    trainers = list(summary)
    names = list(next(iter(summary.values()))["subsets"])
    fig, axes = plt.subplots(1, len(trainers), figsize=(2.6 * len(trainers) + 1.5, 0.32 * len(names) + 1.2),
                             squeeze=False)
    for ax, trainer in zip(axes[0], trainers):
        grid = np.array([[summary[trainer]["subsets"][n]["dice"][r] or 0.0 for r in REGIONS] for n in names])
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(len(REGIONS)), REGIONS)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names), fontsize=7)
        ax.set_title(trainer, fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), label="mean Dice", shrink=0.8)
    return _png(fig)


METHOD = ("A missing sequence is an all-zero image. Differences are paired per case against the same trainer's full "
          "input; the 95% CI is a percentile bootstrap of the mean difference (10,000 resamples, seed 0).")


def write_study(out: Path, summary: Mapping, data: str, extra_sections: Sequence = ()) -> Tuple[Path, Path]:
    """Write ``summary.json``, ``report.md`` and ``report.html`` (tables per trainer, the stem's weights, the
    heat-map) into ``out``; ``data`` says where the cases came from, ``extra_sections`` follow the tables."""
    from nnunet_msfen.evaluation.report import write_report_files
    from nnunet_msfen.io.atomic import write_json

    write_json(out / "summary.json", summary)
    sections = [("Data", f"{data} {METHOD}", None)]
    for trainer in summary:
        sections.append((f"{trainer}: Dice and HD95 per subset", None, table(summary, trainer)))
        weights = attention_table(summary, trainer)
        if weights:
            sections.append((f"{trainer}: the stem's mean weight per sequence", None, weights))
    sections.extend(extra_sections)
    figures = [("heatmap", "Mean Dice per subset of sequences (rows) and region (columns)", heatmap(summary))]
    return write_report_files(out, "Segmentation with missing MRI sequences", sections, figures)
