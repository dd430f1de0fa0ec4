"""Write synthetic BraTS-like cases (phantom_case.py) in the folder layout and file naming of a BraTS release.

Layouts (each as distributed, side files included so that the converter meets them as in the real release):
2018 and 2019 ``HGG/``/``LGG/`` subfolders with CSV files; 2020 uncompressed ``.nii`` with ``name_mapping.csv``
and ``survival_info.csv``; 2021 ``BraTS2021_NNNNN``; 2023 ``BraTS-GLI-NNNNN-000`` with t1n/t1c/t2w/t2f and 2023
labels. The later tasks, by task name: ``gli2024`` (post-treatment time points ``BraTS-GLI-02000-100``, a
resection cavity in every case), ``ssa``, ``men``, ``met`` (the GLI 2023 case under their names), ``ped`` (2024
labels, a cyst in the core), ``menrt`` (``BraTS-MEN-RT-0000-1``: T1c only, the gross tumour volume).
Case i uses the seed (seed, i), so adding cases never changes the earlier ones.

Anatomy: ``template`` (the MNI152 tissue maps nilearn ships, mni_template.py), ``procedural`` (brain_template.py)
or ``auto``: the template when nilearn is installed, otherwise the procedural brain, with a warning. The anatomy
used (and the template files' SHA-256) is recorded in ``phantom.json``: a seed gives the same cases for the same
anatomy on every machine.
"""
import argparse
import sys
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

from nnunet_msfen.dataset_conversion.brats_layouts import RELEASES, is_junk
from nnunet_msfen.dataset_conversion.errors import BratsConversionError

class Layout(NamedTuple):
    """A phantom release: its folder, grade subfolders?, case id format, first index, file ending, side files,
    the release naming (brats_layouts.RELEASES) and the task (``nnunet_msfen.labels.TASKS``)."""

    folder: str
    graded: bool
    id_format: str
    first: int
    ending: str
    side_files: Dict[str, str]
    release: str
    task: str


def _task_layout(folder: str, id_format: str, first: int, release: str, task: str) -> Layout:
    return Layout(folder, False, id_format, first, ".nii.gz", {}, release, task)


LAYOUTS: Dict[str, Layout] = {
    "2018": Layout("MICCAI_BraTS_2018_Data_Training", True, "Brats18_PHA_{:03d}_1", 1, ".nii.gz",
                   {"survival_data.csv": "BraTS18ID,Age,Survival,ResectionStatus\n"}, "2018", "legacy"),
    "2019": Layout("MICCAI_BraTS_2019_Data_Training", True, "BraTS19_PHA_{:03d}_1", 1, ".nii.gz",
                   {"name_mapping.csv": "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,"
                                        "BraTS_2019_subject_ID\n",
                    "survival_data.csv": "BraTS19ID,Age,Survival,ResectionStatus\n"}, "2019", "legacy"),
    "2020": Layout("MICCAI_BraTS2020_TrainingData", False, "BraTS20_Training_{:03d}", 1, ".nii",
                   {"name_mapping.csv": "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,"
                                        "BraTS_2019_subject_ID,BraTS_2020_subject_ID\n",
                    "survival_info.csv": "Brats20ID,Age,Survival_days,Extent_of_Resection\n"}, "2020", "legacy"),
    "2021": _task_layout("BraTS2021_Training_Data", "BraTS2021_{:05d}", 0, "2021", "legacy"),
    "2023": _task_layout("ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData", "BraTS-GLI-{:05d}-000", 0, "2023",
                         "gli2023"),
    # the folder names and time points say 2024, as the real release's do (tasks.py reads both)
    "gli2024": _task_layout("BraTS2024-BraTS-GLI-TrainingData", "BraTS-GLI-{:05d}-100", 2000, "2023", "gli2024"),
    "ssa": _task_layout("ASNR-MICCAI-BraTS2023-SSA-Challenge-TrainingData", "BraTS-SSA-{:05d}-000", 0, "SSA", "ssa"),
    "men": _task_layout("ASNR-MICCAI-BraTS2023-MEN-Challenge-TrainingData", "BraTS-MEN-{:05d}-000", 0, "MEN", "men"),
    "met": _task_layout("ASNR-MICCAI-BraTS2023-MET-Challenge-TrainingData", "BraTS-MET-{:05d}-000", 0, "MET", "met"),
    "ped": _task_layout("BraTS2024-PED-TrainingData", "BraTS-PED-{:05d}-000", 0, "PED", "ped"),
    "menrt": _task_layout("BraTS2024-MEN-RT-TrainingData", "BraTS-MEN-RT-{:04d}-1", 0, "MEN-RT", "menrt"),
}
# nnU-Net channel name -> the phantom's image of that contrast
_CONTRAST = {"T1": "t1", "T1ce": "t1ce", "T2": "t2", "FLAIR": "flair"}
MAX_CASES = 999
ANATOMY_CHOICES = ("auto", "template", "procedural")


class ProceduralFallbackWarning(UserWarning):
    """``anatomy="auto"`` found no template and used the procedural brain."""


def resolve_anatomy(anatomy: str) -> str:
    """``template`` or ``procedural`` for an anatomy choice; ``auto`` picks the template when it is installed and
    warns when it is not. ValueError for an unknown choice, TemplateNotFoundError for ``template`` without it."""
    from nnunet_msfen.dataset_conversion.mni_template import INSTALL_HINT, require_template_folder, template_folder

    if anatomy not in ANATOMY_CHOICES:
        raise ValueError(f"anatomy must be one of {list(ANATOMY_CHOICES)}, got {anatomy!r}")
    if anatomy == "template":
        require_template_folder()
    if anatomy != "auto":
        return anatomy
    if template_folder() is not None:
        return "template"
    warnings.warn(f"the MNI152 template is not installed, the phantoms get the procedural brain ({INSTALL_HINT} "
                  f"for the template)", ProceduralFallbackWarning, stacklevel=3)
    return "procedural"


def _existing_cases(root: Path) -> List[str]:
    found = []
    for d in [root] + [root / g for g in ("HGG", "LGG") if (root / g).is_dir()]:
        found += [p.name for p in d.iterdir() if p.is_dir() and p.name not in ("HGG", "LGG") and not is_junk(p.name)]
    return found


def generate_phantom_dataset(out: Path, n: int, layout: str = "2021", shape: Sequence[int] = (64, 64, 64),
                             seed: int = 0, progress: bool = False, anatomy: str = "auto") -> List[Path]:
    """Write ``n`` phantom cases under ``out/<release folder>/``; returns the case folders in order.
    ``anatomy``: ``auto``, ``template`` or ``procedural`` (module docstring); the one used is in ``phantom.json``.

    Rerunning with the same arguments rewrites identical files (each written atomically). Raises ValueError for
    invalid arguments, BratsConversionError if the release folder already holds cases this call would not
    write (a phantom set of another size or another tool's data must not be mixed into this one).
    """
    import SimpleITK as sitk
    from tqdm import tqdm

    from nnunet_msfen.dataset_conversion.phantom_case import generate_phantom_case
    from nnunet_msfen.io.atomic import remove_scratch, write_image, write_json, write_text

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    if not isinstance(n, int) or not 1 <= n <= MAX_CASES:
        raise ValueError(f"n must be an integer from 1 to {MAX_CASES}, got {n!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    used = resolve_anatomy(anatomy)
    record = {"layout": layout, "n": n, "shape": list(shape), "seed": seed, "anatomy": used}
    if used == "template":
        from nnunet_msfen.dataset_conversion.mni_template import TEMPLATE_NAME, template_fingerprint

        record.update(template=TEMPLATE_NAME, template_sha256=template_fingerprint())
    folder, graded, id_format, first, ending, side_files, release_name, task = LAYOUTS[layout]
    release = RELEASES[release_name]
    root = Path(out) / folder
    ids = [id_format.format(first + i) for i in range(n)]
    if root.is_dir():
        foreign = sorted(set(_existing_cases(root)) - set(ids))
        if foreign:
            raise BratsConversionError(f"{root} already holds other cases {foreign[:5]}; choose an empty OUT")
    case_dirs = []
    for i, case_id in enumerate(tqdm(ids, desc="phantom", unit="case", disable=not progress, file=sys.stderr)):
        case = generate_phantom_case(shape, seed=_case_seed(seed, i), anatomy=used, task=task)
        case_dir = root / (case.grade if graded else "") / case_id
        arrays = [(suffix, case.images[_CONTRAST[c]]) for suffix, c in zip(release.modality_suffixes, release.channels)]
        for suffix, arr in arrays + [(release.seg_suffix, case.seg)]:
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing(case.spacing)
            img.SetOrigin(case.origin)
            write_image(case_dir / (release.file_stem(case_id, suffix) + ending), img, root)
        case_dirs.append(case_dir)
    for name, header in side_files.items():  # header-only CSVs: present like in the release, never read
        write_text(root / name, header, root)
    write_json(Path(out) / "phantom.json", record, root)
    remove_scratch(root)
    return case_dirs


def _case_seed(seed: int, index: int) -> int:
    """Seed of case ``index``: independent streams per (seed, index), stable when n grows."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen phantom``."""
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write the release folder into")
    parser.add_argument("-n", type=int, required=True, help="number of cases")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="2021",
                        help="BraTS release layout: a year up to 2023 (GLI), or a later task (default 2021)")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"), default=(64, 64, 64),
                        help="grid size in voxels of 1 mm (default 64 64 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--anatomy", choices=ANATOMY_CHOICES, default="auto",
                        help="brain anatomy: the MNI152 template nilearn ships, a procedural brain, or auto (the "
                             "template when nilearn is installed, else procedural with a warning; default)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")


def run(args: argparse.Namespace) -> int:
    """Write the phantom cases; user errors become CommandError (exit 1)."""
    import json

    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.dataset_conversion.mni_template import TemplateNotFoundError
    from nnunet_msfen.io.outputs import claim_output

    claim_output(args.out, args.overwrite, folder=True)
    try:
        dirs = generate_phantom_dataset(args.out, args.n, args.layout, tuple(args.shape), args.seed,
                                        progress=True, anatomy=args.anatomy)
    except (BratsConversionError, ValueError, TemplateNotFoundError) as e:
        raise CommandError(str(e)) from None
    record = json.loads((Path(args.out) / "phantom.json").read_text())
    anatomy = record.get("template", "procedural brain")
    print(f"wrote {len(dirs)} phantom case(s) in the BraTS {args.layout} layout under {args.out} "
          f"(anatomy: {anatomy})")
    return 0
