"""The tumour classes of a phantom case, the structures of the 2024 tasks, and the classes in a task's labels.

Internal classes (0 = no tumour): ED edema, NCR necrosis, ET enhancing rim, NET non-enhancing solid core, CYST
(a fluid-filled cyst inside the core, PED 2024 label 3) and CAVITY (the resection cavity of a treated glioma,
GLI 2024 label 4). ``add_structures`` paints a task's own structure over the main tumour; ``task_labels`` turns
the classes into the task's BraTS labels by the names of ``BratsTask.labels``.
"""
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import ndimage

from nnunet_msfen.brats_tasks import BratsTask

ED, NCR, ET, NET, CYST, CAVITY = 1, 2, 3, 4, 5, 6
# internal class -> the names it goes by in the tasks' labels (legacy / 2023+), first match wins; MEN-RT's gross
# tumour volume (GTV) is the tumour without its edema
_NAMES: Dict[int, Tuple[str, ...]] = {ED: ("ED", "SNFH"), NCR: ("NETC", "NCR/NET", "GTV"),
                                      NET: ("NETC", "NCR/NET", "GTV"), ET: ("ET", "GTV"), CYST: ("CC",),
                                      CAVITY: ("RC",)}


def _ball(shape: Sequence[int], center: Sequence[int], radius: float) -> np.ndarray:
    """Voxels within ``radius`` of ``center``; always the center voxel (a tiny phantom keeps its structure)."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    ball = sum((g - c) ** 2 for g, c in zip(grids, center)) <= radius ** 2
    ball[tuple(center)] = True
    return ball


def add_structures(classes: np.ndarray, task: str, center: Sequence[int], radius: float,
                   rng: np.random.Generator) -> None:
    """Paint the structure of ``task`` into ``classes`` (in place) around the main tumour at ``center`` of
    ``radius`` voxels: GLI 2024 a resection cavity where most of the core was, PED a cyst inside the core (the
    core keeps a rim of at least one voxel where it is thick enough). Other tasks: nothing."""
    if task == "gli2024":
        classes[_ball(classes.shape, center, radius * rng.uniform(0.5, 0.8))] = CAVITY
    elif task == "ped":
        core = np.isin(classes, (NCR, ET, NET))
        if not core.any():
            return
        inner = ndimage.binary_erosion(core)
        room = inner if inner.any() else core
        cyst = _ball(classes.shape, center, radius * rng.uniform(0.35, 0.55)) & room
        if not cyst.any():  # a tiny core off the centre: its voxel nearest to the centre
            voxels = np.argwhere(room)
            cyst[tuple(voxels[np.argmin(((voxels - np.asarray(center)) ** 2).sum(axis=1))])] = True
        classes[cyst] = CYST


def task_labels(classes: np.ndarray, task: BratsTask) -> np.ndarray:
    """The BraTS labels of ``task`` (uint8) for the internal ``classes``; ValueError naming a class that occurs
    but has no label in the task."""
    by_name = {name: value for value, name in task.labels.items()}
    seg = np.zeros(classes.shape, np.uint8)
    for cls, names in _NAMES.items():
        mask = classes == cls
        if not mask.any():
            continue
        value = next((by_name[n] for n in names if n in by_name), None)
        if value is None and cls == ED and "GTV" in by_name:  # edema lies outside the gross tumour volume
            continue
        if value is None:
            raise ValueError(f"the phantom class {cls} has no label in the BraTS task {task.name!r}")
        seg[mask] = value
    return seg
