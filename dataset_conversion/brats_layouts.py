"""Recognise BraTS releases as distributed and list their cases (no image is read here).

Known irregularities of the releases as distributed, each handled below:

1. BraTS 2018/2019 training data split the cases into ``HGG/`` and ``LGG/`` subfolders, while the 2018/2019
   validation data (and redistributed samples such as ``shared/data/brats2018_sample``) hold the case folders
   directly: case folders are searched at any depth up to ``MAX_DEPTH``, so wrappers such as Kaggle's
   ``BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/`` work too.
2. BraTS 2020 (and some 2019 mirrors) ship uncompressed ``.nii`` files, the others ``.nii.gz``: both are
   accepted for every release; a modality present as both is ambiguous and rejected.
3. BraTS 2020 training case 355 has its segmentation named ``W39_1998.09.19_Segm.nii`` instead of
   ``BraTS20_Training_355_seg.nii`` (a leftover of the anonymisation, never corrected; widely reported, e.g.
   the Kaggle "BraTS2020 Dataset (Training + Validation)" notebooks rename it by hand). It is accepted under
   that exact name for that exact case only (``SEG_ALIASES``), read-only: SRC is never renamed.
4. CSV side files lie among the case folders: 2018 ``survival_data.csv``; 2019 ``name_mapping.csv`` and
   ``survival_data.csv``; 2020 ``name_mapping.csv`` and ``survival_info.csv`` (validation:
   ``name_mapping_validation_data.csv``, ``survival_evaluation.csv``). Non-NIfTI files are ignored.
5. Archives unpacked on macOS carry ``__MACOSX/``, ``._*`` AppleDouble files and ``.DS_Store``: ignored.
6. Labels: 2018-2021 use the legacy convention (1 NCR/NET, 2 ED, 4 ET; label 3 was retired after 2016), the
   2023 GLI release uses 1 NETC, 2 SNFH, 3 ET, and 2024 GLI (post-treatment) adds 4 = resection cavity. Label
   maps come as int16, uint8 or float (the 12 real 2018 cases here alone mix int16 and uint8): see
   ``nnunet_msfen.io.images.read_image``.
7. 2023/2024 GLI names use ``-`` and new modality names (t1n, t1c, t2w, t2f) instead of ``_`` and t1, t1ce, t2,
   flair (BraTS 2023 data description; the 2024 GLI release keeps the 2023 naming, its post-treatment scans have
   time points from 100 on, e.g. ``BraTS-GLI-02073-100``). SSA, MEN, MET and PED name their cases the same way
   under their own prefix.
8. One naming, two label sets: GLI 2023 and GLI 2024 share their names, and so do PED 2023 (the GLI 2023 labels)
   and PED 2024 (1 ET, 2 NETC, 3 CC, 4 ED: label 1 changed its meaning). A naming therefore maps to one or more
   tasks (``Release.tasks``); tasks.py picks one from the labels found, or asks for ``--task``.
9. MEN-RT 2024 has one sequence and another naming: ``BraTS-MEN-RT-0000-1/BraTS-MEN-RT-0000-1_t1c.nii.gz`` with
   the label map ``..._gtv.nii.gz`` (separator ``_``, a 4-digit case number).

Every naming of 2023 and later is taken from its task in ``nnunet_msfen.labels.TASKS``.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nnunet_msfen.dataset_conversion.errors import BadCaseError, LayoutError
from nnunet_msfen.brats_tasks import TASKS

MAX_DEPTH = 4
CHANNELS = TASKS["legacy"].channels  # nnU-Net channel order _0000.._0003 of the four-sequence releases
NIFTI_ENDINGS = (".nii.gz", ".nii")
JUNK_DIRS = {"__MACOSX"}
JUNK_FILES = {".DS_Store", "Thumbs.db"}
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Release:
    """How one BraTS release names its case folders and files, and the tasks whose data come with that naming."""

    name: str
    case_pattern: str
    sep: str
    modality_suffixes: Tuple[str, ...]  # in ``channels`` order
    seg_suffix: str
    tasks: Tuple[str, ...]  # names of nnunet_msfen.labels.TASKS; several where the labels decide (irregularity 8)
    channels: Tuple[str, ...] = CHANNELS  # nnU-Net channel names, _0000 first

    def file_stem(self, case_id: str, suffix: str) -> str:
        """``<case><sep><suffix>``: the file name without its NIfTI ending."""
        return f"{case_id}{self.sep}{suffix}"


def _from_task(name: str, *tasks: str) -> Release:
    """The release whose naming is that of ``tasks[0]`` (every task of one release shares it)."""
    t = TASKS[tasks[0]]
    return Release(name, t.case_pattern, t.sep, t.sequences, t.seg_suffix, tasks, t.channels)


_LEGACY_MODS = TASKS["legacy"].sequences
RELEASES: Dict[str, Release] = {
    "2018": Release("2018", r"Brats18(_[A-Za-z0-9]+)+", "_", _LEGACY_MODS, "seg", ("legacy",)),
    "2019": Release("2019", r"BraTS19(_[A-Za-z0-9]+)+", "_", _LEGACY_MODS, "seg", ("legacy",)),
    "2020": Release("2020", r"BraTS20_(Training|Validation|Testing)_[0-9]{3}", "_", _LEGACY_MODS, "seg", ("legacy",)),
    "2021": Release("2021", r"BraTS2021_[0-9]{5}", "_", _LEGACY_MODS, "seg", ("legacy",)),
    # the GLI naming keeps its first year's name: datasets converted before the other tasks existed record "2023"
    "2023": _from_task("2023", "gli2023", "gli2024"),
    "SSA": _from_task("SSA", "ssa"),
    "MEN": _from_task("MEN", "men"),
    "MET": _from_task("MET", "met"),
    "PED": _from_task("PED", "ped", "ped2023"),
    "MEN-RT": _from_task("MEN-RT", "menrt"),
}
# (release, case) -> segmentation file name, for the known misnamed files (irregularity 3 above)
SEG_ALIASES: Dict[Tuple[str, str], str] = {("2020", "BraTS20_Training_355"): "W39_1998.09.19_Segm.nii"}


@dataclass
class BratsCase:
    """One case folder: its id, release, the image files (the release's channel order) and its seg (or None)."""

    case_id: str
    release: str
    folder: Path
    images: List[Path]
    seg: Optional[Path]
    ignored: List[str] = field(default_factory=list)
    problem: Optional[BadCaseError] = None  # set when the folder itself is unusable (missing file, ...)


def check_plain_name(name: str, what: str = "case id") -> str:
    """Return ``name`` if it is safe as a file name (no separators, no ``..``, not absolute), else ValueError."""
    if not isinstance(name, str) or not _PLAIN_NAME.match(name) or ".." in name or os.sep in name:
        raise ValueError(f"{what} {name!r} is not a plain name (letters, digits, '.', '_', '-'; no '..' or '/')")
    return name


def release_of(case_id: str) -> Optional[str]:
    """The release whose case-folder pattern ``case_id`` matches exactly, or None."""
    for name, rel in RELEASES.items():
        if re.fullmatch(rel.case_pattern, case_id):
            return name
    return None


def is_junk(name: str) -> bool:
    """macOS / Windows archive debris (irregularity 5)."""
    return name in JUNK_FILES or name in JUNK_DIRS or name.startswith("._")


def _nifti_stem(name: str) -> Optional[str]:
    for ending in NIFTI_ENDINGS:
        if name.endswith(ending):
            return name[: -len(ending)]
    return None


def _read_case(folder: Path, case_id: str, release: Release) -> BratsCase:
    by_stem: Dict[str, List[Path]] = {}
    ignored = []
    for entry in sorted(folder.iterdir()):
        stem = _nifti_stem(entry.name)
        if is_junk(entry.name) or stem is None:
            ignored.append(entry.name)
            continue
        by_stem.setdefault(stem, []).append(entry)
    alias = SEG_ALIASES.get((release.name, case_id))
    if alias is not None:
        by_stem.setdefault(release.file_stem(case_id, release.seg_suffix), []).extend(
            by_stem.pop(_nifti_stem(alias), []))

    def take(suffix: str, required: bool) -> Optional[Path]:
        stem = release.file_stem(case_id, suffix)
        found = by_stem.pop(stem, [])
        if len(found) > 1:
            raise BadCaseError(case_id, found[0], f"ambiguous {suffix} file: {[p.name for p in found]}")
        if not found and required:
            raise BadCaseError(case_id, folder / (stem + ".nii.gz"), "missing modality file (nor .nii found)")
        return found[0] if found else None

    try:
        images = [take(s, True) for s in release.modality_suffixes]
        seg = take(release.seg_suffix, False)
        if by_stem:  # an unknown NIfTI may be a misnamed seg: refuse rather than silently call the case unlabeled
            extra = sorted(p.name for ps in by_stem.values() for p in ps)
            raise BadCaseError(case_id, folder, f"unexpected NIfTI file(s) {extra}")
    except BadCaseError as e:
        return BratsCase(case_id, release.name, folder, [], None, ignored, problem=e)
    return BratsCase(case_id, release.name, folder, images, seg, ignored)


def find_cases(src: Path) -> List[BratsCase]:
    """All BraTS cases below ``src``, sorted by case id; LayoutError if the folder is not a BraTS release.

    Raises LayoutError for: no case found, a folder holding NIfTI files whose name is no known case id, loose
    NIfTI files outside a case folder, the same case id twice, cases of different releases mixed. Problems of
    one case (a missing, ambiguous or unexpected file; a case folder lacking a seg next to case folders that
    have one: a training release with a lost seg must not silently become a test case) are recorded in its
    ``problem`` instead, so that ``--skip-bad`` can skip that case.
    """
    src = Path(src)
    if not src.is_dir():
        raise LayoutError(f"source {src} is not a folder (archives must be extracted first)")
    cases: List[BratsCase] = []

    def walk(folder: Path, depth: int) -> None:
        for entry in sorted(folder.iterdir()):
            if is_junk(entry.name):
                continue
            if entry.is_dir():
                release = release_of(entry.name)
                if release is not None:
                    cases.append(_read_case(entry, entry.name, RELEASES[release]))
                elif any(_nifti_stem(p.name) and not is_junk(p.name) for p in entry.iterdir()):
                    raise LayoutError(f"folder {entry} holds NIfTI files but {entry.name!r} is not a BraTS "
                                      f"case id of the releases {sorted(RELEASES)}")
                elif depth < MAX_DEPTH:
                    walk(entry, depth + 1)
            elif _nifti_stem(entry.name) is not None:
                raise LayoutError(f"loose NIfTI file {entry} outside a case folder")

    walk(src, 1)
    if not cases:
        raise LayoutError(f"no BraTS case folders found under {src} (searched {MAX_DEPTH} levels deep)")
    _check_consistency(cases)
    return sorted(cases, key=lambda c: c.case_id)


def _check_consistency(cases: List[BratsCase]) -> None:
    seen: Dict[str, Path] = {}
    for c in cases:
        check_plain_name(c.case_id)
        if c.case_id in seen:
            raise LayoutError(f"duplicate case {c.case_id}: {seen[c.case_id]} and {c.folder}")
        seen[c.case_id] = c.folder
    releases = sorted({c.release for c in cases})
    if len(releases) > 1:
        raise LayoutError(f"source mixes cases of the BraTS releases {releases}; convert them separately")
    for parent in {c.folder.parent for c in cases}:
        siblings = [c for c in cases if c.folder.parent == parent and c.problem is None]
        n_labeled = sum(c.seg is not None for c in siblings)
        for c in siblings:
            if n_labeled and c.seg is None:
                seg = RELEASES[c.release].file_stem(c.case_id, RELEASES[c.release].seg_suffix) + ".nii.gz"
                c.problem = BadCaseError(c.case_id, c.folder / seg,
                                         f"segmentation missing while {n_labeled} other case(s) in {parent} have "
                                         f"one (a training release with a lost or misnamed seg file)")
