"""convert-brats on miniature releases of every layout, on every kind of bad input, and on the real sample."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brats_fixtures import LAYOUTS, all_files, make_release, read, tree_hash, write_nifti

from nnunet_msfen.cli import main  # noqa: E402
from nnunet_msfen.dataset_conversion import convert_brats as cb  # noqa: E402
from nnunet_msfen.dataset_conversion.brats_layouts import check_plain_name  # noqa: E402
from nnunet_msfen.dataset_conversion.errors import BadCasesError, BratsConversionError, LayoutError  # noqa: E402

TO_NNUNET = {"legacy": {0: 0, 1: 2, 2: 1, 4: 3}, "2023": {0: 0, 1: 2, 2: 1, 3: 3}}
CONSOLE = Path(sys.executable).parent / "nnunet-msfen"


def convert(src, dataset_id=1, **kw):
    return cb.convert_brats(src, dataset_id, progress=False, **kw)


def expect_failure(src, raw, exc, *needles, **kw):
    """The conversion raises ``exc`` naming every needle, leaves SRC byte-identical and writes nothing."""
    before = tree_hash(src)
    with pytest.raises(exc) as info:
        convert(src, **kw)
    for needle in needles:
        assert needle in str(info.value)
    assert tree_hash(src) == before
    assert all_files(raw) == []
    return info.value


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_converts(tmp_path, nnunet_dirs, layout):
    src, cases = make_release(tmp_path / "src", layout, n=2)
    (src / "._junk").write_bytes(b"\x00\x05")  # macOS AppleDouble debris next to the release
    (src / ".DS_Store").write_bytes(b"x")
    before = tree_hash(src)
    out = convert(src, 7)
    assert tree_hash(src) == before
    assert out == nnunet_dirs["nnUNet_raw"] / f"Dataset007_BraTS{layout}"
    convention = "2023" if layout == "2023" else "legacy"
    for case_id, case in cases.items():
        for c in range(4):  # channel c is the c-th modality of CHANNELS (T1, T1ce, T2, FLAIR), voxel for voxel
            np.testing.assert_array_equal(read(out / "imagesTr" / f"{case_id}_{c:04d}.nii.gz"), case["images"][c])
        label = read(out / "labelsTr" / f"{case_id}.nii.gz")
        expected = np.vectorize(TO_NNUNET[convention].get)(case["seg"])
        np.testing.assert_array_equal(label, expected)
        assert label.dtype == np.uint8
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
    assert ds["regions_class_order"] == [1, 2, 3]
    assert ds["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert ds["numTraining"] == 2 and ds["file_ending"] == ".nii.gz"
    mapping = json.loads((out / "brats_cases.json").read_text())
    assert mapping["convention"] == convention
    assert {k: v["brats_id"] for k, v in mapping["cases"].items()} == {c: c for c in cases}
    assert not (out / ".nnunet_msfen_tmp").exists()


def test_validation_release_goes_to_imagests(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=2, labeled=False)
    out = convert(src)
    assert all_files(out / "imagesTs") == sorted(f"{c}_{i:04d}.nii.gz" for c in cases for i in range(4))
    assert not (out / "labelsTr").exists() or all_files(out / "labelsTr") == []
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 0


def test_float_label_maps_convert_exactly(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=1)
    case_id, case = next(iter(cases.items()))
    write_nifti(case["paths"]["seg"], case["seg"].astype(np.float32))  # float label maps occur in the wild
    out = convert(src)
    np.testing.assert_array_equal(read(out / "labelsTr" / f"{case_id}.nii.gz"),
                                  np.vectorize(TO_NNUNET["legacy"].get)(case["seg"]))


def test_2020_case_355_misnamed_seg_and_csv_files(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2020", n=1, first=355)
    case = cases["BraTS20_Training_355"]
    case["paths"]["seg"].rename(case["dir"] / "W39_1998.09.19_Segm.nii")  # as distributed
    folder = case["dir"].parent
    (folder / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_355\n")
    (folder / "survival_info.csv").write_text("Brats20ID,Age,Survival_days,Extent_of_Resection\n")
    out = convert(src)
    np.testing.assert_array_equal(read(out / "labelsTr" / "BraTS20_Training_355.nii.gz"),
                                  np.vectorize(TO_NNUNET["legacy"].get)(case["seg"]))


def test_missing_modality(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2018", n=2)
    cases["Brats18_TCIA01_002_1"]["paths"]["t1ce"].unlink()
    expect_failure(src, nnunet_dirs["nnUNet_raw"], BadCasesError, "Brats18_TCIA01_002_1", "Brats18_TCIA01_002_1_t1ce")


def test_shape_mismatch(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=2)
    path = cases["BraTS2021_00002"]["paths"]["t2"]
    write_nifti(path, np.zeros((10, 14, 11), np.int16))
    expect_failure(src, nnunet_dirs["nnUNet_raw"], BadCasesError, "BraTS2021_00002", str(path), "shape")


def test_spacing_mismatch(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2023", n=1)
    case = cases["BraTS-GLI-00001-000"]
    write_nifti(case["paths"]["seg"], case["seg"], spacing=(1.0, 1.0, 1.2))
    expect_failure(src, nnunet_dirs["nnUNet_raw"], BadCasesError, "BraTS-GLI-00001-000", "seg.nii.gz", "spacing")


@pytest.mark.parametrize("layout,value,hint", [("2018", 3, "merged into 1"), ("2023", 4, "resection cavity")])
def test_unknown_label_value(tmp_path, nnunet_dirs, layout, value, hint):
    src, cases = make_release(tmp_path / "src", layout, n=1)
    case = next(iter(cases.values()))
    seg = case["seg"].copy()
    seg[0, 0, 0] = value
    write_nifti(case["paths"]["seg"], seg)
    expect_failure(src, nnunet_dirs["nnUNet_raw"], BadCasesError, f"[{value}]", hint, str(case["paths"]["seg"]))


def test_corrupt_nii_gz(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=2)
    path = cases["BraTS2021_00001"]["paths"]["flair"]
    path.write_bytes(path.read_bytes()[:200])  # truncated download
    expect_failure(src, nnunet_dirs["nnUNet_raw"], BadCasesError, "BraTS2021_00001", str(path), "corrupt")


def test_duplicate_case(tmp_path, nnunet_dirs):
    src, _ = make_release(tmp_path / "src", "2018", n=1)
    make_release(tmp_path / "src" / "copy", "2018", n=1)  # the same case id in a second folder
    expect_failure(src, nnunet_dirs["nnUNet_raw"], LayoutError, "duplicate case Brats18_TCIA01_001_1")


def test_case_id_escaping_the_output_folder(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2018", n=1)
    evil = cases["Brats18_TCIA01_001_1"]["dir"].parent / "Brats18_.."
    evil.mkdir()
    write_nifti(evil / "Brats18_.._t1.nii.gz", np.zeros((10, 14, 12), np.int16))
    expect_failure(src, nnunet_dirs["nnUNet_raw"], LayoutError, "'Brats18_..'")
    for bad in ("../evil", "/abs", "a/b", "..", ""):
        with pytest.raises(ValueError, match="not a plain name"):
            check_plain_name(bad)
    with pytest.raises(ValueError, match="not a plain name"):
        convert(src, name="../x")


def test_existing_dataset_needs_overwrite(tmp_path, nnunet_dirs):
    src, _ = make_release(tmp_path / "src", "2021", n=1)
    other, _ = make_release(tmp_path / "other", "2021", n=1)
    out = convert(other)
    before = tree_hash(out)
    with pytest.raises(BratsConversionError, match="different dataset.*--overwrite"):
        convert(src)
    assert tree_hash(out) == before
    foreign = nnunet_dirs["nnUNet_raw"] / "Dataset002_BraTS2021"
    (foreign / "imagesTr").mkdir(parents=True)
    (foreign / "imagesTr" / "mine.nii.gz").write_bytes(b"precious")
    with pytest.raises(BratsConversionError, match="not written by convert-brats"):
        convert(src, 2)
    assert (foreign / "imagesTr" / "mine.nii.gz").read_bytes() == b"precious"
    assert json.loads((convert(src, overwrite=True) / "brats_cases.json").read_text())["source"] == str(src)


def test_killed_half_way_then_rerun(tmp_path, nnunet_dirs, monkeypatch):
    src, cases = make_release(tmp_path / "src", "2021", n=4)
    before = tree_hash(src)
    real, calls = cb._convert_case, []

    def dies_on_third(job):
        calls.append(job[0].case_id)
        if len(calls) == 3:  # as a SIGKILL would: a temporary half written, the process gone
            (job[1] / ".nnunet_msfen_tmp" / "half.nii.gz").write_bytes(b"\x1f\x8b")
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(cb, "_convert_case", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        convert(src)
    out = nnunet_dirs["nnUNet_raw"] / "Dataset001_BraTS2021"
    assert not (out / "dataset.json").exists()
    first = {p: p.stat().st_mtime_ns for p in (out / "imagesTr").iterdir()}
    assert len(first) == 8  # two complete cases, nothing of the third under a final name
    monkeypatch.setattr(cb, "_convert_case", real)
    convert(src)
    assert tree_hash(src) == before
    assert all_files(out / "labelsTr") == sorted(f"{c}.nii.gz" for c in cases)
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())  # done cases were skipped, not redone
    assert not (out / ".nnunet_msfen_tmp").exists()
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 4


def test_rerun_after_a_copy_that_moved_mtimes_skips_and_a_content_change_is_refused(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=2)
    out = convert(src)
    written = {p: p.stat().st_mtime_ns for p in (out / "imagesTr").iterdir()}
    for p in src.rglob("*.nii.gz"):  # as copying or re-extracting the download does: same bytes, new mtimes
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    convert(src)
    assert {p: p.stat().st_mtime_ns for p in (out / "imagesTr").iterdir()} == written
    flair = sorted(src.rglob("*flair.nii.gz"))[0]
    data = bytearray(flair.read_bytes())
    data[-5] ^= 0xFF  # same size, other content (the gzip trailer's CRC)
    flair.write_bytes(bytes(data))
    before = tree_hash(out)
    with pytest.raises(BratsConversionError, match="changed since it was converted"):
        convert(src)
    assert tree_hash(out) == before


def test_skip_bad_lists_bad_cases_and_converts_good(tmp_path, nnunet_dirs, capsys):
    src, cases = make_release(tmp_path / "src", "2018", n=3)
    cases["Brats18_TCIA01_002_1"]["paths"]["flair"].unlink()
    assert main(["convert-brats", str(src), "-d", "3", "--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad case" in err and "Brats18_TCIA01_002_1_flair" in err
    out = nnunet_dirs["nnUNet_raw"] / "Dataset003_BraTS2018"
    assert all_files(out / "labelsTr") == ["Brats18_TCIA01_001_1.nii.gz", "Brats18_TCIA01_003_1.nii.gz"]
    assert main(["convert-brats", str(src), "-d", "3"]) == 1  # without --skip-bad the bad case stops the run
    assert "Brats18_TCIA01_002_1" in capsys.readouterr().err


def test_parallel_matches_serial(tmp_path, nnunet_dirs):
    src, _ = make_release(tmp_path / "src", "2023", n=3)
    serial, parallel = convert(src, 1), cb.convert_brats(src, 2, num_processes=2, progress=False)
    assert all_files(serial) == all_files(parallel)
    for rel in all_files(serial / "labelsTr"):
        np.testing.assert_array_equal(read(serial / "labelsTr" / rel), read(parallel / "labelsTr" / rel))


def test_console_script_errors(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2021", n=1)
    cases["BraTS2021_00001"]["paths"]["t2"].unlink()
    res = subprocess.run([str(CONSOLE), "convert-brats", str(src), "-d", "5"], capture_output=True, text=True)
    assert res.returncode == 1
    assert "convert-brats: error:" in res.stderr and "BraTS2021_00001_t2" in res.stderr
    assert "Traceback" not in res.stderr
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_raw"}
    res = subprocess.run([str(CONSOLE), "convert-brats", str(src), "-d", "5"], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and "nnUNet_raw is not set" in res.stderr
    assert main(["convert-brats", str(src), "-d", "1000"]) == 1


@pytest.mark.real_data
def test_real_brats2018_cases_convert(tmp_path, nnunet_dirs, brats2018_sample):
    view = tmp_path / "view"  # three real cases through symlinks: read only, never copied
    view.mkdir()
    chosen = sorted(p for p in brats2018_sample.iterdir() if p.is_dir())[:3]
    for p in chosen:
        (view / p.name).symlink_to(p)
    before = tree_hash(brats2018_sample)
    out = convert(view, 18)
    assert tree_hash(brats2018_sample) == before
    for p in chosen:
        label = read(out / "labelsTr" / f"{p.name}.nii.gz")
        seg = read(p / f"{p.name}_seg.nii.gz")
        assert label.shape == (155, 240, 240)
        np.testing.assert_array_equal(label, np.vectorize(TO_NNUNET["legacy"].get)(seg))
