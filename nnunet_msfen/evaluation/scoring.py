"""What the evaluation scores: which label values a label map may hold, the regions (name -> labels) and the
lesion-wise parameters, for the label conventions up to 2023 and for every BraTS task since.

- ``scoring_for("nnunet" | "legacy" | "2023")``: WT, TC, ET of the convention, the 2023 glioma lesion-wise rule
  (dilation 3, 50 mm^3), as the evaluation always did;
- ``scoring_for("brats", task)``: files in the task's BraTS labels (as the challenge ships and scores them), the
  regions the challenge reports for the task and its lesion-wise parameters (``nnunet_msfen.brats_tasks``);
- ``scoring_for("nnunet", task)``: files in the nnU-Net labels ``convert-brats`` gave the task (nnU-Net's
  predictions before ``export-brats``), the same regions, mapped to those labels.
"""
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

import numpy as np

from nnunet_msfen.brats_tasks import LesionWise
from nnunet_msfen.labels import CONVENTIONS, VALUE_HINTS, allowed_labels, check_convention, region_labels

LABEL_CHOICES = tuple(CONVENTIONS) + ("brats",)
GLI_2023 = LesionWise(3, 50.0)


@dataclass(frozen=True)
class Scoring:
    """Label values allowed, regions scored (in the files' label values) and the lesion-wise rule."""

    name: str
    allowed: Tuple[int, ...]
    regions: Mapping[str, Tuple[int, ...]]
    lesion_wise: LesionWise
    hints: Mapping[int, str] = field(default_factory=dict)

    def check_labels(self, seg: np.ndarray, name: str) -> None:
        """``ValueError`` naming the file and the values a label map holds outside ``allowed``."""
        unknown = sorted(set(np.unique(seg).tolist()) - set(self.allowed))
        if unknown:
            hints = "".join(f"; {self.hints[v]}" for v in unknown if v in self.hints)
            raise ValueError(f"{name}: unknown label value(s) {unknown} for the {self.name!r} labels "
                             f"(allowed: {list(self.allowed)}){hints}")

    def region_masks(self, seg: np.ndarray):
        """Boolean masks of the scored regions."""
        return {region: np.isin(seg, labels) for region, labels in self.regions.items()}


def scoring_for(labels: str = "nnunet", task: Optional[str] = None) -> Scoring:
    """The scoring of label maps in ``labels`` (a convention, or ``brats`` with a ``task``) for ``task``.

    Raises:
        ValueError: for an unknown convention or task, or ``brats`` without a task.
    """
    if task is None:
        if labels == "brats":
            raise ValueError("--labels brats needs --task: the BraTS labels differ from task to task")
        check_convention(labels)
        return Scoring(labels, allowed_labels(labels), dict(region_labels(labels)), GLI_2023,
                       VALUE_HINTS.get(labels, {}))
    from nnunet_msfen.brats_tasks import get_task

    t = get_task(task)
    if labels == "brats":
        return Scoring(f"{t.name} (BraTS labels)", t.allowed_labels(), dict(t.regions), t.lesion_wise,
                       dict(t.value_hints))
    if labels != "nnunet":
        raise ValueError(f"with --task the files hold the task's BraTS labels (brats) or the nnU-Net labels of its "
                         f"converted dataset (nnunet), got {labels!r}")
    regions = {r: tuple(sorted(t.to_nnunet[v] for v in values)) for r, values in t.regions.items()}
    return Scoring(f"{t.name} (nnU-Net labels)", tuple(sorted(set(t.to_nnunet.values()))), regions, t.lesion_wise)


def add_scoring_arguments(parser, folders: str = "both folders") -> None:
    """``--labels`` and ``--task``, the same for every command that scores label maps (``folders``: whose
    labels ``--labels`` names, for the help text)."""
    parser.add_argument("--labels", default="nnunet", choices=sorted(LABEL_CHOICES),
                        help=f"label convention of {folders} (default: nnunet = 1 edema, 2 NCR, 3 ET); with --task: "
                             "nnunet (the task's converted dataset) or brats (the task's own labels)")
    parser.add_argument("--task", default=None, help="a BraTS task since 2023 (gli2024, ped, menrt, ...): its "
                        "regions and lesion-wise parameters (nnunet_msfen.brats_tasks)")
