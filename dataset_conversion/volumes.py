"""Region volumes of exported segmentations: ``volumes.csv`` beside a BraTS submission.

One row per case, one column per region the task reports (``BratsTask.regions``), in millilitres: voxels of the
region times the voxel volume from the image's spacing (mm^3), / 1000. Rounded to 1e-6 mL (1 mm^3 is 1e-3 mL),
so that the file does not change with float noise.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from nnunet_msfen.io.images import Geometry
from nnunet_msfen.brats_tasks import BratsTask

VOLUMES_NAME = "volumes.csv"


def region_volumes_ml(seg: np.ndarray, geometry: Geometry, task: BratsTask) -> Dict[str, float]:
    """Volume in mL of every region of ``task`` in ``seg`` (BraTS labels of the task) on ``geometry``."""
    voxel_mm3 = float(np.prod([float(s) for s in geometry["spacing"]]))
    if not voxel_mm3 > 0:
        raise ValueError(f"voxel spacing {tuple(geometry['spacing'])} gives no positive voxel volume")
    return {region: round(int(mask.sum()) * voxel_mm3 / 1000.0, 6) for region, mask in task.region_masks(seg).items()}


def volumes_table(task: BratsTask, volumes: Sequence[Tuple[str, Dict[str, float]]]) -> Tuple[List[str], List[list]]:
    """(header, rows) of volumes.csv for ``(case id, region volumes)`` pairs, rows sorted by case id."""
    header = ["case"] + [f"{region}_mL" for region in task.regions]
    return header, [[case_id] + [v[r] for r in task.regions] for case_id, v in sorted(volumes)]


def volumes_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The CSV text ``write_csv`` writes for ``header`` and ``rows`` (to compare with an existing file)."""
    import csv
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_volumes(out_dir: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write ``out_dir/volumes.csv`` atomically; returns its path."""
    from nnunet_msfen.io.atomic import write_csv

    path = Path(out_dir) / VOLUMES_NAME
    write_csv(path, header, rows, out_dir)
    return path
