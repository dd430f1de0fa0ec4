"""Per-case checks done before anything of a case is written: readable files, one geometry, known labels."""
import gzip
import os
import zlib
from pathlib import Path
from typing import Any, List, Sequence

import numpy as np

from nnunet_msfen.dataset_conversion.brats_labels import TO_NNUNET, VALUE_HINTS
from nnunet_msfen.dataset_conversion.brats_layouts import RELEASES, BratsCase
from nnunet_msfen.dataset_conversion.errors import BadCaseError

# BraTS volumes are co-registered to one 1 mm template; exported headers differ only by float round-off
# (e.g. -0.0 vs 0.0 in the direction of the real 2018 cases), so a tight absolute tolerance suffices.
SPACING_ORIGIN_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-4


NIFTI1_HEADER_BYTES = 352  # header + extension flag: the smallest vox_offset of a single-file NIfTI-1


def _data_bytes(path: Path) -> int:
    """Bytes of the (decompressed) file; gzip's CRC and length check catch corrupt or truncated streams."""
    if not str(path).endswith(".gz"):
        return os.path.getsize(path)
    n = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += len(chunk)
    return n


def read_image(case_id: str, path: Path) -> Any:
    """Read a NIfTI file completely and check that it holds all its voxels.

    ITK's NIfTI reader fills the missing part of a truncated file with zeros without an error (seen with a cut
    ``.nii.gz``), so the byte count is checked independently: a truncated download must not become a case.
    """
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
        n = _data_bytes(path)
    except (RuntimeError, OSError, EOFError, zlib.error) as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise BadCaseError(case_id, path, f"unreadable or corrupt NIfTI file: {first}") from None
    needed = NIFTI1_HEADER_BYTES + img.GetNumberOfPixels() * sitk.GetArrayViewFromImage(img).itemsize
    if n < needed:
        raise BadCaseError(case_id, path, f"corrupt (truncated) NIfTI file: {n} bytes, {needed} expected")
    return img


def check_same_geometry(case_id: str, ref: Any, ref_path: Path, img: Any, path: Path) -> None:
    """BadCaseError unless ``img`` has the shape, spacing, origin and direction of ``ref`` (within tolerance)."""
    if img.GetSize() != ref.GetSize():
        raise BadCaseError(case_id, path, f"shape {img.GetSize()} differs from {ref.GetSize()} of {ref_path.name}")
    for what, atol in (("spacing", SPACING_ORIGIN_ATOL_MM), ("origin", SPACING_ORIGIN_ATOL_MM),
                       ("direction", DIRECTION_ATOL)):
        a, b = getattr(img, f"Get{what.capitalize()}")(), getattr(ref, f"Get{what.capitalize()}")()
        if not np.allclose(a, b, rtol=0, atol=atol):
            raise BadCaseError(case_id, path, f"{what} {tuple(np.round(a, 6))} differs from "
                                              f"{tuple(np.round(b, 6))} of {ref_path.name}")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise BadCaseError(case_id, path, "is a multi-component (vector) image, expected one scalar volume")


def check_labels(case_id: str, path: Path, arr: np.ndarray, convention: str) -> np.ndarray:
    """Return ``arr`` as integers after checking every value is a label of ``convention``.

    Label maps stored as float (as some re-saved or redistributed files are) are accepted when every value is
    a whole number; anything else (1.5, NaN, a stray 3 or 5) is an error naming the values.
    """
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = np.unique(arr[~np.isfinite(arr) | (arr != np.round(arr))])[:5]
            raise BadCaseError(case_id, path, f"non-integer label value(s) {bad.tolist()} in a float label map")
        arr = arr.astype(np.int64)
    values = np.unique(arr)
    allowed = sorted(TO_NNUNET[convention])
    unknown = [int(v) for v in values if int(v) not in allowed]
    if unknown:
        hints = "; ".join(VALUE_HINTS[convention][v] for v in unknown if v in VALUE_HINTS[convention])
        raise BadCaseError(case_id, path, f"unknown label value(s) {unknown}, the {convention} convention has "
                                          f"{allowed}" + (f" ({hints})" if hints else ""))
    return arr


def validate_case(case: BratsCase) -> List[int]:
    """Read every file of ``case`` and check it; returns the label values found ([] for an unlabeled case).

    Raises BadCaseError (naming the case and file) for a missing, unreadable or corrupt file, a shape, spacing,
    origin or direction mismatch with the T1 image, or a label value outside the release's convention.
    """
    import SimpleITK as sitk

    if case.problem is not None:
        raise case.problem
    ref = read_image(case.case_id, case.images[0])
    for path in case.images[1:]:
        check_same_geometry(case.case_id, ref, case.images[0], read_image(case.case_id, path), path)
    if case.seg is None:
        return []
    seg = read_image(case.case_id, case.seg)
    check_same_geometry(case.case_id, ref, case.images[0], seg, case.seg)
    arr = check_labels(case.case_id, case.seg, sitk.GetArrayViewFromImage(seg), RELEASES[case.release].convention)
    return [int(v) for v in np.unique(arr)]


def source_files(case: BratsCase) -> Sequence[Path]:
    """Every file of ``case`` that conversion reads."""
    return list(case.images) + ([case.seg] if case.seg is not None else [])
