"""Evaluation of every BraTS task: the task's regions in its BraTS labels or in its converted nnU-Net labels, and the
lesion-wise rule of the task (thresholds per region, PED's removal of predicted specks, MEN-RT's uncounted false
positives)."""
import numpy as np
import pytest

from brats_fixtures import write_nifti
from nnunet_msfen.cli import main
from nnunet_msfen.evaluation.evaluate import evaluate_arrays
from nnunet_msfen.evaluation.lesion_wise import lesion_wise
from nnunet_msfen.evaluation.scoring import scoring_for


def test_the_conventions_score_as_before():
    s = scoring_for("legacy")
    assert dict(s.regions) == {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
    assert (s.lesion_wise.dilation, s.lesion_wise.threshold("ET")) == (3, 50.0)
    with pytest.raises(ValueError, match="needs --task"):
        scoring_for("brats")


def test_a_task_in_brats_and_in_nnunet_labels():
    brats, nnunet = scoring_for("brats", "gli2024"), scoring_for("nnunet", "gli2024")
    assert brats.regions["RC"] == (4,) and brats.regions["TC"] == (1, 3) and set(brats.regions) == {
        "WT", "TC", "ET", "NETC", "SNFH", "RC"}
    assert nnunet.regions["TC"] == (2, 3) and nnunet.regions["NETC"] == (2,) and nnunet.regions["SNFH"] == (1,)
    assert brats.lesion_wise.threshold("RC") == 10 and brats.lesion_wise.threshold("WT") == 20
    ped = scoring_for("nnunet", "ped")
    assert ped.regions["ET"] == (4,) and ped.regions["ED"] == (1,)  # PED's ET is label 1, nnU-Net's 4
    with pytest.raises(ValueError, match="'tumour'"):
        scoring_for("brats", "tumour")


def test_unknown_label_names_the_file_and_why():
    with pytest.raises(ValueError, match=r"seg.nii.gz: unknown label value\(s\) \[4\].*resection cavity"):
        scoring_for("2023").check_labels(np.array([0, 1, 4]), "seg.nii.gz")


def _cube(shape=(20, 20, 20)):
    ref = np.zeros(shape, bool)
    ref[4:10, 4:10, 4:10] = True
    return ref


def test_men_rt_counts_no_false_positive_and_ped_drops_predicted_specks():
    ref = _cube()
    pred = ref.copy()
    pred[15:17, 15:17, 15:17] = True  # 8 voxels elsewhere: a false positive
    counted = lesion_wise(pred, ref, (1, 1, 1), dilation=1, volume_threshold=50)
    uncounted = lesion_wise(pred, ref, (1, 1, 1), dilation=1, volume_threshold=50, count_false_positives=False)
    dropped = lesion_wise(pred, ref, (1, 1, 1), dilation=5, volume_threshold=10, min_predicted_voxels=10)
    assert counted["lesion_dice"] == pytest.approx(0.5) and counted["lesion_fp"] == 1
    assert uncounted["lesion_dice"] == pytest.approx(1.0) and uncounted["lesion_fp"] == 1
    assert dropped["lesion_dice"] == pytest.approx(1.0) and dropped["lesion_fp"] == 0


def test_evaluate_arrays_reports_every_region_of_the_task():
    ref = np.zeros((20, 20, 20), np.uint8)
    ref[4:10, 4:10, 4:10] = 1  # PED ET
    ref[12:16, 12:16, 12:16] = 3  # cyst
    result = evaluate_arrays(ref, ref, (1.0, 1.0, 1.0), scoring_for("brats", "ped"))
    assert set(result) == {"WT", "TC", "ET", "NETC", "CC", "ED"}
    assert result["ET"]["dice"] == 1 and result["CC"]["dice"] == 1 and result["NETC"]["dice"] == 1  # both empty


def test_evaluate_command_with_a_task(tmp_path, capsys):
    seg = np.zeros((10, 14, 12), np.uint8)
    seg[2:6, 3:8, 3:8] = 2
    seg[3:5, 4:6, 4:6] = 4  # a resection cavity: GLI 2024 only
    for folder in ("pred", "ref"):
        write_nifti(tmp_path / folder / "c.nii.gz", seg)
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(tmp_path / "a.json"),
                 "--labels", "2023"]) == 1
    assert "resection cavity" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(tmp_path / "b.json"),
                 "--labels", "brats", "--task", "gli2024"]) == 0
    out = capsys.readouterr().out
    assert "RC" in out and "SNFH" in out
