"""Convert a BraTS release, as distributed, into an nnU-Net v2 raw dataset (region-based, like Dataset137).

Writes ``$nnUNet_raw/DatasetIII_NAME/``: ``imagesTr``/``labelsTr`` for cases with a segmentation, ``imagesTs``
for cases without (validation releases); one channel per sequence (``_0000`` T1, ``_0001`` T1ce, ``_0002`` T2,
``_0003`` FLAIR; MEN-RT: ``_0000`` T1ce only); the labels of the task in nnU-Net's numbering (GLI 2023 and older:
0 background, 1 edema, 2 NCR/NETC, 3 ET; every task: ``nnunet_msfen.labels.TASKS``), uint8, in the geometry of
the case's first image; ``dataset.json`` (dataset_json.py); and ``brats_cases.json`` (see manifest.py). Image
files keep their bytes when the source is ``.nii.gz`` and are gzip-compressed otherwise, so voxels and geometry
are those of the source.

The BraTS task (tasks.py) is ``--task``, or the task recorded by the conversion a rerun continues, or the one the
naming and the labels of the cases point to; where they do not decide, the run stops naming the ``--task``
options.

Every case is read and checked (validation.py) before anything is written. Without ``--skip-bad`` one bad case
stops the run with nothing written; with ``--skip-bad`` the good cases are converted, the bad ones are listed
at the end and recorded under ``skipped`` in ``brats_cases.json``, and the exit code is 0 as long as one case
was converted: the user asked for the bad ones to be left out (it is 1 when every case is bad).
"""
import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from nnunet_msfen.dataset_conversion.brats_layouts import BratsCase, check_plain_name, find_cases
from nnunet_msfen.dataset_conversion.errors import BadCaseError, BadCasesError, BratsConversionError
from nnunet_msfen.brats_tasks import TASKS, get_task


def nnunet_raw_dir() -> Path:
    """``$nnUNet_raw`` (read at call time, not import time); BratsConversionError if unset or missing."""
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise BratsConversionError("the environment variable nnUNet_raw is not set (export nnUNet_raw=/path)")
    if not Path(raw).is_dir():
        raise BratsConversionError(f"nnUNet_raw={raw} is not an existing folder")
    return Path(raw)


def check_dataset_id(dataset_id: int) -> int:
    """Return ``dataset_id`` if it is an nnU-Net dataset id (1-999), else ValueError naming it."""
    if not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset id must be an integer from 1 to 999, got {dataset_id!r}")
    return dataset_id


def dataset_folder(dataset_id: int, name: str) -> Path:
    """``$nnUNet_raw/DatasetIII_NAME``, refusing an id that another dataset name already uses."""
    check_dataset_id(dataset_id)
    check_plain_name(name, "dataset name")
    raw = nnunet_raw_dir()
    out = raw / f"Dataset{dataset_id:03d}_{name}"
    others = sorted(p.name for p in raw.glob(f"Dataset{dataset_id:03d}_*") if p != out)
    if others:
        raise BratsConversionError(f"dataset id {dataset_id} is already taken by {others} in {raw}")
    return out


def case_outputs(case_id: str, labeled: bool, n_channels: int = 4) -> List[str]:
    """Output files of one case, relative to the dataset folder."""
    folder = "imagesTr" if labeled else "imagesTs"
    files = [f"{folder}/{case_id}_{i:04d}.nii.gz" for i in range(n_channels)]
    return files + ([f"labelsTr/{case_id}.nii.gz"] if labeled else [])


def _validate(case: BratsCase) -> Tuple[BratsCase, List[int], Optional[BadCaseError]]:
    """(case, label values found, error or None). Runs in worker processes."""
    from nnunet_msfen.dataset_conversion.validation import validate_case

    try:
        return case, validate_case(case), None
    except BadCaseError as e:
        return case, [], e


def _convert_case(job: Tuple[BratsCase, Path, str]) -> Tuple[str, Dict[str, Any]]:
    """Write one (validated) case atomically; returns its manifest record. Runs in worker processes."""
    import SimpleITK as sitk

    from nnunet_msfen.dataset_conversion.manifest import source_stamp
    from nnunet_msfen.dataset_conversion.validation import case_errors, read_labels
    from nnunet_msfen.io.atomic import copy_file, write_image
    from nnunet_msfen.io.images import geometry_of, read_image, to_image

    case, out, task = job
    stamp = source_stamp(case)  # taken before reading, so a file changed meanwhile shows up on the next run
    rels = case_outputs(case.case_id, case.seg is not None, len(case.images))
    for src, rel in zip(case.images, rels):
        if src.name.endswith(".nii.gz"):
            copy_file(src, out / rel, out)
        else:
            with case_errors(case.case_id):
                voxels, geometry = read_image(src)
            write_image(out / rel, to_image(voxels, geometry), out)
    if case.seg is not None:
        header = sitk.ImageFileReader()  # the first image's geometry from its header, without its voxels
        header.SetFileName(str(case.images[0]))
        header.ReadImageInformation()
        label = TASKS[task].to_nnunet_labels(read_labels(case, task=task))
        write_image(out / rels[-1], to_image(label, geometry_of(header)), out)
    return case.case_id, {"brats_id": case.case_id, "release": case.release, "convention": TASKS[task].convention,
                          "split": "Tr" if case.seg is not None else "Ts", "sources": stamp,
                          "outputs": {rel: (out / rel).stat().st_size for rel in rels}}


def _map(fn: Callable, items: List, num_processes: int, desc: str, progress: bool) -> Iterable:
    from tqdm import tqdm

    bar = dict(total=len(items), desc=desc, unit="case", disable=not progress or not items, file=sys.stderr)
    if num_processes == 1 or len(items) < 2:
        yield from tqdm(map(fn, items), **bar)
        return
    import multiprocessing

    # spawn, not fork: forking a process that already runs SimpleITK/tqdm threads can deadlock
    with multiprocessing.get_context("spawn").Pool(min(num_processes, len(items))) as pool:
        yield from tqdm(pool.imap_unordered(fn, items), **bar)


def convert_brats(src: Path, dataset_id: int, name: Optional[str] = None, num_processes: int = 1,
                  overwrite: bool = False, skip_bad: bool = False, progress: bool = True,
                  task: Optional[str] = None) -> Path:
    """Convert the BraTS release in ``src`` to ``$nnUNet_raw/Dataset{dataset_id:03d}_{name}``; returns that folder.

    Args:
        src: the release folder as distributed (read only, never modified).
        dataset_id: nnU-Net dataset id, 1-999.
        name: dataset name (default ``BraTS<release>`` for legacy and GLI 2023, ``BraTS_<TASK>`` otherwise).
        num_processes: worker processes for reading and writing.
        overwrite: replace an existing dataset folder of different content.
        skip_bad: convert the good cases and record the bad ones instead of stopping.
        progress: show tqdm progress bars on stderr.
        task: the BraTS task (``nnunet_msfen.labels.TASKS``); default: recognised (tasks.py).

    Raises:
        ValueError: an invalid argument (names the value).
        LayoutError: ``src`` is not a recognisable BraTS release, or not one of ``task`` (a BratsConversionError).
        AmbiguousTaskError: the names and labels fit several tasks; the message names the ``--task`` options.
        BadCasesError: bad cases without ``skip_bad`` (or every case bad); ``.errors`` names case and file.
        BratsConversionError: nnUNet_raw unset, or an existing dataset folder of different content.
    """
    from nnunet_msfen.dataset_conversion.dataset_json import default_name, write_dataset_json
    from nnunet_msfen.dataset_conversion.manifest import (MANIFEST_NAME, existing_record, manifest_task,
                                                          new_manifest, outputs_intact, recorded_task,
                                                          sources_unchanged)
    from nnunet_msfen.dataset_conversion.tasks import known_task, task_from_labels
    from nnunet_msfen.dataset_conversion.validation import check_case_labels
    from nnunet_msfen.io.atomic import remove_scratch, write_json

    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}")
    check_dataset_id(dataset_id)  # argument errors come before scanning
    if name is not None:
        check_plain_name(name, "dataset name")
    if task is not None:
        get_task(task)
    src = Path(src).absolute()
    cases = find_cases(src)
    release = cases[0].release
    raw = nnunet_raw_dir()
    folders = [raw / f"Dataset{dataset_id:03d}_{name}"] if name else sorted(raw.glob(f"Dataset{dataset_id:03d}_*"))
    task = known_task(release, src, cases, task, None if overwrite else recorded_task(folders, src, release))
    checked = None
    if task is None:  # the labels decide; a fresh conversion reads every case anyway
        checked = list(_map(_validate, cases, num_processes, "checking", progress))
        task = task_from_labels(release, src, cases, {v for _, values, e in checked if e is None for v in values})
    out = dataset_folder(dataset_id, name or default_name(release, task))
    if src == out or src in out.parents or out in src.parents:
        raise BratsConversionError(f"the output {out} and the source {src} must not contain each other")
    manifest, replace = existing_record(out, src, release, cases, overwrite)
    if manifest is not None and manifest_task(manifest) != task:
        raise BratsConversionError(f"{out} holds the BraTS task {manifest_task(manifest)}, not {task}; use "
                                   f"--overwrite to replace it")
    manifest = manifest or new_manifest(src, release, task)
    manifest.setdefault("task", task)  # a record written before the tasks existed

    def done(c: BratsCase) -> bool:
        rec = manifest["cases"].get(c.case_id)
        return rec is not None and sources_unchanged(c, rec["sources"]) and outputs_intact(out, rec)

    todo = [c for c in cases if c.problem is not None or not done(c)]
    todo_ids = {c.case_id for c in todo}
    if checked is None:
        checked = list(_map(_validate, todo, num_processes, "checking", progress))
    bad, good = [], []
    for case, values, error in (r for r in checked if r[0].case_id in todo_ids):
        if error is None:
            try:
                check_case_labels(case, values, task)
            except BadCaseError as e:
                error = e
        if error is not None:
            bad.append(error)
        else:
            good.append(case)
    bad.sort(key=lambda e: e.case_id)
    good.sort(key=lambda c: c.case_id)
    if bad and (not skip_bad or not good and not manifest["cases"]):
        raise BadCasesError(bad)

    if replace:
        shutil.rmtree(out)
    out.mkdir(exist_ok=True)
    remove_scratch(out)  # temporaries left by a killed run
    manifest["skipped"] = {e.case_id: str(e) for e in bad}
    write_json(out / MANIFEST_NAME, manifest, out)
    jobs = [(c, out, task) for c in good]
    for case_id, record in _map(_convert_case, jobs, num_processes, "converting", progress):
        manifest["cases"][case_id] = record
        write_json(out / MANIFEST_NAME, manifest, out)  # after each case: a rerun resumes from here
    write_dataset_json(out, manifest, release, task)
    remove_scratch(out)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen convert-brats``."""
    parser.add_argument("src", type=Path, help="BraTS release folder as distributed (read only)")
    parser.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id (1-999)")
    parser.add_argument("-n", "--name", default=None,
                        help="dataset name (default BraTS<year> for 2018-2021 and GLI 2023, else BraTS_<TASK>)")
    parser.add_argument("--task", choices=list(TASKS), default=None,
                        help="the BraTS task, where the names and labels do not decide (default: recognised)")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of different content")
    parser.add_argument("--skip-bad", action="store_true",
                        help="convert the good cases, list the bad ones at the end (exit 0 if any was converted)")


def run(args: argparse.Namespace) -> int:
    """Run the conversion; user errors become CommandError (exit 1)."""
    from nnunet_msfen.errors import CommandError

    try:
        out = convert_brats(args.src, args.dataset_id, args.name, args.num_processes, args.overwrite, args.skip_bad,
                            task=args.task)
    except (BratsConversionError, ValueError) as e:
        raise CommandError(str(e)) from None
    from nnunet_msfen.dataset_conversion.manifest import MANIFEST_NAME, load_manifest

    manifest = load_manifest(out / MANIFEST_NAME)
    print(f"{out}: {len(manifest['cases'])} case(s) converted")
    if manifest["skipped"]:
        print(f"skipped {len(manifest['skipped'])} bad case(s):", *manifest["skipped"].values(), sep="\n  ",
              file=sys.stderr)
    return 0
