"""Miniature BraTS releases on disk, in each release's folder layout and naming, for the conversion tests."""
import hashlib
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import SimpleITK as sitk

SHAPE = (10, 14, 12)  # array order (z, y, x): tiny, and non-cubic so that axis mix-ups show
SPACING = (1.0, 1.0, 1.0)
ORIGIN = (0.0, -13.0, 0.0)
LEGACY_MODS = ("t1", "t1ce", "t2", "flair")
MODS_2023 = ("t1n", "t1c", "t2w", "t2f")
# layout -> (release folder parts, case id format, separator, modality names, seg name, file ending, labels)
LAYOUTS = {
    "2018": ("MICCAI_BraTS_2018_Data_Training/HGG", "Brats18_TCIA01_{:03d}_1", "_", LEGACY_MODS, "seg", ".nii.gz", (0, 1, 2, 4)),
    "2019": ("MICCAI_BraTS_2019_Data_Training/LGG", "BraTS19_2013_{}_1", "_", LEGACY_MODS, "seg", ".nii.gz", (0, 1, 2, 4)),
    "2020": ("MICCAI_BraTS2020_TrainingData", "BraTS20_Training_{:03d}", "_", LEGACY_MODS, "seg", ".nii", (0, 1, 2, 4)),
    "2021": ("BraTS2021_Training_Data", "BraTS2021_{:05d}", "_", LEGACY_MODS, "seg", ".nii.gz", (0, 1, 2, 4)),
    "2023": ("ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData", "BraTS-GLI-{:05d}-000", "-",
             ("t1n", "t1c", "t2w", "t2f"), "seg", ".nii.gz", (0, 1, 2, 3)),
}
# the tasks beside GLI 2023, by task name, in the same form (folder names as the real releases have them)
TASK_LAYOUTS = {
    "gli2024": ("BraTS2024-BraTS-GLI-TrainingData", "BraTS-GLI-{:05d}-100", "-", MODS_2023, "seg", ".nii.gz",
                (0, 1, 2, 3, 4)),
    "ssa": ("ASNR-MICCAI-BraTS2023-SSA-Challenge-TrainingData", "BraTS-SSA-{:05d}-000", "-", MODS_2023, "seg",
            ".nii.gz", (0, 1, 2, 3)),
    "men": ("ASNR-MICCAI-BraTS2023-MEN-Challenge-TrainingData", "BraTS-MEN-{:05d}-000", "-", MODS_2023, "seg",
            ".nii.gz", (0, 1, 2, 3)),
    "met": ("ASNR-MICCAI-BraTS2023-MET-Challenge-TrainingData", "BraTS-MET-{:05d}-000", "-", MODS_2023, "seg",
            ".nii.gz", (0, 1, 2, 3)),
    "ped": ("BraTS2024-PED-TrainingData", "BraTS-PED-{:05d}-000", "-", MODS_2023, "seg", ".nii.gz", (0, 1, 2, 3, 4)),
    "ped2023": ("ASNR-MICCAI-BraTS2023-PED-Challenge-TrainingData", "BraTS-PED-{:05d}-000", "-", MODS_2023, "seg",
                ".nii.gz", (0, 1, 2, 3)),
    "menrt": ("BraTS2024-MEN-RT-TrainingData", "BraTS-MEN-RT-{:04d}-1", "_", ("t1c",), "gtv", ".nii.gz", (0, 1)),
}


def write_nifti(path: Path, arr: np.ndarray, spacing=SPACING, origin=ORIGIN) -> None:
    """Write ``arr`` (z, y, x) as NIfTI with the given geometry."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=str(path).endswith(".gz"))


def case_arrays(seed: int, label_values) -> Tuple[Dict[int, np.ndarray], np.ndarray]:
    """Four distinct int16 images (channel i is filled around 1000 * (i + 1)) and a seg using every label."""
    rng = np.random.default_rng(seed)
    images = {i: (rng.integers(0, 100, SHAPE) + 1000 * (i + 1)).astype(np.int16) for i in range(4)}
    seg = rng.choice(np.asarray(label_values), size=SHAPE).astype(np.uint8)
    return images, seg


def make_release(root: Path, layout: str, n: int = 2, labeled: bool = True, first: int = 1,
                 labels: Optional[Tuple[int, ...]] = None) -> Tuple[Path, Dict[str, Dict]]:
    """Write ``n`` cases of ``layout`` (LAYOUTS or TASK_LAYOUTS) under ``root``, their segs drawn from ``labels``
    (default: the layout's); returns (release folder, {case id: arrays and paths})."""
    parts, fmt, sep, mods, seg_name, ending, default_labels = {**LAYOUTS, **TASK_LAYOUTS}[layout]
    labels = default_labels if labels is None else labels
    folder = root / parts
    cases = {}
    for i in range(first, first + n):
        case_id = fmt.format(i)
        images, seg = case_arrays(i, labels)
        case_dir = folder / case_id
        paths = {}
        for c, mod in enumerate(mods):
            paths[mod] = case_dir / f"{case_id}{sep}{mod}{ending}"
            write_nifti(paths[mod], images[c])
        if labeled:
            paths["seg"] = case_dir / f"{case_id}{sep}{seg_name}{ending}"
            write_nifti(paths["seg"], seg)
        cases[case_id] = {"images": images, "seg": seg if labeled else None, "paths": paths, "dir": case_dir}
    return root, cases


def tree_hash(root: Path) -> str:
    """sha256 over every file's relative path, bytes and mtime below ``root`` (detects any modification)."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


def read(path: Path) -> np.ndarray:
    """Voxel array of a NIfTI file."""
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def all_files(root: Path) -> Optional[list]:
    """Every file below ``root`` relative to it, sorted ([] if root is missing)."""
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []
