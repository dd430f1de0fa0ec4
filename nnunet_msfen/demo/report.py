"""The demo's scores: the model's metrics on the held-out cases beside two trivial baselines, as a table.

Baselines, scored with the very same code (``evaluate_arrays``):

* ``empty``: background everywhere, which is also the constant majority-label guess (background is by far the
  most frequent label at every position, since tumours are placed at random);
* ``whole brain``: every brain voxel (non-zero FLAIR) labelled enhancing tumour, so inside WT, TC and ET: the
  best a guess that ignores the image contrast can do for recall.
"""
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from nnunet_msfen.labels import REGIONS

TABLE_METRICS: Tuple[Tuple[str, str], ...] = (
    ("dice", "Dice"), ("iou", "IoU"), ("hd95", "HD95 mm"), ("sensitivity", "Sens"), ("specificity", "Spec"),
    ("precision", "Prec"), ("lesion_dice", "LesDice"), ("lesion_hd95", "LesHD95"), ("small_lesion_dice", "SmallDice"))
FLAIR_CHANNEL = 3
Mean = Mapping[str, Mapping[str, Optional[float]]]


def load_case(case_id: str, images_dir: Path, labels_dir: Path, predictions_dir: Optional[Path] = None):
    """(FLAIR image, reference, prediction or None, spacing in array order) of one case, arrays (z, y, x)."""
    import SimpleITK as sitk

    from nnunet_msfen.io.images import read_image, spacing_zyx

    image = sitk.GetArrayFromImage(sitk.ReadImage(str(images_dir / f"{case_id}_{FLAIR_CHANNEL:04d}.nii.gz")))
    reference, geometry = read_image(labels_dir / f"{case_id}.nii.gz", label=True)
    prediction = None
    if predictions_dir is not None:
        prediction, _ = read_image(predictions_dir / f"{case_id}.nii.gz", label=True)
    return image, reference, prediction, spacing_zyx(geometry)


def trivial_baselines(case_ids: List[str], images_dir: Path, labels_dir: Path) -> Dict[str, Dict]:
    """``{"empty": mean metrics, "whole brain": mean metrics}`` over ``case_ids`` (see the module docstring)."""
    from nnunet_msfen.evaluation.evaluate import evaluate_arrays, mean_results

    per_case: Dict[str, Dict[str, Dict]] = {"empty": {}, "whole brain": {}}
    for case_id in case_ids:
        image, reference, _, spacing = load_case(case_id, images_dir, labels_dir)
        guesses = {"empty": np.zeros_like(reference), "whole brain": np.where(image > 0, 3, 0).astype(reference.dtype)}
        for name, guess in guesses.items():
            per_case[name][case_id] = evaluate_arrays(guess, reference, spacing)
    return {name: mean_results(cases) for name, cases in per_case.items()}


def _cell(value: Optional[float], metric: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if "hd95" in metric else f"{value:.3f}"


def format_table(rows: Mapping[str, Mean]) -> str:
    """A text table: per region (WT, TC, ET), one line per named result (model first, then baselines)."""
    name_width = max(len(n) for n in rows) + 2
    header = f"{'region':<7}{'':<{name_width}}" + "".join(f"{label:>10}" for _, label in TABLE_METRICS)
    lines = [header, "-" * len(header)]
    for region in REGIONS:
        for i, (name, mean) in enumerate(rows.items()):
            cells = "".join(f"{_cell(mean[region][m], m):>10}" for m, _ in TABLE_METRICS)
            lines.append(f"{region if i == 0 else '':<7}{name:<{name_width}}{cells}")
    return "\n".join(lines)


def margins_over_trivial(model: Mean, baselines: Mapping[str, Mean]) -> Dict[str, float]:
    """Per region: the model's mean Dice minus the best baseline's."""
    return {r: model[r]["dice"] - max(b[r]["dice"] for b in baselines.values()) for r in REGIONS}


def verdict(margins: Mapping[str, float], clear_margin: float = 0.2) -> str:
    """One line saying whether the model beats the trivial guesses by at least ``clear_margin`` Dice everywhere."""
    gaps = ", ".join(f"{r} {m:+.3f}" for r, m in margins.items())
    if all(m >= clear_margin for m in margins.values()):
        return f"Clearly better than trivial: mean Dice above the best trivial guess by {gaps}."
    return (f"NOT clearly better than trivial in every region (Dice margin over the best trivial guess: {gaps}); "
            f"train longer with --iterations.")
