"""Reading label maps with their geometry, and writing result files atomically (temp name, then os.replace)."""
import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
SEG_SUFFIX = ".nii.gz"


# size, spacing (x, y, z as SimpleITK gives them), origin and direction of an image
Geometry = Dict[str, tuple]


def read_segmentation(path: PathLike) -> Tuple[np.ndarray, Geometry]:
    """Label map of ``path`` as an integer array (z, y, x) and its geometry; ``ValueError`` naming the file
    when it cannot be read or holds non-integer labels."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ValueError(f"cannot read segmentation {path}: {str(e).strip().splitlines()[-1]}") from None
    array = sitk.GetArrayFromImage(image)
    if array.dtype.kind == "f":
        if not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{path}: non-integer values in a label map")
        array = array.astype(np.int16)
    geometry = {"size": image.GetSize(), "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
                "direction": image.GetDirection()}
    return array, geometry


def spacing_zyx(geometry: Geometry) -> Tuple[float, ...]:
    """Voxel spacing in the axis order of the array SimpleITK returns (z, y, x)."""
    return tuple(float(s) for s in reversed(geometry["spacing"]))


def check_same_geometry(pred: Geometry, ref: Geometry, pred_name: str, ref_name: str,
                        tolerance: float = 1e-4) -> None:
    """``ValueError`` naming both files when size, spacing, origin or direction differ (a metric on
    misaligned grids is meaningless)."""
    if tuple(pred["size"]) != tuple(ref["size"]):
        raise ValueError(f"geometry mismatch: {pred_name} has size {pred['size']}, {ref_name} has {ref['size']}")
    for key in ("spacing", "origin", "direction"):
        a, b = np.asarray(pred[key], float), np.asarray(ref[key], float)
        if not np.allclose(a, b, rtol=tolerance, atol=tolerance):
            raise ValueError(f"geometry mismatch: {pred_name} has {key} {tuple(a)}, {ref_name} has {tuple(b)}")


def list_cases(folder: PathLike) -> List[str]:
    """Case identifiers (file names without ``.nii.gz``) of a folder; ``ValueError`` when it is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder not found: {folder}")
    return sorted(p.name[: -len(SEG_SUFFIX)] for p in folder.iterdir() if p.name.endswith(SEG_SUFFIX))


def _atomic_write(path: PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: PathLike, data: object) -> None:
    """JSON with indent, atomically; NaN is refused (it is not JSON)."""
    _atomic_write(path, lambda f: json.dump(data, f, indent=2, allow_nan=False))


def write_text(path: PathLike, text: str) -> None:
    """A text file, atomically."""
    _atomic_write(path, lambda f: f.write(text))


def write_csv(path: PathLike, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A CSV file, atomically."""
    def write(f):
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    _atomic_write(path, write)


def write_segmentation(path: PathLike, array: np.ndarray, geometry: Geometry) -> None:
    """A label map with ``geometry``, atomically (SimpleITK picks the format from the final name's suffix,
    so the temp file keeps it)."""
    import SimpleITK as sitk

    path = Path(path)
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:-len(SEG_SUFFIX)]}.", suffix=SEG_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp, True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_json(path: PathLike) -> Dict:
    """A JSON file; ``ValueError`` naming it when missing or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt JSON in {path}: {e}") from None
