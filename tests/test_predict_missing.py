"""``nnunet-msfen predict`` with missing sequences: finding cases in either naming, filling the gaps with zeros of
the right geometry, and every bad input named before the model loads. The prediction itself runs in the
end-to-end tests (a trained model)."""
import numpy as np
import pytest
import SimpleITK as sitk

from brats_fixtures import SHAPE, write_nifti
from nnunet_msfen.cli import main
from nnunet_msfen.inference.sequences import SEQUENCES, drop_sequences, find_cases, write_filled_case

ARGS = ["-d", "990", "-c", "3d_fullres", "-tr", "nnUNetTrainerMSFEN_Smoke"]


def _image(seed=0):
    return (np.random.default_rng(seed).random(SHAPE) * 100 + 1).astype(np.float32)


def _nnunet_case(folder, case, channels, origin=(0.0, -13.0, 0.0)):
    for c in channels:
        write_nifti(folder / f"{case}_{c:04d}.nii.gz", _image(c), origin=origin)


def test_finds_nnunet_and_brats_naming_and_what_is_missing(tmp_path):
    _nnunet_case(tmp_path, "caseA", [0, 2, 3])  # no T1ce
    for name in ("t1n", "t2w", "t2f", "seg"):  # a BraTS 2023 case folder without t1c; seg is ignored
        write_nifti(tmp_path / "BraTS-GLI-00001-000" / f"BraTS-GLI-00001-000-{name}.nii.gz", _image())
    for name in ("t1", "t1ce", "t2", "flair"):
        write_nifti(tmp_path / "Brats18_X_1" / f"Brats18_X_1_{name}.nii.gz", _image())
    cases = {c.case_id: c for c in find_cases(tmp_path)}
    assert sorted(cases) == ["BraTS-GLI-00001-000", "Brats18_X_1", "caseA"]
    assert cases["caseA"].missing == ["t1ce"] and cases["BraTS-GLI-00001-000"].missing == ["t1ce"]
    assert cases["Brats18_X_1"].missing == []
    drop_sequences(list(cases.values()), ["FLAIR", "t2w"])  # any release's name, any case
    assert cases["Brats18_X_1"].missing == ["t2", "flair"] and cases["Brats18_X_1"].dropped == ["flair", "t2"]
    with pytest.raises(ValueError, match="'t3'"):
        drop_sequences(list(cases.values()), ["t3"])


@pytest.mark.parametrize("make, message", [
    (lambda d: _nnunet_case(d, "c", [0, 5]), "channel 0005"),
    (lambda d: write_nifti(d / "X" / "X_dwi.nii.gz", _image()), "'dwi'"),
    (lambda d: None, "no case found"),
])
def test_bad_input_folders_are_named(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(ValueError, match=message):
        find_cases(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        find_cases(tmp_path / "nope")


def test_missing_sequences_become_zeros_on_the_present_ones_grid(tmp_path):
    _nnunet_case(tmp_path / "in", "c", [1, 3], origin=(5.0, 6.0, 7.0))
    (case,) = find_cases(tmp_path / "in")
    files = write_filled_case(case, tmp_path / "filled")
    assert [f.name for f in files] == [f"c_{i:04d}.nii.gz" for i in range(4)]
    reference = sitk.ReadImage(str(files[1]))
    for i in (0, 2):
        zeros = sitk.ReadImage(str(files[i]))
        assert sitk.GetArrayFromImage(zeros).shape == SHAPE and not sitk.GetArrayFromImage(zeros).any()
        assert zeros.GetOrigin() == reference.GetOrigin() and zeros.GetSpacing() == reference.GetSpacing()


def test_nnunets_normalisation_keeps_a_zero_sequence_zero():
    # what lets nnUNetv2_predict (and the dropout trainers) treat a zero image as "sequence absent"
    from nnunetv2.preprocessing.normalization.default_normalization_schemes import ZScoreNormalization

    zeros = np.zeros((1, *SHAPE), np.float32)
    for use_mask in (True, False):
        norm = ZScoreNormalization(use_mask_for_norm=use_mask, intensityproperties={})
        seg = np.ones((1, *SHAPE), np.int8) if use_mask else None
        assert not norm.run(zeros.copy(), seg).any()


@pytest.mark.parametrize("make, message", [
    (lambda d: write_nifti(d / "Brats18_X_1" / "Brats18_X_1_seg.nii.gz", _image()), "no case found"),
    (lambda d: (_nnunet_case(d, "c", [0]), _nnunet_case(d, "c", [1], origin=(9.0, 9.0, 9.0))), "c_0001.nii.gz"),
    (lambda d: (_nnunet_case(d, "c", [0]), (d / "c_0001.nii.gz").write_bytes(b"not a nifti")), "c_0001.nii.gz"),
])
def test_command_names_the_bad_case_or_file_before_loading_a_model(tmp_path, capsys, make, message):
    make(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(out), *ARGS]) == 1
    err = capsys.readouterr().err
    assert "nnunet-msfen predict: error:" in err and message in err, err
    assert not out.exists()  # nothing half-written


def test_command_refuses_a_case_without_any_sequence_and_an_existing_output(tmp_path, capsys):
    _nnunet_case(tmp_path / "in", "c", [0, 1, 2, 3])
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *ARGS, "--missing",
                 *SEQUENCES]) == 1
    assert "case c: every sequence is missing" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "full"), *ARGS]) == 1
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "full" / "x").read_text() == "keep me"


@pytest.mark.parametrize("extra, message", [
    (["--int8"], "--int8 runs the int8 models of an export folder"),
    (["-m", "EXPORT", "--backend", "torch"], "pass --backend onnxruntime"),
    (["-m", "EXPORT", "--backend", "onnxruntime", "-tr", "X"], "-m takes the place of -d/-c/-tr"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--tile-workers", "0"], "--tile-workers must be >= 1, got 0"),
    (["--tile-workers", "2", "--backend", "openvino"], "--tile-workers applies to --backend torch"),
])
def test_model_flags_that_do_not_go_together_are_named(tmp_path, capsys, extra, message):
    _nnunet_case(tmp_path / "in", "c", [0, 1, 2, 3])
    model = ARGS if "-m" not in extra else []
    extra = [str(tmp_path / e) if e == "EXPORT" else e for e in extra]
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *model, *extra]) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()
