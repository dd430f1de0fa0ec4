"""Export nnU-Net predictions as a BraTS submission: portal labels, portal file names, the input's geometry,
and the volume of every region (``volumes.csv``).

What the portals expect (from the BraTS instructions of each year, summarised):

* legacy (BraTS 2018-2020 on CBICA's IPP, 2021 on Synapse): one ``<CaseID>.nii.gz`` per case, e.g.
  ``BraTS20_Validation_001.nii.gz`` or ``BraTS2021_00001.nii.gz``, labels 1 NCR/NET, 2 ED, 4 ET, in the
  240x240x155 grid and header (spacing, origin, direction) of the case's input images.
* 2023 and later (every task on Synapse): ``<CaseID>.nii.gz``, e.g. ``BraTS-GLI-00001-000.nii.gz`` or
  ``BraTS-MEN-RT-0000-1.nii.gz``, in the task's labels (``nnunet_msfen.labels.TASKS``: GLI 2023, SSA, MEN, MET
  1 NETC, 2 SNFH, 3 ET; GLI 2024 adds 4 RC; PED 2024 1 ET, 2 NETC, 3 CC, 4 ED; MEN-RT 1 GTV), same grid and
  header as the inputs.

nnU-Net's predictions already have the geometry of the images they were predicted from (convert-brats keeps
the source geometry), so it is copied unchanged; only the labels are mapped back (the inverse of the task's
``to_nnunet``) and stored as uint8. The BraTS case id and the task come from the dataset's ``brats_cases.json``
when given (``--mapping`` or ``-d``); a prediction the mapping does not know (a held-out or validation case, predicted
from images that were never part of the dataset) and every prediction without a mapping keep their file name as
the case id, and then the task comes from the mapping, ``--task`` or the older ``--convention`` (legacy = the
legacy task, 2023 = GLI 2023).
"""
import argparse
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nnunet_msfen.dataset_conversion.brats_layouts import check_plain_name, is_junk
from nnunet_msfen.dataset_conversion.errors import BratsConversionError
from nnunet_msfen.io.images import Geometry, read_image
from nnunet_msfen.labels import BRATS_CONVENTIONS, check_convention
from nnunet_msfen.brats_tasks import TASKS, BratsTask, get_task

# the task an older --convention stands for
TASK_OF_CONVENTION = {"legacy": "legacy", "2023": "gli2023"}


def _mapping_for(mapping: Optional[Path], dataset_id: Optional[int]) -> Optional[Dict[str, Any]]:
    from nnunet_msfen.dataset_conversion.convert_brats import nnunet_raw_dir
    from nnunet_msfen.dataset_conversion.manifest import MANIFEST_NAME, load_manifest

    if mapping is not None and dataset_id is not None:
        raise ValueError("give either a mapping file or a dataset id, not both")
    if dataset_id is not None:
        found = sorted(nnunet_raw_dir().glob(f"Dataset{dataset_id:03d}_*/{MANIFEST_NAME}"))
        if len(found) != 1:
            raise BratsConversionError(f"expected one dataset {dataset_id} with a {MANIFEST_NAME} in "
                                       f"{nnunet_raw_dir()}, found {[str(p) for p in found]}")
        mapping = found[0]
    return load_manifest(mapping) if mapping is not None else None


def _plan(pred_dir: Path, manifest: Optional[Dict[str, Any]]) -> List[Tuple[Path, str]]:
    """(prediction file, BraTS case id) for every prediction, every id checked to be a plain name."""
    preds = sorted(p for p in pred_dir.iterdir() if p.name.endswith(".nii.gz") and not is_junk(p.name))
    if not preds:
        raise BratsConversionError(f"no .nii.gz predictions in {pred_dir}")
    plan, seen = [], {}
    for p in preds:
        nnunet_id = p.name[: -len(".nii.gz")]
        if manifest is not None and nnunet_id in manifest["cases"]:
            case_id = manifest["cases"][nnunet_id]["brats_id"]
        else:  # no mapping, or a held-out case predicted from outside the training data: its file name is its id
            case_id = nnunet_id
        try:
            check_plain_name(case_id)
        except ValueError as e:
            raise BratsConversionError(f"prediction {p}: {e}") from None
        if case_id in seen:
            raise BratsConversionError(f"predictions {seen[case_id]} and {p} both map to case {case_id}")
        seen[case_id] = p
        plan.append((p, case_id))
    return plan


def _read_prediction(path: Path, task: BratsTask) -> Tuple[Any, Geometry]:
    import numpy as np

    try:
        arr, geometry = read_image(path, label=True)
    except ValueError as e:
        raise BratsConversionError(f"prediction {e}") from None
    allowed = sorted(set(task.to_nnunet.values()))
    unknown = sorted(set(np.unique(arr).tolist()) - set(allowed))
    if unknown:
        raise BratsConversionError(f"prediction {path} has label value(s) {unknown}; the nnU-Net labels of the "
                                   f"BraTS task {task.name!r} are {allowed}")
    return arr, geometry


def _task_for(convention: Optional[str], task: Optional[str], manifest: Optional[Dict[str, Any]]) -> BratsTask:
    """The task of the export: the dataset's (a given task or convention must agree with it), else the given one."""
    from nnunet_msfen.dataset_conversion.manifest import manifest_task

    if task is not None:
        get_task(task)
    if convention is not None:
        check_convention(convention, BRATS_CONVENTIONS)
        if task is not None and TASKS[task].convention != convention:
            raise ValueError(f"convention {convention!r} contradicts the task {task!r} (labels of the "
                             f"{TASKS[task].convention!r} convention)")
    if manifest is None:
        if task is None and convention is None:
            raise ValueError("without a mapping (--mapping or -d) the task (--task) or the convention (legacy or "
                             "2023) must be given")
        return TASKS[task or TASK_OF_CONVENTION[convention]]
    recorded = manifest_task(manifest)
    if convention is not None and manifest["convention"] != convention:
        raise ValueError(f"convention {convention!r} contradicts the dataset's {manifest['convention']!r} "
                         f"(release {manifest['release']})")
    if task is not None and task != recorded:
        raise ValueError(f"task {task!r} contradicts the dataset's {recorded!r} (release {manifest['release']})")
    return TASKS[recorded]


def export_brats(pred_dir: Path, out_dir: Path, convention: Optional[str] = None, mapping: Optional[Path] = None,
                 dataset_id: Optional[int] = None, overwrite: bool = False, task: Optional[str] = None) -> List[Path]:
    """Write ``out_dir/<CaseID>.nii.gz`` in BraTS labels for every ``*.nii.gz`` prediction in ``pred_dir``, and
    ``out_dir/volumes.csv`` (volumes.py) with the volume of every region of the task per case.

    Args:
        pred_dir: nnU-Net prediction folder (its json files are ignored).
        out_dir: submission folder (created; files written atomically).
        convention: ``legacy`` or ``2023`` (the legacy or the GLI 2023 task); must agree with the mapping's.
        mapping: a dataset's ``brats_cases.json`` (nnU-Net id -> BraTS id, the task).
        dataset_id: find the mapping in ``$nnUNet_raw/DatasetIII_*`` instead.
        overwrite: replace existing files in ``out_dir`` that differ.
        task: the BraTS task (``nnunet_msfen.labels.TASKS``); defaults to the mapping's, must agree with it.

    Returns the written segmentations. Raises ValueError for invalid arguments and BratsConversionError for a bad
    prediction (naming the file); everything is checked before the first file is written.
    """
    import numpy as np

    from nnunet_msfen.dataset_conversion.volumes import (VOLUMES_NAME, region_volumes_ml, volumes_table,
                                                         volumes_text, write_volumes)
    from nnunet_msfen.io.atomic import remove_scratch, write_image
    from nnunet_msfen.io.images import to_image

    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    if not pred_dir.is_dir():
        raise ValueError(f"prediction folder {pred_dir} does not exist")
    manifest = _mapping_for(mapping, dataset_id)
    brats_task = _task_for(convention, task, manifest)
    plan = _plan(pred_dir, manifest)
    clashes, volumes = [], []
    for p, case_id in plan:  # check every prediction (and every existing target) before writing anything
        arr, geometry = _read_prediction(p, brats_task)
        seg = brats_task.from_nnunet_labels(arr)
        volumes.append((case_id, region_volumes_ml(seg, geometry, brats_task)))
        target = out_dir / f"{case_id}.nii.gz"
        if target.exists() and not overwrite and not np.array_equal(read_image(target)[0], seg):
            clashes.append(str(target))
    header, rows = volumes_table(brats_task, volumes)
    table = out_dir / VOLUMES_NAME
    if table.exists() and not overwrite:
        with open(table, newline="", encoding="utf-8") as f:
            if f.read() != volumes_text(header, rows):
                clashes.append(str(table))
    if clashes:
        raise BratsConversionError(f"{len(clashes)} file(s) in {out_dir} differ from this export, use "
                                   f"--overwrite to replace them: {clashes[:3]}")
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for p, case_id in plan:
        arr, geometry = _read_prediction(p, brats_task)
        seg = brats_task.from_nnunet_labels(arr)
        write_image(out_dir / f"{case_id}.nii.gz", to_image(seg, geometry), out_dir)
        written.append(out_dir / f"{case_id}.nii.gz")
    write_volumes(out_dir, header, rows)
    remove_scratch(out_dir)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen export-brats``."""
    parser.add_argument("pred_dir", type=Path, metavar="IN", help="folder of nnU-Net predictions (*.nii.gz)")
    parser.add_argument("out_dir", type=Path, metavar="OUT", help="submission folder to write")
    parser.add_argument("--task", choices=list(TASKS), default=None,
                        help="the BraTS task whose labels to write; default: the dataset's")
    parser.add_argument("--convention", choices=BRATS_CONVENTIONS, default=None,
                        help="older spelling of --task: legacy (1/2/4, 2018-2021) or 2023 (GLI 2023, 1/2/3)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mapping", type=Path, default=None, help="the dataset's brats_cases.json")
    group.add_argument("-d", "--dataset-id", type=int, default=None,
                       help="take brats_cases.json from $nnUNet_raw/DatasetIII_*")
    parser.add_argument("--overwrite", action="store_true", help="replace differing files in OUT")


def run(args: argparse.Namespace) -> int:
    """Run the export; user errors become CommandError (exit 1)."""
    from nnunet_msfen.errors import CommandError

    try:
        written = export_brats(args.pred_dir, args.out_dir, args.convention, args.mapping, args.dataset_id,
                               args.overwrite, task=args.task)
    except (BratsConversionError, ValueError) as e:
        raise CommandError(str(e)) from None
    print(f"wrote {len(written)} segmentation(s) and volumes.csv to {args.out_dir}{os.sep}")
    return 0
