"""Label conventions -> the three BraTS evaluation regions (whole tumour, tumour core, enhancing tumour).

Three conventions are in use:

* ``nnunet``: nnU-Net's BraTS datasets (``Dataset137_BraTS21`` converter): 1 edema, 2 NCR/NET, 3 ET.
* ``legacy``: BraTS 2012-2021 files: 1 NCR/NET, 2 edema, 4 ET.
* ``2023``: BraTS 2023 glioma files: 1 NETC, 2 SNFH (edema), 3 ET.
"""
from typing import Dict, Tuple

import numpy as np

REGIONS: Tuple[str, ...] = ("WT", "TC", "ET")

# convention -> region -> labels that make up the region
CONVENTIONS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "nnunet": {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)},
    "legacy": {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
    "2023": {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
}

# convention -> the label an enhancing-tumour voxel becomes under the BraTS ET postprocessing rule (necrosis)
NECROSIS_LABEL: Dict[str, int] = {"nnunet": 2, "legacy": 1, "2023": 1}


def check_convention(convention: str) -> Dict[str, Tuple[int, ...]]:
    """Return the region table of ``convention``; ``ValueError`` naming it when it is unknown."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown label convention {convention!r}; expected one of {sorted(CONVENTIONS)}")
    return CONVENTIONS[convention]


def allowed_labels(convention: str) -> Tuple[int, ...]:
    """All label values a segmentation in ``convention`` may hold, background 0 included."""
    table = check_convention(convention)
    return tuple(sorted({0} | set(table["WT"])))


def check_labels(seg: np.ndarray, convention: str, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the offending values when ``seg`` holds a label foreign to
    ``convention`` (a silent drop of an unknown label would bias every metric)."""
    present = np.unique(seg)
    unknown = sorted(set(present.tolist()) - set(allowed_labels(convention)))
    if unknown:
        raise ValueError(f"{name}: unknown label value(s) {unknown} for the {convention!r} convention "
                         f"(allowed: {list(allowed_labels(convention))})")


def region_masks(seg: np.ndarray, convention: str = "nnunet") -> Dict[str, np.ndarray]:
    """Boolean WT/TC/ET masks of a label map in ``convention``."""
    table = check_convention(convention)
    return {region: np.isin(seg, labels) for region, labels in table.items()}
