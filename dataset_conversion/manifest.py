"""The record a conversion keeps in its dataset folder: ``brats_cases.json``.

It maps every nnU-Net case id to its original BraTS case id, release and label convention, records the BraTS
task of the dataset (what export-brats needs to name and relabel predictions for the portal; records written
before the tasks existed have none, ``manifest_task`` derives it from their convention) and stores, per
converted case, the size, mtime and SHA-256 of each source file and the size of each output file: a rerun skips
a case only when both still match, and a dataset folder whose record disagrees with the source is "different
content" (refused without --overwrite). A source file whose mtime changed but whose content did not (a copied,
re-extracted or re-synced download) is the same file: the hash decides, and it is computed only for files whose
mtime moved.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nnunet_msfen.dataset_conversion.brats_layouts import BratsCase
from nnunet_msfen.dataset_conversion.errors import BratsConversionError
from nnunet_msfen.dataset_conversion.validation import source_files
from nnunet_msfen.brats_tasks import TASKS

MANIFEST_NAME = "brats_cases.json"
FORMAT = 1


# the task of a record without one: only legacy and GLI 2023 releases were converted before the tasks existed
_TASK_OF_CONVENTION = {"legacy": "legacy", "2023": "gli2023"}


def new_manifest(src: Path, release: str, task: str) -> Dict[str, Any]:
    """An empty record for a conversion of ``src`` (release naming ``release``) as the BraTS task ``task``."""
    return {"format": FORMAT, "written_by": "nnunet-msfen convert-brats", "source": str(src),
            "release": release, "convention": TASKS[task].convention, "task": task, "cases": {}, "skipped": {}}


def manifest_task(manifest: Dict[str, Any]) -> str:
    """The BraTS task of a record; BratsConversionError when it names none that is known."""
    task = manifest.get("task") or _TASK_OF_CONVENTION.get(manifest.get("convention"))
    if task not in TASKS:
        raise BratsConversionError(f"the record of {manifest.get('source')!r} names no known BraTS task (task "
                                   f"{manifest.get('task')!r}, convention {manifest.get('convention')!r})")
    return task


def load_manifest(path: Path) -> Dict[str, Any]:
    """Read a record; BratsConversionError naming the file if it is not one."""
    try:
        m = json.loads(Path(path).read_text())
        if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("cases"), dict):
            raise ValueError(f"not a format-{FORMAT} record")
    except (OSError, ValueError) as e:
        raise BratsConversionError(f"{path} is not a readable convert-brats record: {e}") from None
    return m


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_stamp(case: BratsCase) -> Dict[str, Dict[str, Any]]:
    """Name, size, mtime and SHA-256 of each source file of ``case``."""
    stamp = {}
    for p in source_files(case):
        st = os.stat(p)
        stamp[p.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(p)}
    return stamp


def sources_unchanged(case: BratsCase, recorded: Dict[str, Dict[str, Any]]) -> bool:
    """Whether the source files of ``case`` are those ``recorded``: same names and sizes, and the same mtime or,
    where the mtime moved, the same SHA-256 (records without hashes then count as changed)."""
    files = {p.name: p for p in source_files(case)}
    if set(files) != set(recorded):
        return False
    for name, p in files.items():
        st, rec = os.stat(p), recorded[name]
        if st.st_size != rec["size"]:
            return False
        if st.st_mtime_ns != rec["mtime_ns"] and rec.get("sha256") != file_sha256(p):
            return False
    return True


def outputs_intact(dataset_dir: Path, record: Dict[str, Any]) -> bool:
    """Whether every output file of a case record exists with its recorded size."""
    for rel, size in record["outputs"].items():
        p = Path(dataset_dir) / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


def conflicts(manifest: Dict[str, Any], src: Path, release: str, cases: List[BratsCase]) -> List[str]:
    """Why an existing dataset's record differs from converting ``cases`` of ``src`` ([] if it does not).

    New cases are no conflict (a rerun after fixing a skipped case adds it); a recorded case missing from the
    source, a changed source file, another source folder or release are.
    """
    why = []
    if manifest["source"] != str(src):
        why.append(f"it was converted from {manifest['source']}, not {src}")
    if manifest["release"] != release:
        why.append(f"it holds release {manifest['release']}, the source is release {release}")
    by_id = {c.case_id: c for c in cases}
    for case_id, record in manifest["cases"].items():
        case = by_id.get(record["brats_id"])
        if case is None:
            why.append(f"case {case_id} is not in the source any more")
        elif not sources_unchanged(case, record["sources"]):
            why.append(f"source files of case {case_id} changed since it was converted")
    return why


def existing_record(out: Path, src: Path, release: str, cases: List[BratsCase],
                    overwrite: bool) -> Tuple[Optional[Dict[str, Any]], bool]:
    """The record of the dataset folder ``out`` that a conversion continues (None: start afresh) and whether the
    folder must be replaced first. Nothing is changed here: the folder is replaced only once every check passed.

    BratsConversionError for a folder of different content (without ``overwrite``) or one not written by
    convert-brats.
    """
    if not out.exists():
        return None, False
    if overwrite:
        return None, True
    if not (out / MANIFEST_NAME).exists():
        if any(out.iterdir()):
            raise BratsConversionError(f"{out} exists and was not written by convert-brats; use --overwrite to "
                                       f"replace it")
        return None, False
    manifest = load_manifest(out / MANIFEST_NAME)
    why = conflicts(manifest, src, release, cases)
    if why:
        raise BratsConversionError(f"{out} already holds a different dataset ({'; '.join(why)}); use "
                                   f"--overwrite to replace it")
    return manifest, False


def recorded_task(folders: List[Path], src: Path, release: str) -> Optional[str]:
    """The task recorded by an earlier conversion of ``src`` into the one folder of ``folders`` (the dataset a
    rerun continues), or None: no such folder, or one holding something else (refused later, with the reason)."""
    if len(folders) != 1 or not (folders[0] / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = load_manifest(folders[0] / MANIFEST_NAME)
        if manifest.get("source") != str(src) or manifest.get("release") != release:
            return None
        return manifest_task(manifest)
    except BratsConversionError:
        return None
