"""BraTS 2023 lesion-wise rules on hand-built cases whose answers are worked out by hand (see each comment)."""
import numpy as np
import pytest
from medpy.metric import binary as ref_impl

from nnunet_msfen.evaluation.lesion_wise import LESION_PENALTY_HD95, lesion_wise

ISO = (1.0, 1.0, 1.0)


def _vol(*boxes, shape=(24, 24, 24)):
    m = np.zeros(shape, bool)
    for b in boxes:
        m[b] = True
    return m


BIG = np.s_[2:6, 2:6, 2:6]  # 64 voxels: scored (> 50 mm^3 at 1 mm)
BIG_FAR = np.s_[2:6, 2:6, 10:14]  # 4 empty voxels from BIG along x
CUBE27 = np.s_[15:18, 15:18, 15:18]  # 27 voxels


def test_both_empty_scores_perfect():
    assert lesion_wise(_vol(), _vol(), ISO) == {"lesion_dice": 1.0, "lesion_hd95": 0.0, "lesion_tp": 0,
                                                "lesion_fp": 0, "lesion_fn": 0, "small_lesion_dice": None,
                                                "n_small_lesions": 0}


def test_perfect_lesion_and_missed_lesion():
    r = lesion_wise(_vol(BIG), _vol(BIG), ISO)
    assert (r["lesion_dice"], r["lesion_hd95"], r["lesion_tp"], r["lesion_fn"]) == (1.0, 0.0, 1, 0)
    r = lesion_wise(_vol(), _vol(BIG), ISO)  # missed: Dice 0, HD95 374
    assert (r["lesion_dice"], r["lesion_hd95"], r["lesion_tp"], r["lesion_fn"]) == (0.0, 374.0, 0, 1)


def test_false_positive_lesion_is_penalised():
    # one perfect lesion + one predicted lesion far from any reference: (1 + 0) / 2 and (0 + 374) / 2
    r = lesion_wise(_vol(BIG, CUBE27), _vol(BIG), ISO)
    assert r["lesion_dice"] == 0.5 and r["lesion_hd95"] == LESION_PENALTY_HD95 / 2 == 187.0
    assert (r["lesion_tp"], r["lesion_fp"], r["lesion_fn"]) == (1, 1, 0)


def test_dilation_merges_close_reference_lesions():
    pred, ref = _vol(BIG), _vol(BIG, BIG_FAR)
    # dilation 3 (18-neighbourhood) bridges the 4-voxel gap: one lesion of 128 voxels, half found
    merged = lesion_wise(pred, ref, ISO, dilation=3)
    assert merged["lesion_dice"] == pytest.approx(2 * 64 / (128 + 64))
    assert merged["lesion_hd95"] == pytest.approx(ref_impl.hd95(pred, ref), abs=1e-3)
    assert (merged["lesion_tp"], merged["lesion_fn"]) == (1, 0)
    # dilation 1 does not: two lesions, one perfect, one missed
    split = lesion_wise(pred, ref, ISO, dilation=1)
    assert (split["lesion_dice"], split["lesion_hd95"], split["lesion_tp"], split["lesion_fn"]) == (0.5, 187.0, 1, 1)


def test_prediction_near_lesion_matches_through_the_dilated_roi():
    ref = _vol(np.s_[4:8, 4:8, 4:8])
    near = np.s_[4:8, 4:8, 10:12]  # 2 voxels from the lesion: inside its 3-voxel ROI, a match with Dice 0
    far = np.s_[4:8, 4:8, 14:16]  # 6 voxels away: outside, a false positive
    r = lesion_wise(_vol(near, far), ref, ISO)
    hd_near = ref_impl.hd95(_vol(near), ref)
    assert (r["lesion_tp"], r["lesion_fp"], r["lesion_fn"]) == (1, 1, 0)
    assert r["lesion_dice"] == 0.0
    assert r["lesion_hd95"] == pytest.approx((hd_near + 374.0) / 2, abs=1e-3) and hd_near < 374


def test_volume_threshold_is_in_mm3_and_strict():
    pred, ref = _vol(), _vol(CUBE27)
    # 27 voxels of 1 mm^3 = 27 mm^3 <= 50: not scored, the case has nothing to score -> perfect
    assert lesion_wise(pred, ref, ISO)["lesion_dice"] == 1.0
    # at 2 x 1 x 1 mm the same lesion is 54 mm^3 > 50: scored and missed
    r = lesion_wise(pred, ref, (2.0, 1.0, 1.0))
    assert (r["lesion_dice"], r["lesion_hd95"], r["lesion_fn"]) == (0.0, 374.0, 1)
    # exactly 50 mm^3 is not scored ("> lesion_volume_thresh" in the official code)
    assert lesion_wise(pred, _vol(np.s_[0:5, 0:5, 0:2]), ISO)["lesion_fn"] == 0


def test_prediction_on_unscored_small_lesion_is_not_a_false_positive():
    r = lesion_wise(_vol(BIG, CUBE27), _vol(BIG, CUBE27), ISO)
    assert (r["lesion_dice"], r["lesion_fp"], r["lesion_tp"]) == (1.0, 0, 1)


def test_small_lesion_dice():
    tiny = np.s_[15:17, 15:17, 15:17]  # 8 mm^3: equivalent diameter 2.5 mm < 5 mm
    half = np.s_[15:17, 15:17, 15:16]  # 4 of its voxels
    big = np.s_[2:7, 2:7, 2:7]  # 125 mm^3: 6.2 mm, not small
    r = lesion_wise(_vol(big, half), _vol(big, tiny), ISO)
    assert r["n_small_lesions"] == 1 and r["small_lesion_dice"] == pytest.approx(2 * 4 / (8 + 4))
    assert r["lesion_dice"] == 1.0  # the tiny lesion is below the BraTS threshold, so not in the lesion-wise score
    # a 4^3 lesion (64 mm^3, diameter 4.96 mm) is small, a 5x5x3 one (75 mm^3, 5.2 mm) is not
    assert lesion_wise(_vol(BIG), _vol(BIG), ISO)["n_small_lesions"] == 1
    assert lesion_wise(_vol(), _vol(np.s_[0:5, 0:5, 0:3]), ISO)["n_small_lesions"] == 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="3-D masks"):
        lesion_wise(np.zeros((4, 4)), np.zeros((4, 4)), (1, 1))
    with pytest.raises(ValueError, match="-1"):
        lesion_wise(_vol(), _vol(), ISO, dilation=-1)
