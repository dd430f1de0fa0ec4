"""Per-case checks done before anything of a case is written: readable files, one geometry, known labels.

Reading and the geometry check are those of the whole package (``nnunet_msfen.io.images``), the labels those of
``nnunet_msfen.labels``; what is the conversion's own is the case: the first image is every file's reference grid,
the segmentation is checked against the release's task, and every failure names the case.

The labels are checked in a second step (``check_case_labels``) because the task of a release can depend on the
labels of all its cases (tasks.py): ``validate_case`` returns the values it found.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from nnunet_msfen.dataset_conversion.brats_layouts import BratsCase
from nnunet_msfen.dataset_conversion.errors import BadCaseError
from nnunet_msfen.io.images import Geometry, check_same_geometry, read_image
from nnunet_msfen.brats_tasks import TASKS, check_task_labels


@contextmanager
def case_errors(case_id: str) -> Iterator[None]:
    """Turn a ValueError of the reader or a check (which names the file) into a BadCaseError naming the case."""
    try:
        yield
    except ValueError as e:
        raise BadCaseError(case_id, None, str(e)) from None


def read_labels(case: BratsCase, ref: Optional[Geometry] = None, task: Optional[str] = None) -> np.ndarray:
    """The segmentation of ``case`` as integers, checked to lie on the grid ``ref`` (when given) and to hold only
    labels of ``task`` (when given); BadCaseError otherwise."""
    with case_errors(case.case_id):
        arr, geometry = read_image(case.seg, label=True)
        if ref is not None:
            check_same_geometry(geometry, ref, str(case.seg), case.images[0].name)
    if task is not None:
        check_case_labels(case, np.unique(arr).tolist(), task)
    return arr


def check_case_labels(case: BratsCase, values: Sequence[int], task: str) -> None:
    """BadCaseError naming the case and its seg when ``values`` hold a label foreign to ``task``; where another
    task of the same naming allows them, the error names the ``--task`` that converts the case."""
    from nnunet_msfen.dataset_conversion.tasks import other_tasks_allowing

    try:
        check_task_labels(values, TASKS[task], str(case.seg))
    except ValueError as e:
        others = other_tasks_allowing(case.release, task, set(int(v) for v in values))
        hint = "".join(f"; if this is {TASKS[t].title} data, convert with --task {t}" for t in others)
        raise BadCaseError(case.case_id, None, f"{e}{hint}") from None


def validate_case(case: BratsCase, task: Optional[str] = None) -> List[int]:
    """Read every file of ``case`` and check it; returns the label values found ([] for an unlabeled case).

    Raises BadCaseError (naming the case and file) for a missing, unreadable or corrupt file, a shape, spacing,
    origin or direction mismatch with the first image, or (when ``task`` is given) a label value foreign to it.
    """
    if case.problem is not None:
        raise case.problem
    with case_errors(case.case_id):
        _, ref = read_image(case.images[0])
        for path in case.images[1:]:
            check_same_geometry(read_image(path)[1], ref, str(path), case.images[0].name)
    if case.seg is None:
        return []
    return [int(v) for v in np.unique(read_labels(case, ref, task))]


def source_files(case: BratsCase) -> Sequence[Path]:
    """Every file of ``case`` that conversion reads."""
    return list(case.images) + ([case.seg] if case.seg is not None else [])
