"""The ``dataset.json`` of a converted BraTS dataset, and what a dataset of a task is called by default.

The labels and ``regions_class_order`` come from the task (``nnunet_msfen.labels.dataset_json_labels`` and
``regions_class_order``): the regions nnU-Net trains, ordered so that its export recovers every label. Releases
converted before the other tasks existed (legacy 2018-2021 and GLI 2023) keep their names and dataset.json as
they were: their release year names them; every later task is named by the task.
"""
from pathlib import Path
from typing import Any, Dict

from nnunet_msfen.dataset_conversion.brats_layouts import RELEASES
from nnunet_msfen.brats_tasks import TASKS, dataset_json_labels, is_region_based, regions_class_order

YEAR_NAMED_TASKS = ("legacy", "gli2023")


def dataset_release(release: str, task: str) -> str:
    """The ``release`` entry of dataset.json: the release year for legacy and GLI 2023 data, else the task."""
    return release if task in YEAR_NAMED_TASKS else task


def default_name(release: str, task: str) -> str:
    """The dataset name when none is given: ``BraTS2021``, ``BraTS2023`` ... or ``BraTS_GLI2024``, ``BraTS_PED``."""
    return f"BraTS{release}" if task in YEAR_NAMED_TASKS else f"BraTS_{task.upper()}"


def write_dataset_json(out: Path, manifest: Dict[str, Any], release: str, task: str) -> None:
    """Write ``out/dataset.json`` for the cases recorded in ``manifest`` (atomically)."""
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    from nnunet_msfen.io.atomic import staged_files

    t = TASKS[task]
    what = release if task in YEAR_NAMED_TASKS else t.title
    n_train = sum(r["split"] == "Tr" for r in manifest["cases"].values())
    with staged_files(out) as tmp:  # generate_dataset_json writes in place: staged, then moved
        generate_dataset_json(str(tmp), dict(enumerate(RELEASES[release].channels)), dataset_json_labels(t),
                              n_train, ".nii.gz",
                              regions_class_order=regions_class_order(t) if is_region_based(t) else None,
                              dataset_name=out.name, reference="https://www.synapse.org/brats",
                              release=dataset_release(release, task),
                              description=f"BraTS {what}, converted by nnunet-msfen convert-brats from "
                                          f"{manifest['source']}",
                              license="see the BraTS data-use terms", converted_by="nnunet-msfen convert-brats")
