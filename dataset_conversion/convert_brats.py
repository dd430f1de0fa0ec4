"""Convert a BraTS release, as distributed, into an nnU-Net v2 raw dataset (region-based, like Dataset137).

Writes ``$nnUNet_raw/DatasetIII_NAME/``: ``imagesTr``/``labelsTr`` for cases with a segmentation, ``imagesTs``
for cases without (validation releases); channels ``_0000`` T1, ``_0001`` T1ce, ``_0002`` T2, ``_0003``
FLAIR; labels 0 background, 1 edema, 2 NCR/NETC, 3 ET (uint8, in the geometry of the case's T1 image);
``dataset.json``; and ``brats_cases.json`` (see manifest.py). Image files keep their bytes when the source is
``.nii.gz`` and are gzip-compressed otherwise, so voxels and geometry are those of the source.

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

from nnunet_msfen.dataset_conversion.brats_layouts import CHANNELS, RELEASES, BratsCase, check_plain_name, find_cases
from nnunet_msfen.dataset_conversion.errors import BadCaseError, BadCasesError, BratsConversionError


def nnunet_raw_dir() -> Path:
    """``$nnUNet_raw`` (read at call time, not import time); BratsConversionError if unset or missing."""
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise BratsConversionError("the environment variable nnUNet_raw is not set (export nnUNet_raw=/path)")
    if not Path(raw).is_dir():
        raise BratsConversionError(f"nnUNet_raw={raw} is not an existing folder")
    return Path(raw)


def dataset_folder(dataset_id: int, name: str) -> Path:
    """``$nnUNet_raw/DatasetIII_NAME``, refusing an id that another dataset name already uses."""
    if not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset id must be an integer from 1 to 999, got {dataset_id!r}")
    check_plain_name(name, "dataset name")
    raw = nnunet_raw_dir()
    out = raw / f"Dataset{dataset_id:03d}_{name}"
    others = sorted(p.name for p in raw.glob(f"Dataset{dataset_id:03d}_*") if p != out)
    if others:
        raise BratsConversionError(f"dataset id {dataset_id} is already taken by {others} in {raw}")
    return out


def case_outputs(case_id: str, labeled: bool) -> List[str]:
    """Output files of one case, relative to the dataset folder."""
    folder = "imagesTr" if labeled else "imagesTs"
    files = [f"{folder}/{case_id}_{i:04d}.nii.gz" for i in range(len(CHANNELS))]
    return files + ([f"labelsTr/{case_id}.nii.gz"] if labeled else [])


def _validate(case: BratsCase) -> Tuple[BratsCase, Optional[BadCaseError]]:
    from nnunet_msfen.dataset_conversion.validation import validate_case

    try:
        validate_case(case)
        return case, None
    except BadCaseError as e:
        return case, e


def _convert_case(job: Tuple[BratsCase, Path]) -> Tuple[str, Dict[str, Any]]:
    """Write one (validated) case atomically; returns its manifest record. Runs in worker processes."""
    import SimpleITK as sitk

    from nnunet_msfen.dataset_conversion.manifest import source_stamp
    from nnunet_msfen.dataset_conversion.validation import case_errors, read_labels
    from nnunet_msfen.io.atomic import copy_file, write_image
    from nnunet_msfen.io.images import geometry_of, read_image, to_image
    from nnunet_msfen.labels import to_nnunet

    case, out = job
    stamp = source_stamp(case)  # taken before reading, so a file changed meanwhile shows up on the next run
    rels = case_outputs(case.case_id, case.seg is not None)
    for src, rel in zip(case.images, rels):
        if src.name.endswith(".nii.gz"):
            copy_file(src, out / rel, out)
        else:
            with case_errors(case.case_id):
                voxels, geometry = read_image(src)
            write_image(out / rel, to_image(voxels, geometry), out)
    if case.seg is not None:
        header = sitk.ImageFileReader()  # the T1's geometry from its header, without reading its voxels again
        header.SetFileName(str(case.images[0]))
        header.ReadImageInformation()
        label = to_nnunet(read_labels(case), RELEASES[case.release].convention)
        write_image(out / rels[-1], to_image(label, geometry_of(header)), out)
    return case.case_id, {"brats_id": case.case_id, "release": case.release,
                          "convention": RELEASES[case.release].convention,
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


def _prepare(out: Path, src: Path, release: str, cases: List[BratsCase], overwrite: bool) -> Dict[str, Any]:
    from nnunet_msfen.dataset_conversion.manifest import MANIFEST_NAME, conflicts, load_manifest, new_manifest

    fresh = new_manifest(src, release, RELEASES[release].convention)
    if not out.exists():
        return fresh
    if overwrite:
        shutil.rmtree(out)
        return fresh
    if not (out / MANIFEST_NAME).exists():
        if any(out.iterdir()):
            raise BratsConversionError(f"{out} exists and was not written by convert-brats; use --overwrite to "
                                       f"replace it")
        return fresh
    manifest = load_manifest(out / MANIFEST_NAME)
    why = conflicts(manifest, src, release, cases)
    if why:
        raise BratsConversionError(f"{out} already holds a different dataset ({'; '.join(why)}); use "
                                   f"--overwrite to replace it")
    return manifest


def convert_brats(src: Path, dataset_id: int, name: Optional[str] = None, num_processes: int = 1,
                  overwrite: bool = False, skip_bad: bool = False, progress: bool = True) -> Path:
    """Convert the BraTS release in ``src`` to ``$nnUNet_raw/Dataset{dataset_id:03d}_{name}``; returns that folder.

    Args:
        src: the release folder as distributed (read only, never modified).
        dataset_id: nnU-Net dataset id, 1-999.
        name: dataset name (default ``BraTS<release>``).
        num_processes: worker processes for reading and writing.
        overwrite: replace an existing dataset folder of different content.
        skip_bad: convert the good cases and record the bad ones instead of stopping.
        progress: show tqdm progress bars on stderr.

    Raises:
        ValueError: an invalid argument (names the value).
        LayoutError: ``src`` is not a recognisable BraTS release (a BratsConversionError).
        BadCasesError: bad cases without ``skip_bad`` (or every case bad); ``.errors`` names case and file.
        BratsConversionError: nnUNet_raw unset, or an existing dataset folder of different content.
    """
    from nnunet_msfen.dataset_conversion.manifest import MANIFEST_NAME, outputs_intact, sources_unchanged
    from nnunet_msfen.io.atomic import remove_scratch, write_json

    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}")
    if name is not None:
        check_plain_name(name, "dataset name")  # before scanning: argument errors come first
    src = Path(src).absolute()
    cases = find_cases(src)
    release = cases[0].release
    out = dataset_folder(dataset_id, name or f"BraTS{release}")
    if src == out or src in out.parents or out in src.parents:
        raise BratsConversionError(f"the output {out} and the source {src} must not contain each other")
    manifest = _prepare(out, src, release, cases, overwrite)

    def done(c: BratsCase) -> bool:
        rec = manifest["cases"].get(c.case_id)
        return rec is not None and sources_unchanged(c, rec["sources"]) and outputs_intact(out, rec)

    todo = [c for c in cases if c.problem is not None or not done(c)]
    checked = list(_map(_validate, todo, num_processes, "checking", progress))
    bad = sorted((e for _, e in checked if e is not None), key=lambda e: e.case_id)
    good = sorted((c for c, e in checked if e is None), key=lambda c: c.case_id)
    if bad and (not skip_bad or not good and not manifest["cases"]):
        raise BadCasesError(bad)

    out.mkdir(exist_ok=True)
    remove_scratch(out)  # temporaries left by a killed run
    manifest["skipped"] = {e.case_id: str(e) for e in bad}
    write_json(out / MANIFEST_NAME, manifest, out)
    for case_id, record in _map(_convert_case, [(c, out) for c in good], num_processes, "converting", progress):
        manifest["cases"][case_id] = record
        write_json(out / MANIFEST_NAME, manifest, out)  # after each case: a rerun resumes from here
    _write_dataset_json(out, manifest, release)
    remove_scratch(out)
    return out


def _write_dataset_json(out: Path, manifest: Dict[str, Any], release: str) -> None:
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    from nnunet_msfen.io.atomic import staged_files
    from nnunet_msfen.labels import DATASET_JSON_LABELS, REGIONS_CLASS_ORDER

    n_train = sum(r["split"] == "Tr" for r in manifest["cases"].values())
    with staged_files(out) as tmp:  # generate_dataset_json writes in place: staged, then moved
        generate_dataset_json(str(tmp), dict(enumerate(CHANNELS)), DATASET_JSON_LABELS, n_train, ".nii.gz",
                              regions_class_order=REGIONS_CLASS_ORDER, dataset_name=out.name,
                              reference="https://www.synapse.org/brats", release=release,
                              description=f"BraTS {release}, converted by nnunet-msfen convert-brats from "
                                          f"{manifest['source']}",
                              license="see the BraTS data-use terms", converted_by="nnunet-msfen convert-brats")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen convert-brats``."""
    parser.add_argument("src", type=Path, help="BraTS release folder as distributed (read only)")
    parser.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id (1-999)")
    parser.add_argument("-n", "--name", default=None, help="dataset name (default BraTS<release>)")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of different content")
    parser.add_argument("--skip-bad", action="store_true",
                        help="convert the good cases, list the bad ones at the end (exit 0 if any was converted)")


def run(args: argparse.Namespace) -> int:
    """Run the conversion; user errors become CommandError (exit 1)."""
    from nnunet_msfen.errors import CommandError

    try:
        out = convert_brats(args.src, args.dataset_id, args.name, args.num_processes, args.overwrite, args.skip_bad)
    except (BratsConversionError, ValueError) as e:
        raise CommandError(str(e)) from None
    from nnunet_msfen.dataset_conversion.manifest import MANIFEST_NAME, load_manifest

    manifest = load_manifest(out / MANIFEST_NAME)
    print(f"{out}: {len(manifest['cases'])} case(s) converted")
    if manifest["skipped"]:
        print(f"skipped {len(manifest['skipped'])} bad case(s):", *manifest["skipped"].values(), sep="\n  ",
              file=sys.stderr)
    return 0
