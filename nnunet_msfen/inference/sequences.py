"""Which MRI sequences a case folder holds, and the zero images that stand in for the missing ones.

Two namings are recognised in the input folder of ``nnunet-msfen predict``:

- nnU-Net's: ``CASE_0000.nii.gz`` ... ``CASE_0003.nii.gz`` side by side (channel order T1, T1ce, T2, FLAIR, as
  ``convert-brats`` writes them); any channel file may be absent;
- BraTS's: one folder per case with ``<case>_t1.nii.gz`` ... (2018-2021) or ``<case>-t1n.nii.gz`` ... (2023+), as
  ``convert-brats`` recognises them; any sequence file may be absent, ``seg`` files are ignored.

A missing sequence becomes an all-zero image with the geometry of the case's present sequences: nnU-Net's z-score
normalisation keeps it zero, which is what ``nnUNetTrainer*_ModalityDropout`` trains for and what MSFEN's stem
recognises as absent.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

SEQUENCES = ("t1", "t1ce", "t2", "flair")  # nnU-Net channel order _0000.._0003
# every name a release gives a sequence (2018-2021, 2023+)
SEQUENCE_ALIASES = {"t1": "t1", "t1n": "t1", "t1ce": "t1ce", "t1c": "t1ce", "t2": "t2", "t2w": "t2", "flair": "flair",
                    "t2f": "flair"}
_NNUNET_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii(\.gz)?$")
_BRATS_FILE = re.compile(r"^(?P<case>.+?)[_-](?P<sequence>[A-Za-z0-9]+)\.nii(\.gz)?$")


@dataclass
class CaseInputs:
    """One case: its id and, per sequence (``SEQUENCES`` order), the file or ``None`` where it is missing."""

    case_id: str
    files: List[Optional[Path]]
    dropped: List[str] = field(default_factory=list)  # present on disk but left out on purpose (--missing)

    @property
    def missing(self) -> List[str]:
        return [s for s, f in zip(SEQUENCES, self.files) if f is None]


def find_cases(folder: Path) -> List[CaseInputs]:
    """The cases of ``folder`` in nnU-Net's or BraTS's naming (module docstring), sorted by id.

    Raises:
        ValueError: naming the folder when it is missing or holds no case, naming the file when a channel index
            or sequence name is unknown or a sequence appears twice for one case.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"input folder not found: {folder}")
    cases: Dict[str, List[Optional[Path]]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and (m := _NNUNET_FILE.match(path.name)):
            _put(cases, m["case"], int(m["channel"]), path)
        elif path.is_dir():
            for file in sorted(path.iterdir()):
                if not file.is_file() or not (m := _BRATS_FILE.match(file.name)) or m["sequence"].lower() == "seg":
                    continue
                sequence = SEQUENCE_ALIASES.get(m["sequence"].lower())
                if sequence is None:
                    raise ValueError(f"{file}: unknown sequence {m['sequence']!r}; expected one of "
                                     f"{sorted(SEQUENCE_ALIASES)}")
                _put(cases, path.name, SEQUENCES.index(sequence), file)
    if not cases:
        raise ValueError(f"no case found in {folder}: expected CASE_0000.nii.gz ... files or BraTS case folders")
    return [CaseInputs(case, files) for case, files in sorted(cases.items())]


def _put(cases: Dict[str, List[Optional[Path]]], case: str, channel: int, path: Path) -> None:
    if channel >= len(SEQUENCES):
        raise ValueError(f"{path}: channel {channel:04d} is not one of the {len(SEQUENCES)} sequences "
                         f"{list(SEQUENCES)}")
    files = cases.setdefault(case, [None] * len(SEQUENCES))
    if files[channel] is not None:
        raise ValueError(f"case {case}: {SEQUENCES[channel]} given twice ({files[channel].name}, {path.name})")
    files[channel] = path


def drop_sequences(cases: List[CaseInputs], names: Sequence[str]) -> None:
    """Leave the sequences ``names`` out of every case (``--missing``), recording those that were present.

    Raises:
        ValueError: for an unknown sequence name.
    """
    for name in names:
        sequence = SEQUENCE_ALIASES.get(name.lower())
        if sequence is None:
            raise ValueError(f"unknown sequence {name!r} in --missing; expected one of {list(SEQUENCES)}")
        index = SEQUENCES.index(sequence)
        for case in cases:
            if case.files[index] is not None:
                case.files[index] = None
                case.dropped.append(sequence)


def write_filled_case(case: CaseInputs, folder: Path) -> List[Path]:
    """The case's four channel files in nnU-Net's naming under ``folder``: links to the present sequences, zero
    images of their geometry for the missing ones.

    Raises:
        ValueError: naming the case when every sequence is missing, and naming the file when a sequence cannot be
            read or its geometry differs from the first present one's.
    """
    import numpy as np
    import SimpleITK as sitk

    from nnunet_msfen.io.images import check_same_geometry, read_image, to_image

    present = [f for f in case.files if f is not None]
    if not present:
        raise ValueError(f"case {case.case_id}: every sequence is missing ({', '.join(SEQUENCES)})")
    shape, reference = None, None
    for f in present:  # every present file read completely: a truncated or misaligned one is named here
        array, geometry = read_image(f)
        if reference is None:
            shape, reference = array.shape, geometry
        else:
            check_same_geometry(geometry, reference, str(f), str(present[0]))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for channel, f in enumerate(case.files):
        dest = folder / f"{case.case_id}_{channel:04d}.nii.gz"
        if f is not None:
            dest.symlink_to(Path(f).absolute())
        else:
            sitk.WriteImage(to_image(np.zeros(shape, np.float32), reference), str(dest), True)
        out.append(dest)
    return out
