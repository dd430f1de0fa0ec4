"""The BraTS tasks since 2023, each with its own labels and regions (``TASKS``).

A ``BratsTask`` holds one task's file naming, sequences, labels, the regions the challenge reports, the regions
nnU-Net trains and the lesion-wise parameters of the official metrics code (github.com/rachitsaluja/
BraTS-2023-Metrics and BraTS-2024-Metrics, ``get_LesionWiseResults`` of each task's ``metrics_*.py``). The label
conventions of the releases up to 2023 and the WT/TC/ET regions are in ``nnunet_msfen.labels``.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nnunet_msfen.labels import CONVENTIONS, NNUNET_REGIONS, TO_NNUNET, VALUE_HINTS, remap


@dataclass(frozen=True)
class LesionWise:
    """The lesion-wise parameters of one task in the official metrics code.

    ``dilation``: iterations of the 18-neighbourhood dilation of the reference (``dilation_factor``);
    ``volume_threshold``: reference lesions whose volume (voxels x voxel volume, mm^3: voxels at BraTS' 1 mm) is
    at most this are not scored (``lesion_volume_thresh``), ``region_thresholds`` overriding it per region;
    ``min_predicted_voxels``: predicted lesions (merged by the same dilation) of at most this many voxels are
    removed before scoring (PED 2024); ``count_false_positives``: False where the task scores no false positive
    (MEN-RT 2024).
    """

    dilation: int
    volume_threshold: float
    region_thresholds: Mapping[str, float] = field(default_factory=dict)
    min_predicted_voxels: Optional[int] = None
    count_false_positives: bool = True

    def threshold(self, region: str) -> float:
        """The volume threshold (mm^3) of ``region``."""
        return float(self.region_thresholds.get(region, self.volume_threshold))


@dataclass(frozen=True)
class BratsTask:
    """One BraTS task: file naming, sequences, labels, reported regions, nnU-Net's regions, lesion-wise rule.

    ``name`` is the ``--task`` value; a case is the folder ``<case id>`` (matching ``case_pattern``, e.g.
    ``example``) holding ``<case id><sep><sequence>.nii.gz`` per ``sequences`` (nnU-Net channels ``channels``)
    and ``<case id><sep><seg_suffix>.nii.gz``. ``labels`` (value -> short name), ``regions`` (short name -> label
    set) and ``to_nnunet`` (with background 0) are in BraTS label values; ``train_regions`` are nnU-Net label
    sets in nnU-Net's write order (``regions_class_order``); ``value_hints`` say why a value is refused.
    ``convention`` is ``legacy`` or ``2023`` where the task's labels are those of an older convention of this
    module (so that code written for the conventions keeps working), otherwise the task's own name.
    """

    name: str
    title: str
    case_pattern: str
    example: str
    sep: str
    sequences: Tuple[str, ...]
    channels: Tuple[str, ...]
    seg_suffix: str
    labels: Mapping[int, str]
    regions: Mapping[str, Tuple[int, ...]]
    to_nnunet: Mapping[int, int]
    train_regions: Mapping[str, Tuple[int, ...]]
    lesion_wise: LesionWise
    convention: str
    value_hints: Mapping[int, str] = field(default_factory=dict)

    def allowed_labels(self) -> Tuple[int, ...]:
        """Every label value a segmentation of this task may hold, background 0 included."""
        return tuple(sorted({0} | set(self.labels)))

    def to_nnunet_labels(self, arr: np.ndarray) -> np.ndarray:
        """BraTS labels (already checked) -> nnU-Net labels, uint8."""
        return remap(arr, dict(self.to_nnunet))

    def from_nnunet_labels(self, arr: np.ndarray) -> np.ndarray:
        """nnU-Net labels (already checked) -> BraTS labels, uint8."""
        return remap(arr, {v: k for k, v in self.to_nnunet.items()})

    def region_masks(self, seg: np.ndarray) -> Dict[str, np.ndarray]:
        """Boolean masks of the regions the challenge reports, from a label map in this task's BraTS labels."""
        return {region: np.isin(seg, labels) for region, labels in self.regions.items()}


# long names of the regions, as nnU-Net's dataset.json calls them
REGION_NAMES: Dict[str, str] = {
    "WT": "whole tumor", "TC": "tumor core", "ET": "enhancing tumor", "RC": "resection cavity", "CC": "cyst",
    "GTV": "gross tumor volume", "NETC": "non-enhancing tumor core", "ED": "edema",
    "SNFH": "surrounding non-enhancing FLAIR hyperintensity"}
_MODS_2023 = ("t1n", "t1c", "t2w", "t2f")
_CHANNELS = ("T1", "T1ce", "T2", "FLAIR")
_LABELS_2023 = {1: "NETC", 2: "SNFH", 3: "ET"}


def _like_gli2023(name: str, title: str, prefix: str, lesion_wise: LesionWise) -> BratsTask:
    """A task with the GLI 2023 names (another prefix), sequences, labels and regions."""
    return BratsTask(name, title, prefix + r"-[0-9]{5}-[0-9]{3}", prefix + "-00000-000", "-", _MODS_2023, _CHANNELS,
                     "seg", _LABELS_2023, CONVENTIONS["2023"], TO_NNUNET["2023"], NNUNET_REGIONS, lesion_wise,
                     "2023", VALUE_HINTS["2023"] if name == "gli2023" else {})


_TASK_LIST = (
    # no lesion-wise score before 2023: the evaluation applies the GLI 2023 rule to these releases as well
    BratsTask("legacy", "BraTS 2018-2021 glioma",
              r"Brats18(_[A-Za-z0-9]+)+|BraTS19(_[A-Za-z0-9]+)+|BraTS20_(Training|Validation|Testing)_[0-9]{3}"
              r"|BraTS2021_[0-9]{5}", "BraTS2021_00000", "_", ("t1", "t1ce", "t2", "flair"), _CHANNELS, "seg",
              {1: "NCR/NET", 2: "ED", 4: "ET"}, CONVENTIONS["legacy"], TO_NNUNET["legacy"], NNUNET_REGIONS,
              LesionWise(3, 50), "legacy", VALUE_HINTS["legacy"]),
    _like_gli2023("gli2023", "GLI 2023 adult glioma (pre-operative)", "BraTS-GLI", LesionWise(3, 50)),
    BratsTask("gli2024", "GLI 2024 adult glioma (post-treatment)", r"BraTS-GLI-[0-9]{5}-[0-9]{3}",
              "BraTS-GLI-02073-100", "-", _MODS_2023, _CHANNELS, "seg", {**_LABELS_2023, 4: "RC"},
              {**CONVENTIONS["2023"], "NETC": (1,), "SNFH": (2,), "RC": (4,)}, {**TO_NNUNET["2023"], 4: 4},
              {**NNUNET_REGIONS, "RC": (4,)}, LesionWise(3, 20, {"ET": 10, "RC": 10}), "gli2024"),
    _like_gli2023("ssa", "SSA glioma, Sub-Saharan Africa", "BraTS-SSA", LesionWise(3, 50)),
    # MEN: dilation 1 in both the 2023 (get_challenge_parameters) and the 2024 code (metrics_MEN.py)
    _like_gli2023("men", "MEN meningioma (pre-operative)", "BraTS-MEN", LesionWise(1, 50)),
    _like_gli2023("met", "MET brain metastases", "BraTS-MET", LesionWise(1, 2)),
    # the 2023 PED release used the GLI 2023 labels (the 2023 metrics code scores PED as WT {1,2,3}, TC {1,3}, ET {3})
    _like_gli2023("ped2023", "PED 2023 paediatric tumours (GLI 2023 labels)", "BraTS-PED", LesionWise(3, 50)),
    # nnU-Net labels 1 ED, 2 NETC, 3 CC, 4 ET: each region adds one label to the ones before it (write order)
    BratsTask("ped", "PED 2024 paediatric tumours", r"BraTS-PED-[0-9]{5}-[0-9]{3}", "BraTS-PED-00000-000", "-",
              _MODS_2023, _CHANNELS, "seg", {1: "ET", 2: "NETC", 3: "CC", 4: "ED"},
              {"WT": (1, 2, 3, 4), "TC": (1, 2, 3), "ET": (1,), "NETC": (2,), "CC": (3,), "ED": (4,)},
              {0: 0, 4: 1, 2: 2, 3: 3, 1: 4}, {"WT": (1, 2, 3, 4), "TC": (2, 3, 4), "CC": (3,), "ET": (4,)},
              LesionWise(5, 10, min_predicted_voxels=10), "ped"),
    BratsTask("menrt", "MEN-RT 2024 meningioma radiotherapy (GTV)", r"BraTS-MEN-RT-[0-9]{4}-[0-9]+",
              "BraTS-MEN-RT-0000-1", "_", ("t1c",), ("T1ce",), "gtv", {1: "GTV"}, {"GTV": (1,)}, {0: 0, 1: 1},
              {"GTV": (1,)}, LesionWise(1, 50, count_false_positives=False), "menrt"),
)
TASKS: Dict[str, BratsTask] = {t.name: t for t in _TASK_LIST}


def get_task(name: str) -> BratsTask:
    """The task called ``name``; ValueError naming it and the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown BraTS task {name!r}; expected one of {list(TASKS)}")
    return TASKS[name]


def check_task_labels(values: Sequence[int], task: BratsTask, name: str) -> None:
    """ValueError naming ``name`` and the offending values when ``values`` hold a label foreign to ``task``."""
    unknown = sorted(set(int(v) for v in values) - set(task.allowed_labels()))
    if unknown:
        hints = "; ".join(task.value_hints[v] for v in unknown if v in task.value_hints)
        raise ValueError(f"{name}: unknown label value(s) {unknown} for the BraTS task {task.name!r} (allowed: "
                         f"{list(task.allowed_labels())})" + (f" ({hints})" if hints else ""))


def is_region_based(task: BratsTask) -> bool:
    """Whether nnU-Net trains regions (some region of several labels) rather than labels (MEN-RT: one label)."""
    return any(len(labels) > 1 for labels in task.train_regions.values())


def regions_class_order(task: BratsTask) -> List[int]:
    """nnU-Net's ``regions_class_order`` of ``task``: per training region, the label it writes.

    nnU-Net's export writes, region after region in dataset.json order, the region's label into every voxel where
    the region is predicted, so a voxel ends with the label of the last predicted region. Every original label is
    recovered when each region holds exactly one label that no later region holds (its label): a voxel of label L
    lies in exactly the regions that contain L, the last of which is the one whose label is L. ValueError when the
    regions of ``task`` do not meet this.
    """
    regions = list(task.train_regions.items())
    order = []
    for i, (name, labels) in enumerate(regions):
        own = set(labels) - {v for _, later in regions[i + 1:] for v in later}
        if len(own) != 1:
            raise ValueError(f"task {task.name}: region {name} {labels} must hold exactly one label that no later "
                             f"region holds, it holds {sorted(own)}")
        order.append(own.pop())
    missing = sorted(set(task.to_nnunet.values()) - {0} - set(order))
    if missing:
        raise ValueError(f"task {task.name}: nnU-Net label(s) {missing} are written by no region")
    return order


def dataset_json_labels(task: BratsTask) -> Dict[str, object]:
    """The ``labels`` entry of the task's nnU-Net dataset.json: regions as label lists, or plain labels when
    nnU-Net trains labels (see ``is_region_based``)."""
    if is_region_based(task):
        return {"background": 0, **{REGION_NAMES[r]: list(v) for r, v in task.train_regions.items()}}
    return {"background": 0, **{REGION_NAMES[r]: v[0] for r, v in task.train_regions.items()}}
