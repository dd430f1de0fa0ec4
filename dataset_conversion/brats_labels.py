"""BraTS label conventions and their mapping to and from the nnU-Net labels of Dataset137 (1 ED, 2 NCR, 3 ET).

legacy (BraTS 2017-2021): 1 NCR/NET, 2 ED, 4 ET.      -> nnU-Net 2->1, 1->2, 4->3
2023 (BraTS 2023 GLI):    1 NETC, 2 SNFH, 3 ET.       -> nnU-Net 2->1, 1->2, 3->3
nnU-Net trains the nested regions WT = {1, 2, 3}, TC = {2, 3}, ET = {3} (``regions_class_order`` [1, 2, 3]).
"""
from typing import Dict

import numpy as np

TO_NNUNET: Dict[str, Dict[int, int]] = {
    "legacy": {0: 0, 2: 1, 1: 2, 4: 3},
    "2023": {0: 0, 2: 1, 1: 2, 3: 3},
}
CONVENTIONS = tuple(TO_NNUNET)
NNUNET_LABELS = (0, 1, 2, 3)
# why a value is not accepted, where the reason is known (printed with the error)
VALUE_HINTS: Dict[str, Dict[int, str]] = {
    "legacy": {3: "label 3 (non-enhancing tumour) was merged into 1 after BraTS 2016"},
    "2023": {4: "label 4 (resection cavity, BraTS 2024 post-treatment GLI) has no place in the 3-region "
                "WT/TC/ET dataset"},
}


def check_convention(convention: str) -> str:
    """Return ``convention`` if known, else ValueError naming it."""
    if convention not in TO_NNUNET:
        raise ValueError(f"unknown label convention {convention!r}; expected one of {CONVENTIONS}")
    return convention


def _apply(arr: np.ndarray, mapping: Dict[int, int]) -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[arr.astype(np.uint8)]


def to_nnunet(arr: np.ndarray, convention: str) -> np.ndarray:
    """BraTS labels (already checked to lie in the convention's set) -> nnU-Net labels, uint8."""
    return _apply(arr, TO_NNUNET[check_convention(convention)])


def from_nnunet(arr: np.ndarray, convention: str) -> np.ndarray:
    """nnU-Net labels 0-3 (already checked) -> BraTS labels of ``convention``, uint8."""
    return _apply(arr, {v: k for k, v in TO_NNUNET[check_convention(convention)].items()})
