"""The output policy of every command: never overwrite what is there without ``--overwrite``, and say which path
is wrong in one line.

``claim_output`` is called before any work: an existing output file, or a non-empty output folder, is refused
unless the command was given ``--overwrite``; a file where a folder is expected (or the reverse), or a parent that
is not a folder, is refused naming the path. The writes themselves go through ``nnunet_msfen.io.atomic``, and the
OS errors that can still happen (permissions, a full disk) reach the user as one line through ``cli.main``.
"""
import os
from pathlib import Path
from typing import Union

from nnunet_msfen.errors import CommandError

PathLike = Union[str, os.PathLike]


def claim_output(path: PathLike, overwrite: bool, folder: bool) -> Path:
    """``path`` as a ``Path`` if the command may write it (a folder if ``folder``, else a file); else
    ``CommandError`` naming it and what to do."""
    path = Path(path)
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise CommandError(f"cannot write {path}: {parent} is a file, not a folder")
    if folder:
        if path.exists() and not path.is_dir():
            raise CommandError(f"output {path} is a file; give a folder")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise CommandError(f"output folder {path} is not empty; pass --overwrite to write into it")
    else:
        if path.is_dir():
            raise CommandError(f"output {path} is a folder; give a file name")
        if path.exists() and not overwrite:
            raise CommandError(f"output {path} exists; pass --overwrite to replace it")
    return path
