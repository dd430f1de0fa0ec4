"""The demo's overlay picture: for each held-out case, the axial slice with the most reference tumour, with the
reference contours of WT, TC and ET (top row) and the predicted ones (bottom row) on the FLAIR image."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from nnunet_msfen.labels import REGIONS, region_masks

# one colour per region, far from grey so that a test can find them in the PNG
REGION_COLORS: Dict[str, str] = {"WT": "#00e000", "TC": "#0050ff", "ET": "#ff2020"}
# the outline of TC mostly coincides with ET's (the enhancing rim is the core's outer layer): a wide TC line
# under a thin ET line keeps both visible
LINE_WIDTHS: Dict[str, float] = {"WT": 1.4, "TC": 3.0, "ET": 1.1}
PANEL_INCHES = 2.2
DPI = 100


@dataclass
class OverlayCase:
    """One case: ``image`` (z, y, x) intensities, ``reference`` and ``prediction`` label maps in nnU-Net's
    convention (1 edema, 2 NCR, 3 ET), and the case's Dice per region for the title."""

    case_id: str
    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray
    dice: Dict[str, float]


def tumour_slice(reference: np.ndarray) -> int:
    """Index of the axial (first-axis) slice with the most reference tumour; the middle slice when there is
    none."""
    area = (reference > 0).reshape(reference.shape[0], -1).sum(axis=1)
    return int(np.argmax(area)) if area.any() else reference.shape[0] // 2


def write_overlay(cases: Sequence[OverlayCase], path: Path, sequence: str = "FLAIR") -> Path:
    """Write the PNG (``PANEL_INCHES * DPI`` pixels per panel, two rows, one column per case; every panel names
    ``sequence``, the image under the contours); returns ``path``.

    Raises:
        ValueError: no cases, or a case whose arrays differ in shape (names the case).
    """
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not cases:
        raise ValueError("no cases to draw")
    for c in cases:
        if not c.image.shape == c.reference.shape == c.prediction.shape or c.image.ndim != 3:
            raise ValueError(f"case {c.case_id}: image {c.image.shape}, reference {c.reference.shape} and "
                             f"prediction {c.prediction.shape} must be the same 3-D shape")
    fig, axes = plt.subplots(2, len(cases), figsize=(PANEL_INCHES * len(cases), 2 * PANEL_INCHES + 0.4),
                             squeeze=False)
    for col, case in enumerate(cases):
        z = tumour_slice(case.reference)
        for row, (seg, what) in enumerate(((case.reference, "reference"), (case.prediction, "prediction"))):
            ax = axes[row, col]
            ax.imshow(case.image[z], cmap="gray", interpolation="nearest")
            masks = region_masks(seg[z])
            for region in REGIONS:
                if masks[region].any():
                    ax.contour(masks[region].astype(float), levels=[0.5], colors=REGION_COLORS[region],
                               linewidths=LINE_WIDTHS[region])
            title = case.case_id if row == 0 else "Dice " + " ".join(f"{r} {case.dice[r]:.2f}" for r in REGIONS)
            ax.set_title(f"{title}\n{what} on {sequence}, axial slice {z}", fontsize=7)
            ax.axis("off")
    handles = [Line2D([], [], color=REGION_COLORS[r], lw=2, label=r) for r in REGIONS]
    fig.legend(handles=handles, loc="lower center", ncol=len(REGIONS), fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.08, wspace=0.05, hspace=0.3)
    path = Path(path)
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the size stays figsize * dpi
    plt.close(fig)
    return path
