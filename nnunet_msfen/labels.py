"""BraTS label conventions, the nnU-Net labels they map to, and the three evaluation regions, in one place.

Three conventions are in use:

* ``nnunet``: nnU-Net's BraTS datasets (``Dataset137_BraTS21`` converter, and convert-brats): 1 edema,
  2 NCR/NET, 3 ET. nnU-Net trains the nested regions WT = {1, 2, 3}, TC = {2, 3}, ET = {3}
  (``regions_class_order`` [1, 2, 3]).
* ``legacy`` (BraTS 2012-2021 files): 1 NCR/NET, 2 edema, 4 ET  -> nnU-Net 2->1, 1->2, 4->3.
* ``2023`` (BraTS 2023 glioma files):  1 NETC, 2 SNFH (edema), 3 ET -> nnU-Net 2->1, 1->2, 3->3.

Everything else (the region table of each convention, the necrosis label of the ET rule) is derived from the
nnU-Net regions and the mapping of the two BraTS file conventions, so that the conversion, the export and the
evaluation cannot disagree.

The BraTS tasks since 2023 (their own labels and regions) are in ``nnunet_msfen.brats_tasks``.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

REGIONS: Tuple[str, ...] = ("WT", "TC", "ET")
NNUNET_LABELS = (0, 1, 2, 3)
NNUNET_REGIONS: Dict[str, Tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}
NNUNET_NECROSIS = 2
# the ``labels`` and ``regions_class_order`` entries of a region-based nnU-Net dataset.json
DATASET_JSON_LABELS = {"background": 0, "whole tumor": list(NNUNET_REGIONS["WT"]),
                       "tumor core": list(NNUNET_REGIONS["TC"]), "enhancing tumor": list(NNUNET_REGIONS["ET"])}
REGIONS_CLASS_ORDER = [1, 2, 3]

# BraTS file convention -> {BraTS label: nnU-Net label}
TO_NNUNET: Dict[str, Dict[int, int]] = {
    "legacy": {0: 0, 2: 1, 1: 2, 4: 3},
    "2023": {0: 0, 2: 1, 1: 2, 3: 3},
}
BRATS_CONVENTIONS: Tuple[str, ...] = tuple(TO_NNUNET)
# why a value is not accepted, where the reason is known (printed with the error)
VALUE_HINTS: Dict[str, Dict[int, str]] = {
    "legacy": {3: "label 3 (non-enhancing tumour) was merged into 1 after BraTS 2016"},
    "2023": {4: "label 4 (resection cavity, BraTS 2024 post-treatment GLI) has no place in the 3-region "
                "WT/TC/ET dataset"},
}

_FROM_NNUNET: Dict[str, Dict[int, int]] = {"nnunet": {v: v for v in NNUNET_LABELS},
                                           **{c: {v: k for k, v in m.items()} for c, m in TO_NNUNET.items()}}
# convention -> region -> labels that make up the region
CONVENTIONS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    c: {region: tuple(sorted(back[v] for v in labels)) for region, labels in NNUNET_REGIONS.items()}
    for c, back in _FROM_NNUNET.items()}
# convention -> the label an enhancing-tumour voxel becomes under the BraTS ET postprocessing rule (necrosis)
NECROSIS_LABEL: Dict[str, int] = {c: back[NNUNET_NECROSIS] for c, back in _FROM_NNUNET.items()}


def check_convention(convention: str, choices: Sequence[str] = tuple(CONVENTIONS)) -> str:
    """Return ``convention`` if it is one of ``choices`` (default: every convention; the BraTS file
    conventions are ``BRATS_CONVENTIONS``), else ``ValueError`` naming it."""
    if convention not in choices:
        raise ValueError(f"unknown label convention {convention!r}; expected one of {list(choices)}")
    return convention


def region_labels(convention: str) -> Dict[str, Tuple[int, ...]]:
    """The region table of ``convention``: ``{"WT": labels, "TC": labels, "ET": labels}``."""
    return CONVENTIONS[check_convention(convention)]


def allowed_labels(convention: str) -> Tuple[int, ...]:
    """All label values a segmentation in ``convention`` may hold, background 0 included."""
    return tuple(sorted({0} | set(region_labels(convention)["WT"])))


def check_labels(seg: np.ndarray, convention: str, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the offending values when ``seg`` holds a label foreign to
    ``convention`` (a silent drop of an unknown label would bias every metric)."""
    allowed = allowed_labels(convention)
    unknown = sorted(set(np.unique(seg).tolist()) - set(allowed))
    if unknown:
        known = VALUE_HINTS.get(convention, {})
        hints = "; ".join(known[v] for v in unknown if v in known)
        raise ValueError(f"{name}: unknown label value(s) {unknown} for the {convention!r} convention "
                         f"(allowed: {list(allowed)})" + (f" ({hints})" if hints else ""))


def region_masks(seg: np.ndarray, convention: str = "nnunet") -> Dict[str, np.ndarray]:
    """Boolean WT/TC/ET masks of a label map in ``convention``."""
    return {region: np.isin(seg, labels) for region, labels in region_labels(convention).items()}


def remap(arr: np.ndarray, mapping: Dict[int, int]) -> np.ndarray:
    """``arr`` with every label ``k`` replaced by ``mapping[k]`` (labels 0-255), uint8."""
    lut = np.zeros(256, dtype=np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[arr.astype(np.uint8)]


def to_nnunet(arr: np.ndarray, convention: str) -> np.ndarray:
    """BraTS labels (already checked to lie in the convention's set) -> nnU-Net labels, uint8."""
    return remap(arr, TO_NNUNET[check_convention(convention, BRATS_CONVENTIONS)])


def from_nnunet(arr: np.ndarray, convention: str) -> np.ndarray:
    """nnU-Net labels 0-3 (already checked) -> BraTS labels of ``convention``, uint8."""
    return remap(arr, _FROM_NNUNET[check_convention(convention, BRATS_CONVENTIONS)])
