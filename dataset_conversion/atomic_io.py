"""Atomic file writes: write under a temporary name in a scratch folder, then ``os.replace`` into place.

``os.replace`` is atomic only within one file system, so the scratch folder lives next to the destination
(inside the dataset folder). An interrupted run therefore leaves either the old file, the complete new file,
or a stray temporary in the scratch folder, never a truncated file under its final name; a stray temporary
would otherwise be picked up by nnU-Net, which lists every ``*.nii.gz`` in ``imagesTr``.
"""
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCRATCH_NAME = ".nnunet_msfen_tmp"


def scratch_dir(root: Path) -> Path:
    """The scratch folder for temporaries that end up under ``root`` (created on demand)."""
    d = Path(root) / SCRATCH_NAME
    d.mkdir(parents=True, exist_ok=True)
    return d


def remove_scratch(root: Path) -> None:
    """Remove the scratch folder of ``root`` and any temporaries a killed run left in it."""
    shutil.rmtree(Path(root) / SCRATCH_NAME, ignore_errors=True)


@contextmanager
def atomic_path(dest: Path, scratch_root: Path) -> Iterator[Path]:
    """Yield a temporary path with the same suffixes as ``dest``; on success it is renamed to ``dest``.

    The suffixes are kept because SimpleITK picks its writer (and gzip compression) from the file name.
    On any exception the temporary is deleted and ``dest`` is left untouched.
    """
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=dest.name.split(".")[0] + ".", suffix="".join(dest.suffixes),
                               dir=scratch_dir(scratch_root))
    os.close(fd)
    try:
        yield Path(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_copy(src: Path, dest: Path, scratch_root: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (the bytes are copied unchanged; ``src`` is only read)."""
    with atomic_path(dest, scratch_root) as tmp:
        shutil.copyfile(src, tmp)


def atomic_write_image(image: Any, dest: Path, scratch_root: Path) -> None:
    """Write a SimpleITK image to ``dest`` atomically, gzip-compressed when ``dest`` ends in ``.gz``."""
    import SimpleITK as sitk

    with atomic_path(dest, scratch_root) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=str(dest).endswith(".gz"))


def atomic_write_json(obj: Any, dest: Path, scratch_root: Path) -> None:
    """Write ``obj`` as indented JSON to ``dest`` atomically."""
    with atomic_path(dest, scratch_root) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
