"""Brain anatomy for the phantom from a real template: the ICBM 2009a nonlinear symmetric MNI152 tissue maps that
nilearn ships inside its wheel (``nilearn/datasets/data/mni_icbm152_{gm,wm,t1}_tal_nlin_sym_09a_converted.nii.gz``;
Fonov et al., NeuroImage 2011). The files are read with SimpleITK from nilearn's install folder, nilearn itself is
never imported (it pulls in scikit-learn and pandas and takes seconds).

Per case, the template is placed in the phantom's grid by a random affine (scale to fill the grid, +-8 % per axis,
+-10 degrees about each axis, a small shift, a left-right flip), so that every seed gives another head pose and
shape around the same real anatomy: cortical ribbon, sulci, ventricles, deep grey nuclei, cerebellum, brain stem.
CSF is what lies inside the closed brain outline (plus a 1 mm rim) and is neither grey nor white matter. The
tissue map has the same classes and the same "radius" companion as ``brain_template.procedural_brain``.
"""
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from nnunet_msfen.dataset_conversion.brain_template import BACKGROUND, CSF, GM, WM

TEMPLATE_NAME = "MNI152 ICBM 2009a nonlinear symmetric (nilearn)"
TEMPLATE_FILES = {"gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                  "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"}
INSTALL_HINT = "pip install nilearn (or: pip install 'nnunet_msfen[template]')"


class TemplateNotFoundError(RuntimeError):
    """The template files are not installed."""


class TissueMaps(NamedTuple):
    """Probability maps in [0, 1], cropped to the brain, array order (z, y, x), 1 mm voxels."""

    csf: np.ndarray
    gm: np.ndarray
    wm: np.ndarray


def template_folder() -> Optional[Path]:
    """nilearn's data folder if nilearn is installed with the template files, else None."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if all((folder / f).is_file() for f in TEMPLATE_FILES.values()) else None


def template_fingerprint() -> Dict[str, str]:
    """SHA-256 of each template file, recorded beside phantoms made from it; TemplateNotFoundError if absent."""
    folder = require_template_folder()
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in TEMPLATE_FILES.values()}


def require_template_folder() -> Path:
    folder = template_folder()
    if folder is None:
        raise TemplateNotFoundError(f"the {TEMPLATE_NAME} template is not installed: {INSTALL_HINT}")
    return folder


@lru_cache(maxsize=1)
def load_tissue_maps() -> TissueMaps:
    """The template's CSF, GM and WM maps (cached per process; ~1 s the first time)."""
    from nnunet_msfen.io.images import read_image

    folder = require_template_folder()
    # the files are oriented (-x, -y, z); flipping y and x gives the array orientation of the BraTS volumes
    gm, wm = (read_image(folder / TEMPLATE_FILES[k])[0][:, ::-1, ::-1].astype(np.float32) / 255.0
              for k in ("gm", "wm"))
    parenchyma = gm + wm
    inside = np.argwhere(parenchyma > 0.1)
    box = tuple(slice(max(0, lo - 4), hi + 5) for lo, hi in zip(inside.min(0), inside.max(0)))
    gm, wm, parenchyma = gm[box], wm[box], parenchyma[box]
    # the brain outline: parenchyma closed over sulci and filled (ventricles), then a 1 mm subarachnoid rim
    solid = ndimage.binary_closing(parenchyma > 0.5, ndimage.generate_binary_structure(3, 1), iterations=3,
                                   border_value=0)
    outline = ndimage.binary_dilation(ndimage.binary_fill_holes(solid), iterations=1)
    csf = np.clip(ndimage.gaussian_filter(outline.astype(np.float32), 0.7) - parenchyma, 0, 1)
    return TissueMaps(np.ascontiguousarray(csf), np.ascontiguousarray(gm), np.ascontiguousarray(wm))


def _rotation(angles: Sequence[float]) -> np.ndarray:
    r = np.eye(3)
    for axis, a in enumerate(angles):
        c, s = np.cos(a), np.sin(a)
        i, j = [k for k in range(3) if k != axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        r = r @ m
    return r


def template_brain(shape: Sequence[int], rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Tissue map (uint8: 0 background, 1 CSF, 2 GM, 3 WM) and normalised radius (0 deepest, 1 at the brain's
    surface and outside) on an array of ``shape`` (z, y, x), from the template in a random pose.

    Raises TemplateNotFoundError when the template is not installed.
    """
    maps = load_tissue_maps()
    shape = tuple(int(s) for s in shape)
    source = np.array(maps.gm.shape, float)
    fill = rng.uniform(0.86, 0.94) * np.min(np.array(shape) / source)  # target voxels per template mm
    scale = fill * rng.uniform(0.92, 1.08, 3)
    flip = np.diag([1.0, 1.0, -1.0 if rng.random() < 0.5 else 1.0])
    forward = _rotation(np.deg2rad(rng.uniform(-10, 10, 3))) @ np.diag(scale) @ flip  # template -> target
    matrix = np.linalg.inv(forward)  # target index -> template index, as affine_transform wants it
    centre = (np.array(shape) - 1) / 2 + rng.uniform(-0.03, 0.03, 3) * np.array(shape)
    offset = (source - 1) / 2 - matrix @ centre

    def place(p: np.ndarray) -> np.ndarray:
        return ndimage.affine_transform(p, matrix, offset, output_shape=shape, order=1, cval=0.0)

    csf, gm, wm = (place(p) for p in maps)
    background = np.clip(1 - csf - gm - wm, 0, 1)
    tissue = np.argmax(np.stack([background, csf, gm, wm]), axis=0).astype(np.uint8)
    assert (BACKGROUND, CSF, GM, WM) == (0, 1, 2, 3)  # argmax order above
    brain = tissue > 0
    depth = ndimage.distance_transform_edt(brain)
    radius = 1 - depth / max(depth.max(), 1.0)
    return tissue, radius
