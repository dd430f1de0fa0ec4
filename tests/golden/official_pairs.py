"""Deterministic synthetic label-map pairs for cross-checking ``nnunet_msfen.evaluation.panoptic`` against the
official BraTS evaluation (``brats-evaluation``, which scores with ``panoptica``).

Shared by ``make_official_metrics.py`` (run with the official package's interpreter; it must not import
nnunet_msfen) and ``tests/test_official_metrics.py``: both rebuild the arrays from the JSON specs below, so the golden
file records the generation parameters, never the arrays. Pure numpy, and no random-number generator whose stream
could change between NumPy versions: the only "noise" is an integer hash (splitmix64) of the voxel index.

A pair spec (JSON): ``name``, ``shape``, ``spacing`` (mm per array axis), ``ref`` and ``pred`` (lists of blobs)
and ``noise`` (``{"seed", "fraction"}`` or None: boundary noise on the prediction). A blob ``{"center", "radii",
"labels"}`` paints nested ellipsoids, outer to inner, the k-th with the radii scaled by ``LAYER_SCALES[k]``; blobs
are painted in order and label 0 carves.
"""
import hashlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

LAYER_SCALES = (1.0, 0.65, 0.35)
SHAPE = (40, 48, 44)

# official config -> (tumour labels from outer to inner layer, labels painted as separate blobs); each config's
# groups are the label sets of its YAML (brats_evaluation/configs/config_<name>.yaml)
LAYOUTS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    "gli": ((2, 3, 1), (4,)),  # SNFH around ET around NETC; RC apart
    "mets": ((2, 3, 1), (4,)),
    "ped": ((4, 1, 2), (3,)),  # ED around ET around NETC; cyst apart
    "MenPre": ((2, 3, 1), ()),
    "MenRT": ((1,), ()),  # GTV
}

_MASK64 = (1 << 64) - 1


def _hash32(shape: Sequence[int], seed: int) -> np.ndarray:
    """A uint64 array of 32-bit hashes, one per voxel (splitmix64 of the flat index and the seed)."""
    z = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(tuple(shape))
    z = z + np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(32)


def paint(shape: Sequence[int], blobs: Sequence[Dict]) -> np.ndarray:
    """A uint8 label map with ``blobs`` painted in order (module docstring)."""
    arr = np.zeros(tuple(shape), dtype=np.uint8)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    for blob in blobs:
        for scale, label in zip(LAYER_SCALES, blob["labels"]):
            dist = sum(((g - c) / (r * scale)) ** 2 for g, c, r in zip(grid, blob["center"], blob["radii"]))
            arr[dist <= 1.0] = label
    return arr


def perturb(arr: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """``arr`` where a hashed ``fraction`` of the voxels on a label boundary take one neighbour's label."""
    h = _hash32(arr.shape, seed)
    direction = h % np.uint64(6)
    flip = (h >> np.uint64(8)) < np.uint64(int(fraction * (1 << 24)))
    out = arr.copy()
    for d in range(6):
        # blobs stay clear of the image border, so np.roll's wrap-around never brings a label in
        neighbour = np.roll(arr, 1 if d % 2 else -1, axis=d // 2)
        sel = flip & (direction == np.uint64(d)) & (neighbour != arr)
        out[sel] = neighbour[sel]
    return out


def make_pair(spec: Dict) -> Tuple[np.ndarray, np.ndarray]:
    """``(prediction, reference)`` uint8 label maps of one spec."""
    ref = paint(spec["shape"], spec["ref"])
    pred = paint(spec["shape"], spec["pred"])
    if spec.get("noise"):
        pred = perturb(pred, spec["noise"]["seed"], spec["noise"]["fraction"])
    return pred, ref


def digest(pred: np.ndarray, ref: np.ndarray) -> str:
    """sha256 of both arrays (uint8, C order): the test checks that it rebuilt the very arrays that were scored."""
    return hashlib.sha256(np.ascontiguousarray(pred, np.uint8).tobytes()
                          + np.ascontiguousarray(ref, np.uint8).tobytes()).hexdigest()


def _blob(center, radii, labels) -> Dict:
    return {"center": list(center), "radii": list(radii), "labels": list(labels)}


def pair_specs(config: str) -> List[Dict]:
    """The pairs scored for one official config: lesions, a missed lesion, a split lesion, false-positive specks,
    merged lesions, no overlap at all, an empty prediction / reference / both, anisotropic spacing, an ambiguous
    matching, many lesions."""
    layers, extras = LAYOUTS[config]
    inner, outer = layers[-1], layers[0]

    def extra(center, radii):
        return [_blob(center, radii, extras[:1])] if extras else []

    ref_lesions = [_blob((12, 14, 12), (6, 7, 6), layers), _blob((26, 32, 28), (5, 5, 6), layers),
                   _blob((30, 12, 34), (3, 4, 3), layers)] + extra((10, 36, 32), (3, 4, 4))
    pred_lesions = [_blob((13, 14, 13), (6, 6, 7), layers), _blob((26, 31, 28), (5, 6, 5), layers),
                    _blob((30, 13, 33), (3, 3, 3), layers)] + extra((11, 36, 31), (3, 3, 4))
    split_and_specks = [pred_lesions[0], _blob((12, 14, 12), (0.6, 20, 20), (0,)),  # a 1-voxel cut splits lesion A
                        pred_lesions[2]] + pred_lesions[3:] + [  # lesion B is missed
                        _blob((36, 40, 6), (0.5, 0.5, 0.5), (inner,)),  # a one-voxel false positive
                        _blob((4, 4, 40), (0.5, 1, 0.5), (outer,))]  # a three-voxel one
    many_ref, many_pred = [], []
    for i, (z, y, x) in enumerate((z, y, x) for z in (8, 20, 32) for y in (8, 22, 36) for x in (10, 30)):
        r = 2 + (i % 3) * 0.7
        labels = layers if i % 2 else layers[:1]
        many_ref.append(_blob((z, y, x), (r, r, r + 0.5), labels))
        if i % 4 != 1:  # every fourth lesion is missed
            many_pred.append(_blob((z + i % 3 - 1, y + (i // 3) % 3 - 1, x), (r, r + 0.4, r), labels))
        if i % 5 == 0:  # and a speck beside every fifth
            many_pred.append(_blob((z, y, x + 7), (0.5, 0.5, 0.5), layers[-1:]))
    many_ref += extra((20, 44, 20), (2, 2, 3))
    many_pred += extra((20, 44, 21), (2, 2, 3))
    base = {"shape": list(SHAPE), "spacing": [1.0, 1.0, 1.0]}
    return [
        {**base, "name": "lesions", "ref": ref_lesions, "pred": pred_lesions, "noise": {"seed": 1, "fraction": 0.25}},
        {**base, "name": "split_missed_specks", "ref": ref_lesions, "pred": split_and_specks,
         "noise": {"seed": 2, "fraction": 0.2}},
        {**base, "name": "merged_and_displaced",
         "ref": [_blob((14, 14, 14), (4, 4, 4), layers), _blob((14, 14, 24), (4, 4, 4), layers),
                 _blob((30, 34, 30), (4, 5, 4), layers)] + extra((8, 38, 8), (3, 3, 3)),
         "pred": [_blob((14, 14, 19), (5, 5, 10), layers), _blob((30, 34, 40), (4, 5, 3), layers)]
         + extra((8, 38, 13), (3, 3, 3)), "noise": None},
        {**base, "name": "no_overlap", "ref": [_blob((20, 24, 14), (5, 5, 5), layers)] + extra((10, 10, 10), (3, 3, 3)),
         "pred": [_blob((20, 24, 30), (5, 5, 5), layers)] + extra((30, 38, 34), (3, 3, 3)), "noise": None},
        {**base, "name": "empty_prediction", "ref": ref_lesions, "pred": [], "noise": None},
        {**base, "name": "empty_reference", "ref": [], "pred": pred_lesions, "noise": {"seed": 4, "fraction": 0.25}},
        {**base, "name": "both_empty", "ref": [], "pred": [], "noise": None},
        {**base, "name": "anisotropic", "spacing": [2.0, 0.8, 1.2], "ref": ref_lesions, "pred": split_and_specks,
         "noise": {"seed": 3, "fraction": 0.3}},
        # one predicted component straddles two lesions and a second one overlaps the first lesion only: the
        # optimal one-to-one assignment differs from taking the best-overlapping pair first
        {**base, "name": "ambiguous_matching",
         "ref": [_blob((20, 24, 12), (5, 5, 5), layers), _blob((20, 24, 28), (5, 5, 5), layers)],
         "pred": [_blob((20, 24, 20), (5, 5, 9), layers), _blob((20, 24, 8), (4, 4, 3), layers)], "noise": None},
        {**base, "name": "many_lesions", "ref": many_ref, "pred": many_pred, "noise": {"seed": 5, "fraction": 0.15}},
    ]
