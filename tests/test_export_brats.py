"""export-brats: nnU-Net labels back to the BraTS conventions and names; convert -> export round trips."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from brats_fixtures import all_files, make_release, read, tree_hash, write_nifti

from nnunet_msfen.cli import main  # noqa: E402
from nnunet_msfen.dataset_conversion.convert_brats import convert_brats  # noqa: E402
from nnunet_msfen.dataset_conversion.errors import BratsConversionError  # noqa: E402
from nnunet_msfen.dataset_conversion.export_brats import export_brats  # noqa: E402

CONSOLE = Path(sys.executable).parent / "nnunet-msfen"


@pytest.mark.parametrize("layout", ["2018", "2020", "2023"])
def test_round_trip_reproduces_the_original_segmentation(tmp_path, nnunet_dirs, layout):
    src, cases = make_release(tmp_path / "src", layout, n=2)
    out = convert_brats(src, 4, progress=False)
    written = export_brats(out / "labelsTr", tmp_path / "sub", dataset_id=4)
    assert sorted(p.name for p in written) == sorted(f"{c}.nii.gz" for c in cases)
    for case_id, case in cases.items():
        exported = sitk.ReadImage(str(tmp_path / "sub" / f"{case_id}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(exported), case["seg"])
        assert sitk.GetArrayFromImage(exported).dtype == np.uint8
        original = sitk.ReadImage(str(case["paths"]["seg"]))
        assert exported.GetSpacing() == original.GetSpacing() and exported.GetOrigin() == original.GetOrigin()


def test_conventions_map_labels(tmp_path):
    pred = tmp_path / "pred"
    write_nifti(pred / "BraTS2021_00001.nii.gz", np.array([0, 1, 2, 3], np.uint8).reshape(1, 1, 4))
    export_brats(pred, tmp_path / "legacy", convention="legacy")
    export_brats(pred, tmp_path / "new", convention="2023")
    assert read(tmp_path / "legacy" / "BraTS2021_00001.nii.gz").ravel().tolist() == [0, 2, 1, 4]
    assert read(tmp_path / "new" / "BraTS2021_00001.nii.gz").ravel().tolist() == [0, 2, 1, 3]
    with pytest.raises(ValueError, match="convention"):
        export_brats(pred, tmp_path / "x")
    with pytest.raises(ValueError, match="'2024'"):
        export_brats(pred, tmp_path / "x", convention="2024")


def test_bad_prediction_label_writes_nothing(tmp_path):
    pred = tmp_path / "pred"
    write_nifti(pred / "a.nii.gz", np.zeros((2, 2, 2), np.uint8))
    write_nifti(pred / "b.nii.gz", np.full((2, 2, 2), 4, np.uint8))
    (pred / "dataset.json").write_text("{}")  # nnU-Net writes these next to predictions: ignored
    with pytest.raises(BratsConversionError, match=r"b.nii.gz has label value\(s\) \[4\]"):
        export_brats(pred, tmp_path / "sub", convention="legacy")
    assert all_files(tmp_path / "sub") == []


def test_mapping_with_escaping_case_id_is_refused(tmp_path):
    pred = tmp_path / "pred"
    write_nifti(pred / "case1.nii.gz", np.zeros((2, 2, 2), np.uint8))
    mapping = tmp_path / "brats_cases.json"
    mapping.write_text(json.dumps({"format": 1, "source": "x", "release": "2021", "convention": "legacy",
                                   "cases": {"case1": {"brats_id": "../../escaped"}}, "skipped": {}}))
    with pytest.raises(BratsConversionError, match="not a plain name"):
        export_brats(pred, tmp_path / "sub" / "deeper", mapping=mapping)
    assert all_files(tmp_path) == ["brats_cases.json", "pred/case1.nii.gz"]


def test_existing_different_file_needs_overwrite(tmp_path):
    pred = tmp_path / "pred"
    write_nifti(pred / "c.nii.gz", np.ones((2, 2, 2), np.uint8))
    write_nifti(tmp_path / "sub" / "c.nii.gz", np.zeros((2, 2, 2), np.uint8))
    before = tree_hash(tmp_path / "sub")
    with pytest.raises(BratsConversionError, match="--overwrite"):
        export_brats(pred, tmp_path / "sub", convention="legacy")
    assert tree_hash(tmp_path / "sub") == before
    export_brats(pred, tmp_path / "sub", convention="legacy", overwrite=True)
    assert read(tmp_path / "sub" / "c.nii.gz").max() == 2


def test_cli_and_console_script(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2023", n=1)
    out = convert_brats(src, 9, progress=False)
    assert main(["export-brats", str(out / "labelsTr"), str(tmp_path / "sub"), "-d", "9"]) == 0
    np.testing.assert_array_equal(read(tmp_path / "sub" / "BraTS-GLI-00001-000.nii.gz"),
                                  cases["BraTS-GLI-00001-000"]["seg"])
    res = subprocess.run([str(CONSOLE), "export-brats", str(out / "labelsTr"), str(tmp_path / "s2"),
                          "--mapping", str(out / "brats_cases.json"), "--convention", "legacy"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "contradicts the dataset's '2023'" in res.stderr
    assert not (tmp_path / "s2").exists()


@pytest.mark.real_data
def test_real_brats2018_round_trip(tmp_path, nnunet_dirs, brats2018_sample):
    view = tmp_path / "view"  # symlinks: the real cases are read in place, never copied
    view.mkdir()
    chosen = sorted(p for p in brats2018_sample.iterdir() if p.is_dir())[-2:]
    for p in chosen:
        (view / p.name).symlink_to(p)
    out = convert_brats(view, 18, progress=False)
    pred = tmp_path / "pred"  # nnU-Net's prediction folder layout: <case>.nii.gz
    shutil.copytree(out / "labelsTr", pred)
    export_brats(pred, tmp_path / "sub", dataset_id=18)
    for p in chosen:
        exported = sitk.ReadImage(str(tmp_path / "sub" / f"{p.name}.nii.gz"))
        original = sitk.ReadImage(str(p / f"{p.name}_seg.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(exported), sitk.GetArrayFromImage(original))
        assert exported.GetSize() == (240, 240, 155)
        assert np.allclose(exported.GetOrigin(), original.GetOrigin())
        assert np.allclose(exported.GetDirection(), original.GetDirection())


def test_a_held_out_prediction_outside_the_mapping_keeps_its_name_and_the_datasets_task(tmp_path, nnunet_dirs):
    # the demo's held-out cases, or a validation release, are predicted without being part of the dataset
    src, cases = make_release(tmp_path / "src", "2021", n=1)
    out = convert_brats(src, 5, progress=False)
    preds = tmp_path / "pred"
    preds.mkdir()
    (label_file,) = (out / "labelsTr").glob("*.nii.gz")
    shutil.copy(label_file, preds / label_file.name)
    shutil.copy(label_file, preds / "BraTS2021_99999.nii.gz")  # not in brats_cases.json
    written = export_brats(preds, tmp_path / "sub", dataset_id=5)
    assert sorted(p.name for p in written) == sorted([f"{c}.nii.gz" for c in cases] + ["BraTS2021_99999.nii.gz"])
    held_out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "sub" / "BraTS2021_99999.nii.gz")))
    assert set(np.unique(held_out)) <= {0, 1, 2, 4}  # mapped back to the dataset's (legacy) labels
