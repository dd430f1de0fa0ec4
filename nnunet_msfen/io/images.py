"""The checked image reader of the package: voxels and geometry of an image or a label map, with one geometry
tolerance, for the BraTS conversion and the evaluation alike.

SimpleITK alone is not enough: ITK's NIfTI reader fills the missing part of a truncated file with zeros without
an error (seen with a cut ``.nii.gz``), so the bytes are counted independently; and label maps stored as float
(as some re-saved or redistributed files are) are accepted only when every value is a whole number.
"""
import gzip
import os
import zlib
from typing import Any, Dict, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
# size, spacing (x, y, z as SimpleITK gives them), origin and direction of an image
Geometry = Dict[str, tuple]

# Two files are on one grid when spacing and origin (mm) and the direction cosines agree to this absolute
# tolerance: header round-off (float32 headers, -0.0 vs 0.0 in the real BraTS 2018 directions) stays far below
# it, while a direction off by 1e-3 moves a voxel by at most 0.24 mm across a 240 mm field of view.
GEOMETRY_ATOL = 1e-3
NIFTI_ENDINGS = (".nii", ".nii.gz")
NIFTI1_HEADER_BYTES = 352  # header + extension flag: the smallest vox_offset of a single-file NIfTI-1


def _data_bytes(path: PathLike) -> int:
    """Bytes of the (decompressed) file; gzip's CRC and length check catch corrupt or truncated streams."""
    if not str(path).endswith(".gz"):
        return os.path.getsize(path)
    n = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += len(chunk)
    return n


def geometry_of(image: Any) -> Geometry:
    """The geometry of a SimpleITK image, or of an ``ImageFileReader`` after ``ReadImageInformation`` (the
    header only, no voxels read)."""
    return {"size": image.GetSize(), "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
            "direction": image.GetDirection()}


def spacing_zyx(geometry: Geometry) -> Tuple[float, ...]:
    """Voxel spacing in the axis order of the array SimpleITK returns (z, y, x)."""
    return tuple(float(s) for s in reversed(geometry["spacing"]))


def _integer_labels(path: PathLike, array: np.ndarray) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        return array
    whole = np.isfinite(array) & (array == np.round(array))
    if not np.all(whole):
        bad = np.unique(array[~whole])[:5]
        raise ValueError(f"{path}: non-integer label value(s) {bad.tolist()} in a float label map")
    return array.astype(np.int64)


def read_image(path: PathLike, label: bool = False) -> Tuple[np.ndarray, Geometry]:
    """Voxels (z, y, x) and geometry of the single-volume image ``path``, read completely and checked.

    Args:
        path: the file (any format SimpleITK reads; NIfTI files are also checked for truncation).
        label: a label map: float voxels must be whole numbers and are returned as int64.

    Raises:
        ValueError: naming the file, when it is unreadable, corrupt, truncated, a multi-component (vector)
            image, or a label map with non-integer values.
    """
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
        n = _data_bytes(path)
    except (RuntimeError, OSError, EOFError, zlib.error) as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: unreadable or corrupt image file: {last}") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path}: a multi-component (vector) image, expected one scalar volume")
    array = sitk.GetArrayFromImage(image)
    needed = NIFTI1_HEADER_BYTES + array.nbytes
    if str(path).endswith(NIFTI_ENDINGS) and n < needed:
        raise ValueError(f"{path}: corrupt (truncated) NIfTI file: {n} bytes, {needed} expected")
    return (_integer_labels(path, array) if label else array), geometry_of(image)


def to_image(array: np.ndarray, geometry: Geometry) -> Any:
    """The SimpleITK image of ``array`` (z, y, x) placed on ``geometry`` (its size is the array's)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    return image


def check_same_geometry(geometry: Geometry, ref: Geometry, name: str, ref_name: str) -> None:
    """``ValueError`` naming both files unless ``geometry`` has the shape of ``ref`` and its spacing, origin and
    direction within ``GEOMETRY_ATOL`` (a voxel-wise comparison of misaligned grids is meaningless)."""
    if tuple(geometry["size"]) != tuple(ref["size"]):
        raise ValueError(f"geometry mismatch: {name} has shape {tuple(geometry['size'])}, {ref_name} has "
                         f"{tuple(ref['size'])}")
    for key in ("spacing", "origin", "direction"):
        a, b = np.asarray(geometry[key], float), np.asarray(ref[key], float)
        if not np.allclose(a, b, rtol=0, atol=GEOMETRY_ATOL):
            raise ValueError(f"geometry mismatch: {name} has {key} {tuple(np.round(a, 6).tolist())}, {ref_name} "
                             f"has {tuple(np.round(b, 6).tolist())}")
