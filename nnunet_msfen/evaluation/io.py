"""The evaluation's folders: one ``CASE.nii.gz`` label map per case, and the JSON files it reads (images are read by
``nnunet_msfen.io.images``, files written by ``nnunet_msfen.io.atomic``)."""
import json
import os
from pathlib import Path
from typing import Dict, List, Union

PathLike = Union[str, os.PathLike]
SEG_SUFFIX = ".nii.gz"


def list_cases(folder: PathLike) -> List[str]:
    """Case identifiers (file names without ``.nii.gz``) of a folder; ``ValueError`` when it is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder not found: {folder}")
    return sorted(p.name[: -len(SEG_SUFFIX)] for p in folder.iterdir() if p.name.endswith(SEG_SUFFIX))


def read_json(path: PathLike) -> Dict:
    """A JSON file; ``ValueError`` naming it when missing or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt JSON in {path}: {e}") from None
