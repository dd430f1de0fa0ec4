"""`nnunet-msfen evaluate` on tiny folders: schema, CSV, missing cases, spacing, parallel runs and bad input."""
import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from medpy.metric import binary as ref_impl

from nnunet_msfen.cli import main

SITK_SPACING = (0.5, 1.0, 3.0)  # x, y, z: the array (z, y, x) spacing is (3.0, 1.0, 0.5)
CONSOLE = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nnunet-msfen"


def _write(path: Path, arr: np.ndarray, spacing=SITK_SPACING) -> None:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


def _case(i: int) -> np.ndarray:
    seg = np.zeros((10, 16, 16), np.uint8)
    seg[2:8, 3:13, 3:13] = 1
    seg[3:7, 5:11, 5:11] = 2
    seg[4:6, 6 + i % 2:10, 6:10] = 3
    return seg


@pytest.fixture
def folders(tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    for i in range(3):
        _write(ref / f"c{i}.nii.gz", _case(i))
        if i < 2:  # c2 has no prediction
            _write(pred / f"c{i}.nii.gz", np.roll(_case(i), i, axis=2))
    return pred, ref, tmp_path


def test_evaluate_writes_json_and_csv(folders, capsys):
    pred, ref, tmp = folders
    out = tmp / "res" / "metrics.json"
    assert main(["evaluate", str(pred), str(ref), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["missing"] == ["c2"] and sorted(data["per_case"]) == ["c0", "c1", "c2"]
    assert data["per_case"]["c0"]["WT"]["dice"] == 1.0
    assert data["per_case"]["c2"]["ET"]["dice"] == 0.0 and data["per_case"]["c2"]["ET"]["hd95"] == 373.13
    # HD95 uses the spacing in array order (z, y, x) = (3.0, 1.0, 0.5): the 1-voxel x shift of c1 is 0.5 mm
    p, r = np.isin(np.roll(_case(1), 1, axis=2), (1, 2, 3)), np.isin(_case(1), (1, 2, 3))
    assert data["per_case"]["c1"]["WT"]["hd95"] == pytest.approx(ref_impl.hd95(p, r, (3.0, 1.0, 0.5)), abs=1e-3)
    assert data["per_case"]["c1"]["WT"]["hd95"] == pytest.approx(0.5)
    for metric in ("dice", "iou", "hd95", "sensitivity", "specificity", "precision", "lesion_dice", "lesion_hd95",
                   "small_lesion_dice"):
        assert metric in data["mean"]["ET"]
    assert data["mean"]["WT"]["dice"] == pytest.approx(np.mean([data["per_case"][c]["WT"]["dice"] for c in "c0 c1 c2".split()]))
    rows = list(csv.DictReader((tmp / "res" / "metrics.csv").open()))
    assert len(rows) == 4 * 3 and rows[-1]["case"] == "mean"
    assert float(rows[0]["dice"]) == data["per_case"]["c0"]["WT"]["dice"]
    printed = capsys.readouterr().out
    assert "missing predictions (scored as empty): c2" in printed and "lesion_dice" in printed


def test_parallel_matches_serial(folders):
    pred, ref, tmp = folders
    assert main(["evaluate", str(pred), str(ref), "-o", str(tmp / "a.json")]) == 0
    assert main(["evaluate", str(pred), str(ref), "-o", str(tmp / "b.json"), "-np", "2"]) == 0
    assert json.loads((tmp / "a.json").read_text())["per_case"] == json.loads((tmp / "b.json").read_text())["per_case"]


def test_console_script(folders):
    pred, ref, tmp = folders
    out = tmp / "cli.json"
    proc = subprocess.run([str(CONSOLE), "evaluate", str(pred), str(ref), "-o", str(out), "--labels", "nnunet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["missing"] == ["c2"]
    bad = subprocess.run([str(CONSOLE), "evaluate", str(tmp / "nope"), str(ref), "-o", str(tmp / "x.json")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "prediction folder not found" in bad.stderr and "Traceback" not in bad.stderr


def _expect_error(argv, message, capsys, out):
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".csv").exists()


def test_geometry_mismatch_is_named(folders, capsys):
    pred, ref, tmp = folders
    _write(pred / "c1.nii.gz", _case(1), spacing=(1.0, 1.0, 1.0))
    _expect_error(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json")], "c1.nii.gz has spacing", capsys,
                  tmp / "o.json")


def test_unknown_label_is_named(folders, capsys):
    pred, ref, tmp = folders
    seg = _case(0)
    seg[0, 0, 0] = 4  # a legacy ET label in an nnU-Net-convention file
    _write(pred / "c0.nii.gz", seg)
    _expect_error(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json")], "unknown label value(s) [4]", capsys,
                  tmp / "o.json")


def test_corrupt_file_is_named(folders, capsys):
    pred, ref, tmp = folders
    (pred / "c0.nii.gz").write_bytes(b"not a nifti file")
    _expect_error(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json")], "c0.nii.gz", capsys, tmp / "o.json")


def test_prediction_without_reference_and_missing_folder(folders, capsys):
    pred, ref, tmp = folders
    _write(pred / "stray.nii.gz", _case(0))
    _expect_error(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json")], "stray", capsys, tmp / "o.json")
    _expect_error(["evaluate", str(pred), str(tmp / "none"), "-o", str(tmp / "o.json")],
                  "reference folder not found", capsys, tmp / "o.json")
    _expect_error(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json"), "-np", "0"], "-np must be >= 1, got 0",
                  capsys, tmp / "o.json")


def test_wrong_flag_exits_nonzero(folders):
    pred, ref, tmp = folders
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(pred), str(ref), "-o", str(tmp / "o.json"), "--labels", "brats2030"])
    assert e.value.code == 2
