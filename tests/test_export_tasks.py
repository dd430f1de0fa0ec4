"""export-brats for every task: convert -> export round trips voxel for voxel, and volumes.csv by hand."""
import csv

import numpy as np
import pytest
import SimpleITK as sitk

from brats_fixtures import TASK_LAYOUTS, make_release, read, tree_hash, write_nifti

from nnunet_msfen.cli import main  # noqa: E402
from nnunet_msfen.dataset_conversion.convert_brats import convert_brats  # noqa: E402
from nnunet_msfen.dataset_conversion.errors import BratsConversionError  # noqa: E402
from nnunet_msfen.dataset_conversion.export_brats import export_brats  # noqa: E402
from nnunet_msfen.brats_tasks import TASKS  # noqa: E402


def volumes(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("name", sorted(TASK_LAYOUTS))
def test_round_trip_per_task(tmp_path, nnunet_dirs, name):
    src, cases = make_release(tmp_path / "src", name, n=2)
    out = convert_brats(src, 4, progress=False, task=name)
    written = export_brats(out / "labelsTr", tmp_path / "sub", dataset_id=4)
    assert sorted(p.name for p in written) == sorted(f"{c}.nii.gz" for c in cases)
    table = volumes(tmp_path / "sub" / "volumes.csv")
    assert table[0] == ["case"] + [f"{r}_mL" for r in TASKS[name].regions]
    for row, (case_id, case) in zip(table[1:], sorted(cases.items())):
        exported = sitk.ReadImage(str(tmp_path / "sub" / f"{case_id}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(exported), case["seg"])  # RC, CC and GTV included
        assert sitk.GetArrayFromImage(exported).dtype == np.uint8
        original = sitk.ReadImage(str(case["paths"]["seg"]))
        assert exported.GetSpacing() == original.GetSpacing() and exported.GetOrigin() == original.GetOrigin()
        expected = [np.isin(case["seg"], labels).sum() / 1000 for labels in TASKS[name].regions.values()]
        assert row[0] == case_id and [float(v) for v in row[1:]] == pytest.approx(expected, abs=1e-9)


def test_volumes_by_hand(tmp_path):
    """Two PED cases in nnU-Net labels (1 ED, 2 NETC, 3 CC, 4 ET) on 2 x 1 x 1.5 mm voxels (3 mm^3)."""
    pred = tmp_path / "pred"
    a = np.array([0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 4, 4], np.uint8).reshape(2, 2, 3)
    write_nifti(pred / "BraTS-PED-00002-000.nii.gz", a, spacing=(2.0, 1.0, 1.5))
    write_nifti(pred / "BraTS-PED-00001-000.nii.gz", np.zeros((2, 2, 3), np.uint8), spacing=(2.0, 1.0, 1.5))
    export_brats(pred, tmp_path / "sub", task="ped")
    # WT 10 voxels, TC = ET 4 + NETC 2 + CC 1 = 7, ET 4, NETC 2, CC 1, ED 3; x 3 mm^3 / 1000
    assert volumes(tmp_path / "sub" / "volumes.csv") == [
        ["case", "WT_mL", "TC_mL", "ET_mL", "NETC_mL", "CC_mL", "ED_mL"],
        ["BraTS-PED-00001-000", "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"],
        ["BraTS-PED-00002-000", "0.03", "0.021", "0.012", "0.006", "0.003", "0.009"]]
    assert read(tmp_path / "sub" / "BraTS-PED-00002-000.nii.gz").ravel().tolist() == [0, 0, 4, 4, 4, 2, 2, 3, 1, 1,
                                                                                         1, 1]
    write_nifti(pred / "BraTS-PED-00001-000.nii.gz", np.ones((2, 2, 3), np.uint8), spacing=(2.0, 1.0, 1.5))
    before = tree_hash(tmp_path / "sub")
    with pytest.raises(BratsConversionError, match="volumes.csv"):
        export_brats(pred, tmp_path / "sub", task="ped")
    assert tree_hash(tmp_path / "sub") == before
    export_brats(pred, tmp_path / "sub", task="ped", overwrite=True)
    # all edema (nnU-Net 1): WT = ED = 12 voxels
    assert volumes(tmp_path / "sub" / "volumes.csv")[1][1:] == ["0.036"] + ["0.0"] * 4 + ["0.036"]


def test_task_and_convention_must_agree(tmp_path, nnunet_dirs, capsys):
    src, _ = make_release(tmp_path / "src", "ped", n=1)
    out = convert_brats(src, 6, progress=False)
    with pytest.raises(ValueError, match="task 'gli2024' contradicts the dataset's 'ped'"):
        export_brats(out / "labelsTr", tmp_path / "sub", dataset_id=6, task="gli2024")
    with pytest.raises(ValueError, match="convention '2023' contradicts the dataset's 'ped'"):
        export_brats(out / "labelsTr", tmp_path / "sub", dataset_id=6, convention="2023")
    with pytest.raises(ValueError, match="contradicts the task 'ped'"):
        export_brats(out / "labelsTr", tmp_path / "sub", task="ped", convention="2023")
    with pytest.raises(BratsConversionError, match=r"label value\(s\) \[2, 3, 4\].*'menrt' are \[0, 1\]"):
        export_brats(out / "labelsTr", tmp_path / "sub", task="menrt")
    assert not (tmp_path / "sub").exists()
    assert main(["export-brats", str(out / "labelsTr"), str(tmp_path / "sub"), "--task", "ped"]) == 0
    assert "volumes.csv" in capsys.readouterr().out
