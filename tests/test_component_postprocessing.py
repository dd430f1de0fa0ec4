"""Lesion-wise postprocessing: removing small components per region, its choice on cross-validation cases (only
where no global Dice drops) and the command that chooses, stores and applies it."""
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_msfen.cli import main
from scipy import ndimage

from nnunet_msfen.evaluation.component_postprocessing import (LARGEST, apply_rules, choose_rules, filter_region,
                                                             replacement_tiers)
from nnunet_msfen.evaluation.scoring import scoring_for

WT, TC, ET = (1, 2, 3), (2, 3), (3,)  # nnunet convention: 1 oedema, 2 necrosis, 3 enhancing


def _tumour(shape=(32, 32, 32)) -> np.ndarray:
    seg = np.zeros(shape, np.uint8)
    seg[4:20, 4:20, 4:20] = 1
    seg[7:17, 7:17, 7:17] = 2
    seg[9:15, 9:15, 9:15] = 3
    return seg


def test_a_removed_component_takes_the_label_around_it():
    seg = _tumour()
    seg[26:28, 26:28, 26:28] = 1  # an oedema speck in the background: 8 voxels
    seg[5, 5, 5] = 3  # an enhancing speck inside oedema
    out = filter_region(seg, WT, 10)
    assert not out[26:28, 26:28, 26:28].any() and out[5, 5, 5] == 3  # the speck goes; the tumour stays whole
    out = filter_region(seg, ET, 10)
    assert out[5, 5, 5] == 1 and (out[9:15, 9:15, 9:15] == 3).all()  # ET speck -> oedema; the 216-voxel ET stays
    assert (filter_region(seg, ET, 0) == seg).all()
    largest = filter_region(seg, WT, LARGEST)
    assert not largest[26:28, 26:28, 26:28].any() and (largest[4:20, 4:20, 4:20] == seg[4:20, 4:20, 4:20]).all()


def test_removed_components_stay_in_the_regions_that_contain_them():
    scoring = scoring_for("nnunet")
    assert replacement_tiers(scoring, "WT") == [(0,)]
    assert replacement_tiers(scoring, "TC") == [(1,), (0, 1)]
    assert replacement_tiers(scoring, "ET") == [(2,), (1, 2), (0, 1, 2)]
    seg = _tumour()
    seg[20:26, 10:12, 10:12] = 2  # a 24-voxel necrosis bridge at the tumour's edge, mostly surrounded by background,
    seg[26:30, 8:14, 8:14] = 1  # to an oedema blob that touches the tumour only through it
    whole = lambda s: ndimage.label(s > 0, ndimage.generate_binary_structure(3, 3))[1]  # noqa: E731
    assert whole(seg) == 1
    out = apply_rules(seg, scoring, {"TC": 50})
    assert (out[20:26, 10:12, 10:12] == 1).all() and whole(out) == 1  # the bridge becomes oedema: one tumour
    assert (out[7:17, 7:17, 7:17] == seg[7:17, 7:17, 7:17]).all()
    assert whole(filter_region(seg, TC, 50)) == 2  # the shell's majority label (background) cuts it in two
    seg = _tumour()
    seg[17, 12, 12] = 3  # enhancing speck on the necrosis' face (inside oedema too) -> necrosis, TC unchanged
    seg[5, 5, 5] = 3  # enhancing speck in oedema only -> oedema
    out = apply_rules(seg, scoring, {"ET": 10})
    assert out[17, 12, 12] == 2 and out[5, 5, 5] == 1 and (out[9:15, 9:15, 9:15] == 3).all()


def test_rules_are_checked():
    scoring = scoring_for("nnunet")
    with pytest.raises(ValueError, match="'XT'"):
        apply_rules(_tumour(), scoring, {"XT": 10})
    with pytest.raises(ValueError, match="-5"):
        filter_region(_tumour(), WT, -5)
    with pytest.raises(ValueError, match="'smallest'"):
        filter_region(_tumour(), WT, "smallest")
    with pytest.raises(ValueError, match=r"tiers=\[\(0, 3\)\]"):
        filter_region(_tumour(), ET, 10, [(0, 3)])


def _cv_cases():
    """Predictions = references plus 8-voxel false-positive specks; one reference has a true 64-voxel lesion
    that any threshold above 64 would remove."""
    cases = []
    for i in range(3):
        ref = _tumour()
        pred = ref.copy()
        pred[26:28, 26 - 4 * i:28 - 4 * i, 26:28] = 1
        if i == 0:
            ref[24:28, 4:8, 4:8] = 1
            pred[24:28, 4:8, 4:8] = 1
        cases.append((pred, ref, (1.0, 1.0, 1.0)))
    return cases


def test_the_choice_removes_the_specks_and_keeps_the_small_true_lesion():
    study = choose_rules(_cv_cases(), scoring_for("nnunet"))
    assert study["rules"]["WT"] == 10  # the first size that removes the 8-voxel specks; 100+ would cost Dice
    assert study["after"]["WT"]["lesion_dice"] == pytest.approx(1.0) and study["before"]["WT"]["lesion_dice"] < 0.8
    assert all(study["after"][r]["dice"] >= study["before"][r]["dice"] for r in ("WT", "TC", "ET"))
    refused = [row for row in study["table"] if row["region"] == "WT" and row["rule"] in (100, LARGEST)]
    assert refused and not any(row["allowed"] for row in refused)  # they remove the true 64-voxel lesion
    assert study["rules"]["TC"] == study["rules"]["ET"] == 0  # nothing to gain there: no change


def _write(folder: Path, name: str, arr: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(folder / f"{name}.nii.gz"))


def test_command_chooses_stores_with_the_model_and_applies_with_one_command(tmp_path, capsys):
    for i, (pred, ref, _) in enumerate(_cv_cases()):
        _write(tmp_path / "cv", f"c{i}", pred)
        _write(tmp_path / "ref", f"c{i}", ref)
    model = tmp_path / "model"
    model.mkdir()
    assert main(["postprocess", str(tmp_path / "cv"), "-o", str(tmp_path / "cv_pp"), "--ref", str(tmp_path / "ref"),
                 "--lesion-wise", "--save-to", str(model)]) == 0
    stored = model / "postprocessing_lesion_wise.json"
    assert json.loads(stored.read_text())["rules"] == {"WT": 10, "TC": 0, "ET": 0}
    assert "WT: 10; Dice" in capsys.readouterr().out
    assert main(["postprocess", str(tmp_path / "cv"), "-o", str(tmp_path / "new_pp"), "--from", str(stored)]) == 0
    for i in range(3):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "new_pp" / f"c{i}.nii.gz")))
        assert (a == _cv_cases()[i][1]).all()  # the specks are gone, the true lesion is kept
    # a second choice does not replace the stored one without --overwrite, and nothing is written
    assert main(["postprocess", str(tmp_path / "cv"), "-o", str(tmp_path / "again"), "--ref", str(tmp_path / "ref"),
                 "--lesion-wise", "--save-to", str(model)]) == 1
    assert "--overwrite" in capsys.readouterr().err and not (tmp_path / "again").exists()
    assert main(["postprocess", str(tmp_path / "cv"), "-o", str(tmp_path / "x"), "--threshold", "3",
                 "--lesion-wise"]) == 1
    assert "add --ref REF" in capsys.readouterr().err
