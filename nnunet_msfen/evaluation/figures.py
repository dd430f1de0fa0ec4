"""The comparison report's figures, rendered with matplotlib (Agg) to PNG bytes; one panel per region of the
per-case results (WT, TC, ET, or a task's regions)."""
import io
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Figure = Tuple[str, str, bytes]  # (file stem, caption, PNG bytes)
COLORS = ("tab:blue", "tab:orange")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _values(result: Mapping, region: str, metric: str) -> List[float]:
    return [c[region][metric] for c in result["per_case"].values()]


def _regions(result: Mapping) -> List[str]:
    """The regions of an evaluation result, in its order."""
    return list(result["mean"])


def box_plots(results: Sequence[Mapping], names: Sequence[str], metric: str) -> bytes:
    """Box plots of one metric per region, A beside B."""
    import matplotlib.pyplot as plt

    regions = _regions(results[0])
    # squeeze=False: a one-region task (MEN-RT's GTV) still gets a row of axes
    fig, axes = plt.subplots(1, len(regions), figsize=(3.2 * len(regions), 3.2), squeeze=False)
    for ax, region in zip(axes[0], regions):
        ax.boxplot([_values(r, region, metric) for r in results], tick_labels=list(names))
        ax.set_title(f"{region} {metric}")
        ax.tick_params(axis="x", labelrotation=15, labelsize=7)
    return _png(fig)


def paired_scatter(results: Sequence[Mapping], names: Sequence[str], metric: str = "dice") -> bytes:
    """Per-case A vs B scatter per region: points above the diagonal are cases where B scores higher."""
    import matplotlib.pyplot as plt

    regions = _regions(results[0])
    fig, axes = plt.subplots(1, len(regions), figsize=(3.2 * len(regions), 3.2), squeeze=False)
    for ax, region in zip(axes[0], regions):
        a, b = _values(results[0], region, metric), _values(results[1], region, metric)
        ax.scatter(a, b, s=12)
        lo, hi = min(a + b), max(a + b)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(names[0], fontsize=8)
        ax.set_ylabel(names[1], fontsize=8)
        ax.set_title(f"{region} {metric} per case")
    return _png(fig)


def roc_pr(curves: Sequence[Optional[Mapping]], names: Sequence[str], regions: Sequence[str]) -> bytes:
    """ROC (top row) and precision-recall (bottom row) curves per region for the models that have them."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(regions), figsize=(3.2 * len(regions), 6.2), squeeze=False)
    for col, region in enumerate(regions):
        for curve_set, name, color in zip(curves, names, COLORS):
            c = curve_set.get(region) if curve_set else None
            if c is None:
                continue
            axes[0, col].plot(c["fpr"], c["tpr"], color=color, label=f"{name} AUC {c['auc']:.3f}")
            axes[1, col].plot(c["recall"], c["precision"], color=color, label=f"{name} AP {c['ap']:.3f}")
        axes[0, col].set(title=f"{region} ROC", xlabel="false positive rate", ylabel="true positive rate")
        axes[1, col].set(title=f"{region} precision-recall", xlabel="recall", ylabel="precision")
        for ax in axes[:, col]:
            if ax.lines:
                ax.legend(fontsize=7)
    return _png(fig)


def overlays(cases: Sequence[Mapping], names: Sequence[str]) -> bytes:
    """Reference, A and B on the axial slice with the most reference tumour, one row per picked case."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["none", "tab:green", "tab:red", "yellow", "tab:purple"])
    fig, axes = plt.subplots(len(cases), 3, figsize=(8.4, 2.9 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases):
        z = int(np.argmax((case["ref"] > 0).sum(axis=(1, 2))))
        background = case["image"][z] if case["image"] is not None else np.zeros(case["ref"].shape[1:])
        for ax, seg, title in zip(row, [case["ref"]] + list(case["preds"]), ["reference"] + list(names)):
            ax.imshow(background, cmap="gray")
            ax.imshow(np.ma.masked_equal(seg[z], 0), cmap=cmap, vmin=0, vmax=4, alpha=0.6, interpolation="nearest")
            ax.set_title(f"{case['label']}: {case['case']}\n{title}", fontsize=8)
            ax.axis("off")
    return _png(fig)


def make_figures(results: Sequence[Mapping], names: Sequence[str], curves: Sequence[Optional[Mapping]],
                 overlay_cases: Sequence[Mapping]) -> List[Figure]:
    """All report figures as (file stem, caption, PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    figures = [
        ("box_dice", "Dice per region (box plots over cases)", box_plots(results, names, "dice")),
        ("box_hd95", "HD95 (mm) per region", box_plots(results, names, "hd95")),
        ("paired_dice", f"Per-case Dice, {names[0]} (x) vs {names[1]} (y)", paired_scatter(results, names)),
    ]
    if any(curves):
        figures.append(("roc_pr", "Voxel-wise ROC and precision-recall curves from the saved probabilities",
                        roc_pr(curves, names, _regions(results[0]))))
    labels = ", ".join(c["label"] for c in overlay_cases)
    figures.append(("overlays", f"Cases by {names[1]}'s mean Dice ({labels}): reference, {names[0]}, {names[1]}",
                    overlays(overlay_cases, names)))
    return figures
