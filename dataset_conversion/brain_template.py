"""A procedural brain: background, CSF, grey matter and white matter on any grid, from a random generator.

The phantom's fallback anatomy when the MNI152 template (mni_template.py, from nilearn's wheel) is not installed,
and the choice for phantoms that must not depend on an installed file (``--anatomy procedural``). Coarse, but it
has what a segmentation network must learn to ignore: an irregular cortical surface with a CSF rim and sulci, a GM
ribbon, WM, lateral ventricles, deep grey nuclei and the interhemispheric fissure, all varying per seed.
"""
from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage

BACKGROUND, CSF, GM, WM = 0, 1, 2, 3


def smooth_noise(rng: np.random.Generator, shape: Sequence[int], cells: Sequence[int]) -> np.ndarray:
    """Smooth random field of ``shape``, about unit variance, varying over ``cells`` control points per axis."""
    cells = [max(2, int(c)) for c in cells]
    low = rng.standard_normal(cells)
    field = ndimage.zoom(low, [s / c for s, c in zip(shape, cells)], order=1, mode="nearest", grid_mode=True)
    return field[tuple(slice(0, s) for s in shape)]


def normalized_grid(shape: Sequence[int]) -> Tuple[np.ndarray, ...]:
    """Open grids (broadcastable) running from -1 to 1 along each axis."""
    return tuple(np.linspace(-1, 1, s).reshape([-1 if i == a else 1 for i in range(len(shape))])
                 for a, s in enumerate(shape))


def _ellipsoid(grids, center, radii) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii)) < 1


def procedural_brain(shape: Sequence[int], rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Tissue map (uint8: 0 background, 1 CSF, 2 GM, 3 WM) and normalised radius on an array of ``shape``.

    ``shape`` is in array order (z, y, x). The radius (< 1 inside the brain) lets callers pick deep positions.
    """
    shape = tuple(int(s) for s in shape)
    z, y, x = normalized_grid(shape)
    rz, ry, rx = (np.array([0.80, 0.88, 0.76]) * rng.uniform(0.94, 1.04, 3))
    radius = np.sqrt((z / rz) ** 2 + (y / ry) ** 2 + (x / rx) ** 2)
    radius = radius + 0.05 * smooth_noise(rng, shape, [4, 4, 4])
    tissue = np.zeros(shape, np.uint8)
    brain = radius < 1
    tissue[brain] = WM
    ribbon = 0.80 + 0.04 * smooth_noise(rng, shape, [5, 5, 5])
    tissue[brain & (radius > ribbon)] = GM
    gyri = smooth_noise(rng, shape, [max(3, s // 5) for s in shape])
    tissue[brain & (radius > ribbon + 0.05) & (gyri > 0.9)] = CSF  # sulci reach into the ribbon
    tissue[brain & (radius > 0.95)] = CSF  # subarachnoid CSF rim
    tissue[brain & (np.abs(x) < 0.025) & (z > -0.2)] = CSF  # interhemispheric fissure
    for side in (-1, 1):
        tissue[_ellipsoid((z, y, x), (0.12, 0.05, 0.16 * side), (0.11, 0.07 + 0.28, 0.06))] = GM  # caudate/thalamus
        vz, vy, vx = 0.14 + rng.uniform(-0.03, 0.03), 0.05, side * rng.uniform(0.08, 0.12)
        tissue[_ellipsoid((z, y, x), (vz, vy, vx), (0.08, 0.30, 0.06 * rng.uniform(0.8, 1.3)))] = CSF  # ventricle
    return tissue, radius
