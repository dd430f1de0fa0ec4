"""Which BraTS task a release holds, from its naming, the label values found and the names of its folders.

A naming can carry several tasks (brats_layouts.py, irregularity 8); the rules, each for a reason:

* An explicit ``--task`` wins, but must suit the naming (LayoutError otherwise). Then the task recorded in the
  dataset folder a rerun continues (the cases converted before are not read again, so their labels are unknown).
* A naming of one task (legacy, SSA, MEN, MET, MEN-RT): that task.
* GLI names: label 4 (the resection cavity) in a case means GLI 2024 post-treatment, unless the release folder is
  named as BraTS 2023 and nothing points to a later year: then label 4 is an error in the 2023 data (validation
  names ``--task gli2024`` for the case). Without label 4 it is GLI 2023, as before the other tasks existed,
  unless something points to 2024 or later (a time point from 100 on, as the post-treatment scans have, or a
  folder named ``BraTS2024``/``BraTS2025``): a 2024 release whose cases happen to hold no cavity, or its
  unlabeled validation part, looks like 2023, so AmbiguousTaskError asks for ``--task``.
* PED names: label 4 (edema) exists only in the 2024 labels. Without it label 1 may be the enhancing tumour
  (2024) or the non-enhancing core (2023): a wrong guess would swap tumour classes, so AmbiguousTaskError.
"""
import re
from pathlib import Path
from typing import AbstractSet, Optional, Sequence, Set

from nnunet_msfen.dataset_conversion.brats_layouts import RELEASES, BratsCase
from nnunet_msfen.dataset_conversion.errors import AmbiguousTaskError, LayoutError
from nnunet_msfen.brats_tasks import TASKS, get_task

_YEAR = re.compile(r"brats[-_ ]?(20[0-9]{2})", re.IGNORECASE)
POST_TREATMENT_TIME_POINT = 100  # BraTS 2024 GLI: post-treatment scans are numbered from -100 on


def known_task(release: str, src: Path, cases: Sequence[BratsCase], explicit: Optional[str] = None,
               recorded: Optional[str] = None) -> Optional[str]:
    """The task when it is known without reading labels (explicit, recorded, or the naming's only task), else
    None. ValueError for an unknown task name, LayoutError for a task whose naming is not the release's."""
    tasks = RELEASES[release].tasks
    if explicit is not None:
        task = get_task(explicit)
        if explicit not in tasks:
            raise LayoutError(f"--task {explicit} ({task.title}) expects cases named like {task.example}, but the "
                              f"cases in {src} are named like {cases[0].case_id} (task(s) {list(tasks)})")
        return explicit
    if recorded in tasks:
        return recorded
    return tasks[0] if len(tasks) == 1 else None


def release_years(src: Path, cases: Sequence[BratsCase]) -> Set[int]:
    """Years that the folder names from ``src`` down to the case folders (``BraTS2023``, ``BraTS-2024``...) and,
    for GLI names, the post-treatment time points (2024) point to."""
    years: Set[int] = set()
    for c in cases:
        for part in c.folder.parent.relative_to(Path(src).parent).parts:
            years.update(int(y) for y in _YEAR.findall(part))
        if c.release == "2023" and int(c.case_id.rsplit("-", 1)[1]) >= POST_TREATMENT_TIME_POINT:
            years.add(2024)
    return years


def task_from_labels(release: str, src: Path, cases: Sequence[BratsCase], found: AbstractSet[int]) -> str:
    """The task of a GLI or PED release from the label values ``found`` in its segmentations (module docstring);
    AmbiguousTaskError naming the ``--task`` options where they do not decide."""
    tasks = RELEASES[release].tasks
    if len(tasks) == 1:
        return tasks[0]
    labeled = any(c.seg is not None for c in cases)
    if release == "2023":
        years = release_years(src, cases)
        later = sorted(y for y in years if y >= 2024)
        if 4 in found:
            return "gli2023" if 2023 in years and not later else "gli2024"
        if not later:
            return "gli2023"
        what = "cases without label 4 (resection cavity)" if labeled else "cases without segmentations"
        raise AmbiguousTaskError(
            f"{src}: BraTS-GLI {what}, but the names point to BraTS {later[0]} (a post-treatment time point or "
            f"a folder name): pass --task gli2024 (post-treatment, labels 1 NETC, 2 SNFH, 3 ET, 4 RC) or --task "
            f"gli2023 (labels 1 NETC, 2 SNFH, 3 ET)")
    if release == "PED":
        if 4 in found:
            return "ped"
        what = "cases without label 4 (edema)" if labeled else "cases without segmentations"
        raise AmbiguousTaskError(
            f"{src}: BraTS-PED {what}: label 1 is the enhancing tumour in the PED 2024 labels but the "
            f"non-enhancing core in the 2023 ones; pass --task ped (2024 and later: 1 ET, 2 NETC, 3 CC, 4 ED) "
            f"or --task ped2023 (1 NETC, 2 SNFH, 3 ET)")
    raise LayoutError(f"no rule picks one of the tasks {list(tasks)} of release {release}; pass --task")


def other_tasks_allowing(release: str, task: str, values: AbstractSet[int]) -> Sequence[str]:
    """The other tasks of the release's naming whose labels include every value in ``values``."""
    return [t for t in RELEASES[release].tasks if t != task and set(values) <= set(TASKS[t].allowed_labels())]
