"""The BraTS ET postprocessing rule: its effect, the threshold choice on known cases, and the command."""
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_msfen.cli import main
from nnunet_msfen.evaluation.postprocessing import apply_et_rule, choose_threshold, et_case_stats
from nnunet_msfen.labels import region_masks


def _seg(et_voxels: int, shape=(8, 8, 8)) -> np.ndarray:
    seg = np.zeros(shape, np.uint8)
    seg[1:7, 1:7, 1:7] = 1
    seg[2:6, 2:6, 2:6] = 2
    seg.reshape(-1)[np.flatnonzero(seg.reshape(-1) == 2)[:et_voxels]] = 3
    return seg


def test_rule_turns_small_et_into_necrosis_and_keeps_tc_wt():
    seg = _seg(5)
    out = apply_et_rule(seg, threshold=6)
    assert not (out == 3).any() and (out[seg == 3] == 2).all()
    before, after = region_masks(seg), region_masks(out)
    assert (before["TC"] == after["TC"]).all() and (before["WT"] == after["WT"]).all()
    assert (apply_et_rule(seg, threshold=5) == seg).all()  # 5 voxels is not fewer than 5
    legacy = np.where(seg == 3, 4, np.where(seg == 2, 1, np.where(seg == 1, 2, 0)))
    assert (apply_et_rule(legacy, 6, "legacy")[legacy == 4] == 1).all()  # legacy necrosis label is 1
    with pytest.raises(ValueError, match="-3"):
        apply_et_rule(seg, -3)


def test_threshold_maximises_mean_et_dice():
    ref_no_et, ref_et = _seg(0), _seg(20)
    stats = [
        et_case_stats(_seg(4), ref_no_et),  # false-positive ET of 4 voxels: Dice 0 kept, 1 removed
        et_case_stats(_seg(9), ref_no_et),  # false positive of 9: Dice 0 kept, 1 removed
        et_case_stats(_seg(12), ref_et),  # true ET of 12 (ref 20): Dice 0.75 kept, 0 removed
        et_case_stats(_seg(20), ref_et),  # perfect, large
    ]
    assert stats[2] == (12, pytest.approx(0.75), 0.0)
    threshold, table = choose_threshold(stats)
    # t=0: (0+0+.75+1)/4; t=5: (1+0+.75+1)/4; t=10: (1+1+.75+1)/4 = 0.9375; t=13: (1+1+0+1)/4; t=21: 0.5
    assert threshold == 10
    assert dict(table)[10] == pytest.approx(0.9375) and dict(table)[0] == pytest.approx(0.4375)
    assert choose_threshold([et_case_stats(_seg(20), ref_et)])[0] == 0  # nothing to gain: no postprocessing


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.uint8)), str(path))


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def cv(tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for name, p, r in (("a", 4, 0), ("b", 9, 0), ("c", 12, 20), ("d", 20, 20)):
        _write(pred / f"{name}.nii.gz", _seg(p))
        _write(ref / f"{name}.nii.gz", _seg(r))
    return pred, ref, tmp_path


def test_command_chooses_on_cv_and_applies(cv, capsys):
    pred, ref, tmp = cv
    out = tmp / "pp"
    assert main(["postprocess", str(pred), "-o", str(out), "--ref", str(ref)]) == 0
    study = json.loads((out / "postprocessing.json").read_text())
    assert study["threshold"] == 10 and study["cases_changed"] == 2
    assert study["et_dice_after"] == pytest.approx(0.9375) and study["et_dice_before"] == pytest.approx(0.4375)
    assert not (_read(out / "a.nii.gz") == 3).any() and (_read(out / "c.nii.gz") == 3).sum() == 12
    assert "chosen threshold 10 voxels" in capsys.readouterr().out
    # the chosen threshold applied to another folder with one command
    test_out = tmp / "test_pp"
    assert main(["postprocess", str(pred), "-o", str(test_out), "--threshold-from", str(out / "postprocessing.json")]) == 0
    assert (_read(test_out / "b.nii.gz") == 3).sum() == 0 and (_read(test_out / "d.nii.gz") == 3).sum() == 20


def test_command_errors(cv, capsys):
    pred, ref, tmp = cv
    assert main(["postprocess", str(pred), "-o", str(tmp / "o"), "--threshold", "-1"]) == 1
    assert "got -1" in capsys.readouterr().err and not (tmp / "o").exists()
    assert main(["postprocess", str(pred), "-o", str(pred), "--threshold", "5"]) == 1
    assert "must differ from the input folder" in capsys.readouterr().err
    bad = tmp / "bad.json"
    bad.write_text("{not json")
    assert main(["postprocess", str(pred), "-o", str(tmp / "o"), "--threshold-from", str(bad)]) == 1
    assert "corrupt JSON in" in capsys.readouterr().err and not (tmp / "o").exists()
    with pytest.raises(SystemExit) as e:
        main(["postprocess", str(pred), "-o", str(tmp / "o")])  # no threshold source
    assert e.value.code == 2


def test_corrupt_file_leaves_nothing_written(cv, capsys):
    pred, ref, tmp = cv
    (pred / "d.nii.gz").write_bytes(b"garbage")
    out = tmp / "o"
    assert main(["postprocess", str(pred), "-o", str(out), "--threshold", "5"]) == 1
    assert "d.nii.gz" in capsys.readouterr().err
    assert list(out.iterdir()) == []
