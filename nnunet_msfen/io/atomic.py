"""Atomic file writes: write under a temporary name, then ``os.replace`` into place, so that an interrupted run
leaves the old file or the complete new one, never a truncated file under the final name.

``os.replace`` is atomic only within one file system, so the temporary lives next to the destination: in the
destination's folder under a hidden name ending in ``.tmp`` (nothing that lists ``*.nii.gz`` or ``*.json`` picks
it up), or in a ``scratch_dir`` the caller names (the conversion uses one per dataset, which it removes when done).
The temporary keeps the destination's suffixes before ``.tmp`` is added where a writer needs them (SimpleITK picks
its writer and gzip compression from the file name).
"""
import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]
SCRATCH_NAME = ".nnunet_msfen_tmp"


def scratch_dir(root: PathLike) -> Path:
    """The scratch folder for temporaries that end up under ``root`` (created on demand)."""
    d = Path(root) / SCRATCH_NAME
    d.mkdir(parents=True, exist_ok=True)
    return d


def remove_scratch(root: PathLike) -> None:
    """Remove the scratch folder of ``root`` and any temporaries a killed run left in it."""
    shutil.rmtree(Path(root) / SCRATCH_NAME, ignore_errors=True)


@contextmanager
def atomic_path(dest: PathLike, scratch_root: Optional[PathLike] = None,
                keep_suffixes: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed to ``dest`` (its folder created), on any exception it is
    deleted and ``dest`` is left untouched.

    Args:
        dest: the final path.
        scratch_root: put the temporary in ``scratch_dir(scratch_root)`` instead of beside ``dest``.
        keep_suffixes: end the temporary with ``dest``'s suffixes (``.nii.gz``) instead of ``.tmp``; only
            inside a scratch folder, where no reader lists it.
    """
    dest = Path(dest)
    folder = scratch_dir(scratch_root) if scratch_root is not None else dest.parent
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "".join(dest.suffixes) if keep_suffixes else "".join(dest.suffixes) + ".tmp"
    fd, tmp = tempfile.mkstemp(prefix="." + dest.name.split(".")[0] + ".", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def staged_files(dest_dir: PathLike) -> Iterator[Path]:
    """Yield an empty staging folder for files that should reach ``dest_dir`` together or not at all.

    When the block succeeds, every file written into the folder is moved (``os.replace``, each atomic) to the
    same name in ``dest_dir``; on any exception none is. The staging folder lives in ``scratch_dir(dest_dir)``,
    so on the same file system, and is removed either way, as is the scratch folder once empty.
    """
    dest_dir = Path(dest_dir)
    staging = Path(tempfile.mkdtemp(dir=scratch_dir(dest_dir)))
    try:
        yield staging
        for p in sorted(staging.iterdir()):
            os.replace(p, dest_dir / p.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            os.rmdir(dest_dir / SCRATCH_NAME)
        except OSError:  # not empty: another writer's temporaries, removed by its owner
            pass


def write_text(dest: PathLike, text: str, scratch_root: Optional[PathLike] = None) -> None:
    """A UTF-8 text file, atomically."""
    with atomic_path(dest, scratch_root) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(dest: PathLike, obj: Any, scratch_root: Optional[PathLike] = None) -> None:
    """Indented JSON, atomically; NaN is refused (it is not JSON): ``ValueError``."""
    write_text(dest, json.dumps(obj, indent=2, allow_nan=False) + "\n", scratch_root)


def write_csv(dest: PathLike, header: Sequence[str], rows: Iterable[Sequence[object]],
              scratch_root: Optional[PathLike] = None) -> None:
    """A CSV file with a header row, atomically."""
    with atomic_path(dest, scratch_root) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_image(dest: PathLike, image: Any, scratch_root: Optional[PathLike] = None) -> None:
    """A SimpleITK image, atomically, gzip-compressed when ``dest`` ends in ``.gz``."""
    import SimpleITK as sitk

    with atomic_path(dest, scratch_root, keep_suffixes=True) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=str(dest).endswith(".gz"))


def copy_file(src: PathLike, dest: PathLike, scratch_root: Optional[PathLike] = None) -> None:
    """Copy ``src`` to ``dest`` atomically (the bytes unchanged; ``src`` is only read)."""
    with atomic_path(dest, scratch_root, keep_suffixes=True) as tmp:
        shutil.copyfile(src, tmp)
