"""One synthetic BraTS-like case as numpy arrays: four MRI contrasts (int16) and a tumour label map.

Tumours: a main glioma (irregular core of necrosis inside an enhancing rim, or a non-enhancing "LGG-like"
core, inside edema) at a random deep position, and often one or two small lesions of 1-4 voxels in diameter
(< 5 mm at 1 mm spacing). Contrasts follow the usual appearance: T1 hypointense tumour; T1ce bright enhancing
rim around a dark necrotic core; T2 bright CSF, edema and necrosis; FLAIR dark CSF, bright edema. Then partial
volume blur, a smooth multiplicative bias field, Gaussian noise and a per-contrast intensity scale, as int16 with
a zero background like the skull-stripped BraTS volumes. The contrast-to-noise ratio of each tumour class is
high enough (>= 10 in its defining contrast) that a small network learns it within minutes.

Tasks with a structure of their own get it painted over the main tumour (phantom_structures.py): GLI 2024 a
resection cavity, PED a cyst. It draws from a random stream of its own, so the cases of every other task stay
those of the same seed before these tasks existed.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from nnunet_msfen.dataset_conversion.brain_template import CSF, GM, WM, procedural_brain, smooth_noise
from nnunet_msfen.dataset_conversion.phantom_structures import ED, ET, NCR, NET, add_structures, task_labels
from nnunet_msfen.labels import from_nnunet
from nnunet_msfen.brats_tasks import get_task

MODALITIES = ("t1", "t1ce", "t2", "flair")
# internal classes (phantom_structures.py): ED, NCR, ET, NET (non-enhancing solid core, labelled NCR/NET), CYST
# (PED) and CAVITY (GLI 2024: fluid, dark on FLAIR like CSF)
#            background, CSF,  GM,   WM,   ED,   NCR,  ET,   NET,  CYST, CAVITY
_MEANS = {"t1": (0.0, 0.30, 0.60, 0.85, 0.55, 0.25, 0.55, 0.45, 0.20, 0.26),
          "t1ce": (0.0, 0.32, 0.62, 0.86, 0.58, 0.28, 1.40, 0.50, 0.22, 0.28),
          "t2": (0.0, 1.00, 0.62, 0.42, 0.88, 1.05, 0.72, 0.92, 1.15, 1.02),
          "flair": (0.0, 0.12, 0.62, 0.48, 1.00, 0.55, 0.80, 0.88, 0.35, 0.12)}
NOISE_SIGMA = 0.025
LGG_PROBABILITY = 0.15


@dataclass
class PhantomCase:
    """Arrays in (z, y, x) order; ``images`` int16 per modality, ``seg`` uint8 in the labels of ``convention``
    (a label convention or a task of ``nnunet_msfen.labels``)."""

    images: Dict[str, np.ndarray]
    seg: np.ndarray
    convention: str
    spacing: Tuple[float, float, float]
    origin: Tuple[float, float, float]
    grade: str  # "HGG" (enhancing) or "LGG" (no enhancing tumour), for the 2018/2019 folder split


def _lesion(classes: np.ndarray, parenchyma: np.ndarray, center, radius: float, rng: np.random.Generator,
            necrosis: float, enhancing: bool, edema: float) -> None:
    """Paint one tumour into ``classes`` (0 = none): ED outside, then ET rim or NET core, NCR innermost."""
    half = int(np.ceil(radius * edema * 1.35)) + 2
    box = tuple(slice(max(0, c - half), min(s, c + half + 1)) for c, s in zip(center, classes.shape))
    grids = np.ogrid[box]
    scales = radius * rng.uniform(0.75, 1.3, 3)
    d = np.sqrt(sum(((g - c) / s) ** 2 for g, c, s in zip(grids, center, scales)))
    if radius > 3:  # irregular outline; tiny lesions stay compact so that they survive as lesions
        d = d + 0.18 * smooth_noise(rng, d.shape, [3, 3, 3])
    core = (d < 1) & (parenchyma[box] | (d < 0.5))
    wt = ((d < edema) & parenchyma[box]) | ndimage.binary_dilation(core)  # core always wrapped in edema
    sub = classes[box]
    sub[wt & (sub == 0)] = ED
    sub[core] = ET if enhancing else NET
    if enhancing and necrosis > 0:
        sub[(d < necrosis) & ndimage.binary_erosion(core)] = NCR  # the rim stays at least one voxel thick


def _tumours(tissue: np.ndarray, radius_map: np.ndarray,
             rng: np.random.Generator) -> Tuple[np.ndarray, bool, Tuple[int, ...], float]:
    classes = np.zeros(tissue.shape, np.uint8)
    parenchyma = (tissue == GM) | (tissue == WM)
    deep = np.flatnonzero(parenchyma & (radius_map < 0.65))
    lgg = rng.random() < LGG_PROBABILITY
    r_main = rng.uniform(0.06, 0.15) * min(tissue.shape)
    center = main_center = tuple(int(c) for c in np.unravel_index(rng.choice(deep), tissue.shape))
    _lesion(classes, parenchyma, center, r_main, rng, necrosis=rng.choice([0.0, rng.uniform(0.35, 0.7)], p=[0.2, 0.8]),
            enhancing=not lgg, edema=rng.uniform(1.3, 2.0))
    for _ in range(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2])):  # small lesions, diameter 1.6-4.4 voxels
        center = np.unravel_index(rng.choice(deep), tissue.shape)
        _lesion(classes, parenchyma, center, rng.uniform(0.8, 2.2), rng, necrosis=0.0, enhancing=not lgg,
                edema=rng.uniform(1.5, 2.5))
    return classes, lgg, main_center, r_main


ANATOMIES = ("template", "procedural")


def generate_phantom_case(shape: Sequence[int] = (64, 64, 64), seed: int = 0, convention: str = "legacy",
                          anatomy: str = "procedural", task: Optional[str] = None) -> PhantomCase:
    """A phantom case on a grid of ``shape`` = (X, Y, Z) voxels (SimpleITK order) of 1 mm, deterministic in ``seed``
    and ``anatomy``.

    Args:
        shape: grid size (X, Y, Z), each at least 16.
        seed: any non-negative integer; the same seed gives the same arrays.
        convention: labels of the result, ``legacy`` (1 NCR/NET, 2 ED, 4 ET) or ``2023`` (1, 2, 3).
        anatomy: ``template`` (the MNI152 tissue maps nilearn ships, in a random pose: mni_template.py;
            TemplateNotFoundError if nilearn is not installed) or ``procedural`` (brain_template.py, no files).
        task: a BraTS task (``nnunet_msfen.labels.TASKS``): its labels (instead of ``convention``) and, for GLI
            2024 and PED, its own structure.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"shape must be three sizes of at least 16 voxels, got {shape}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if anatomy not in ANATOMIES:
        raise ValueError(f"anatomy must be one of {list(ANATOMIES)}, got {anatomy!r}")
    brats_task = get_task(task) if task is not None else None
    rng = np.random.default_rng(seed)
    if anatomy == "template":
        from nnunet_msfen.dataset_conversion.mni_template import template_brain

        tissue, radius_map = template_brain(shape[::-1], rng)
    else:
        tissue, radius_map = procedural_brain(shape[::-1], rng)
    classes, lgg, center, radius = _tumours(tissue, radius_map, rng)
    if brats_task is not None:  # a stream of its own: the draws below stay those of the other tasks
        add_structures(classes, brats_task.name, center, radius, np.random.default_rng([int(seed), 2024]))
    cls = np.where(classes > 0, classes.astype(np.int64) + 3, tissue)  # index into the _MEANS columns
    mask = cls > 0
    images = {}
    for m in MODALITIES:
        img = np.asarray(_MEANS[m], np.float32)[cls]
        img *= 1 + 0.04 * smooth_noise(rng, img.shape, [s // 4 for s in img.shape])  # tissue texture
        img = ndimage.gaussian_filter(img, 0.6)  # partial volume
        img *= np.exp(0.15 * smooth_noise(rng, img.shape, [3, 3, 3]))  # bias field
        img += rng.normal(0, NOISE_SIGMA, img.shape).astype(np.float32)
        img = np.clip(img, 0, None) * rng.uniform(400, 1200) * mask
        images[m] = np.round(img).astype(np.int16)
    if brats_task is not None:
        seg, convention = task_labels(classes, brats_task), brats_task.name
    else:
        nnunet = np.select([classes == ED, (classes == NCR) | (classes == NET), classes == ET], [1, 2, 3], 0)
        seg = from_nnunet(nnunet.astype(np.uint8), convention)
    return PhantomCase(images, seg, convention, (1.0, 1.0, 1.0), (0.0, -(shape[1] - 1.0), 0.0), "LGG" if lgg else "HGG")
