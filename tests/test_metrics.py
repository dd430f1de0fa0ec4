"""Region metrics against medpy (an independent reference implementation), and the BraTS empty-mask rules."""
import numpy as np
import pytest
from medpy.metric import binary as ref_impl

from nnunet_msfen.evaluation.metrics import EMPTY_HD95, dice, hd95, iou, region_metrics
from nnunet_msfen.labels import check_labels, region_masks

DICE_TOL, HD_TOL = 1e-6, 1e-3


def _random_pair(seed: int, shape=(18, 22, 15), fill=0.08):
    rng = np.random.default_rng(seed)
    a = rng.random(shape) < fill
    # B overlaps A partly: a shifted, thinned copy plus its own noise
    b = (np.roll(a, rng.integers(-2, 3), axis=rng.integers(0, 3)) & (rng.random(shape) < 0.8)) | (rng.random(shape) < 0.02)
    return a, b


def _blob_pair():
    """Two disconnected lesions in the reference; the prediction finds one, shifted, plus a false positive."""
    ref = np.zeros((20, 24, 24), bool)
    ref[2:6, 3:8, 3:9] = True
    ref[12:17, 14:20, 15:21] = True
    pred = np.zeros_like(ref)
    pred[3:7, 4:9, 3:9] = True
    pred[15:19, 0:3, 0:2] = True  # touches the image border: surface voxels there count, as in medpy
    return pred, ref


SPACINGS = [(1.0, 1.0, 1.0), (3.0, 0.9, 0.9), (0.5, 1.7, 2.3)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", SPACINGS)
def test_random_pairs_match_medpy(seed, spacing):
    pred, ref = _random_pair(seed)
    assert abs(dice(pred, ref) - ref_impl.dc(pred, ref)) < DICE_TOL
    assert abs(iou(pred, ref) - ref_impl.jc(pred, ref)) < DICE_TOL
    assert abs(hd95(pred, ref, spacing) - ref_impl.hd95(pred, ref, voxelspacing=spacing)) < HD_TOL
    m = region_metrics(pred, ref, spacing)
    assert abs(m["sensitivity"] - ref_impl.sensitivity(pred, ref)) < DICE_TOL
    assert abs(m["specificity"] - ref_impl.specificity(pred, ref)) < DICE_TOL
    assert abs(m["precision"] - ref_impl.precision(pred, ref)) < DICE_TOL


@pytest.mark.parametrize("spacing", SPACINGS)
def test_disconnected_lesions_and_border_match_medpy(spacing):
    pred, ref = _blob_pair()
    assert abs(dice(pred, ref) - ref_impl.dc(pred, ref)) < DICE_TOL
    expected = ref_impl.hd95(pred, ref, voxelspacing=spacing)
    assert expected > 5  # the false positive far away dominates the tail
    assert abs(hd95(pred, ref, spacing) - expected) < HD_TOL


def test_single_voxels():
    a = np.zeros((9, 9, 9), bool)
    b = np.zeros_like(a)
    a[4, 4, 4] = True
    b[4, 4, 7] = True
    spacing = (1.0, 2.0, 0.5)
    assert dice(a, b) == 0.0 and dice(a, a) == 1.0
    assert hd95(a, b, spacing) == pytest.approx(1.5)  # 3 voxels along x at 0.5 mm
    assert abs(hd95(a, b, spacing) - ref_impl.hd95(a, b, voxelspacing=spacing)) < HD_TOL
    assert hd95(a, a, spacing) == 0.0


def test_empty_mask_conventions():
    empty = np.zeros((6, 6, 6), bool)
    full = empty.copy()
    full[1:3, 1:3, 1:3] = True
    both = region_metrics(empty, empty, (1, 1, 1))
    assert both == {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "sensitivity": 1.0, "specificity": 1.0, "precision": 1.0}
    missed = region_metrics(empty, full, (1, 1, 1))
    assert missed["dice"] == 0.0 and missed["hd95"] == EMPTY_HD95 == 373.13
    assert missed["sensitivity"] == 0.0 and missed["precision"] == 0.0
    hallucinated = region_metrics(full, empty, (1, 1, 1))
    assert hallucinated["dice"] == 0.0 and hallucinated["hd95"] == 373.13 and hallucinated["sensitivity"] == 0.0
    assert hallucinated["specificity"] == pytest.approx(1 - 8 / 216)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(4, 4, 4\) vs reference \(4, 4, 5\)"):
        dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


@pytest.mark.parametrize("convention, seg_labels, expected", [
    ("nnunet", [1, 2, 3], {"WT": [1, 1, 1], "TC": [0, 1, 1], "ET": [0, 0, 1]}),
    ("legacy", [1, 2, 4], {"WT": [1, 1, 1], "TC": [1, 0, 1], "ET": [0, 0, 1]}),
    ("2023", [1, 2, 3], {"WT": [1, 1, 1], "TC": [1, 0, 1], "ET": [0, 0, 1]}),
])
def test_label_conventions(convention, seg_labels, expected):
    seg = np.array(seg_labels).reshape(3, 1, 1)
    masks = region_masks(seg, convention)
    assert {r: m.ravel().astype(int).tolist() for r, m in masks.items()} == expected


def test_unknown_label_and_convention_are_named():
    with pytest.raises(ValueError, match=r"case_7.nii.gz: unknown label value\(s\) \[4\]"):
        check_labels(np.array([0, 1, 4]), "nnunet", "case_7.nii.gz")
    with pytest.raises(ValueError, match="'brats2030'"):
        region_masks(np.zeros(3), "brats2030")
