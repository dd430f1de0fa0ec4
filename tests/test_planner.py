"""nnUNetPlannerMSFEN and `nnunet-msfen plan`: MSFEN plans sized by MSFEN's memory estimate, nnU-Net's data reused."""
import json
import shutil

import numpy as np
import pytest
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

from nnunet_msfen.cli import main as cli_main
from nnunet_msfen.plans.nnUNetPlannerMSFEN import (MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D,
                                                   MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D, PLANS_NAME,
                                                   nnUNetPlannerMSFEN)

BRATS_ID = 992


@pytest.fixture
def brats_sized(tiny_dataset, monkeypatch):
    """The tiny dataset's files under a fingerprint of BraTS's size (median 138x170x138 at 1 mm after cropping)."""
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    name = f"Dataset{BRATS_ID}_BratsSized"
    raw, pre = tiny_dataset.raw / name, tiny_dataset.preprocessed / name
    if not raw.exists():
        shutil.copytree(tiny_dataset.raw / tiny_dataset.dataset_name, raw)
        pre.mkdir()
        fingerprint = json.loads((tiny_dataset.preprocessed / tiny_dataset.dataset_name / "dataset_fingerprint.json").read_text())
        n = len(fingerprint["shapes_after_crop"])
        fingerprint["shapes_after_crop"] = [[138, 170, 138]] * n
        fingerprint["spacings"] = [[1.0, 1.0, 1.0]] * n
        (pre / "dataset_fingerprint.json").write_text(json.dumps(fingerprint))
    return BRATS_ID


def test_reference_values_are_plainconvunets_scaled_by_the_calibration(brats_sized):
    msfen, plain = nnUNetPlannerMSFEN(brats_sized), ExperimentPlanner(brats_sized)
    assert msfen.UNet_reference_val_3d == round(plain.UNet_reference_val_3d * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D)
    assert msfen.UNet_reference_val_2d == round(plain.UNet_reference_val_2d * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D)
    assert msfen.plans_identifier == PLANS_NAME == "nnUNetMSFENPlans"


@pytest.mark.parametrize("gpu_gb", [8, 4])
def test_plans_for_brats_fit_msfens_memory_estimate(brats_sized, gpu_gb):
    planner = nnUNetPlannerMSFEN(brats_sized, gpu_memory_target_in_gb=gpu_gb)
    plans = planner.plan_experiment()
    config = plans["configurations"]["3d_fullres"]
    arch = config["architecture"]
    assert arch["network_class_name"] == "nnunet_msfen.network.msfen_unet.MSFENUNet"
    assert config["data_identifier"] == "nnUNetPlans_3d_fullres" and plans["configurations"]["2d"]["data_identifier"] == "nnUNetPlans_2d"
    estimate = planner.static_estimate_VRAM_usage(config["patch_size"], 4, 3, arch["network_class_name"],
                                                  arch["arch_kwargs"], arch["_kw_requires_import"])
    reference = planner.UNet_reference_val_3d * gpu_gb / planner.UNet_reference_val_corresp_GB
    # nnU-Net's rule: the planned patch fits (estimate / ref_bs * 2 <= reference), the batch fills the rest
    assert estimate / planner.UNet_reference_val_corresp_bs_3d * 2 <= reference
    assert config["batch_size"] == max(2, min(round(reference / estimate * 2), config["batch_size"]))
    np.testing.assert_array_equal(np.array(config["patch_size"]) % 2 ** (arch["arch_kwargs"]["n_stages"] - 1), 0)


def test_less_memory_gives_a_smaller_patch_or_batch(brats_sized):
    big = nnUNetPlannerMSFEN(brats_sized, gpu_memory_target_in_gb=16).plan_experiment()["configurations"]["3d_fullres"]
    small = nnUNetPlannerMSFEN(brats_sized, gpu_memory_target_in_gb=4).plan_experiment()["configurations"]["3d_fullres"]
    voxels = lambda c: np.prod(c["patch_size"]) * c["batch_size"]
    assert voxels(small) < voxels(big)


def test_plan_command_writes_msfen_plans_and_reuses_nnunets_data(tiny_dataset, monkeypatch, capsys):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    folder = tiny_dataset.preprocessed / tiny_dataset.dataset_name
    data = folder / "nnUNetPlans_3d_fullres"
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    assert cli_main(["plan", "-d", "990", "-c", "3d_fullres", "-np", "1"]) == 0
    out = capsys.readouterr().out
    assert "preprocessed data already complete, reused" in out
    plans = json.loads((folder / "nnUNetMSFENPlans.json").read_text())
    assert plans["plans_name"] == "nnUNetMSFENPlans"
    assert plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"].endswith("MSFENUNet")
    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before  # not preprocessed again


@pytest.mark.parametrize("argv, message", [
    (["plan", "-d", "990", "-c", "3d_highres"], "3d_highres"),
    (["plan", "-d", "990", "-np", "0"], "-np must be >= 1, got 0"),
    (["plan", "-d", "990", "-gpu_memory_target", "-1"], "got -1"),
    (["plan", "-d", "123"], "dataset 123 not found"),
])
def test_plan_command_rejects_bad_input(tiny_dataset, monkeypatch, capsys, argv, message):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    assert cli_main(argv) == 1
    assert message in capsys.readouterr().err


def test_plan_command_needs_nnunet_paths(monkeypatch, capsys):
    monkeypatch.delenv("nnUNet_raw", raising=False)
    assert cli_main(["plan", "-d", "990"]) == 1
    assert "nnUNet_raw is not set" in capsys.readouterr().err


# --- MSFEN on nnU-Net's residual-encoder presets (-pl nnUNetPlannerResEnc{M,L,XL}) ---

def test_plain_reference_values_are_nnunets(brats_sized):
    from nnunet_msfen.plans.nnUNetPlannerMSFENResEnc import (PLAIN_REFERENCE_GB, PLAIN_REFERENCE_VAL_2D,
                                                             PLAIN_REFERENCE_VAL_3D)
    plain = ExperimentPlanner(brats_sized)
    assert (plain.UNet_reference_val_3d, plain.UNet_reference_val_2d, plain.UNet_reference_val_corresp_GB) == (
        PLAIN_REFERENCE_VAL_3D, PLAIN_REFERENCE_VAL_2D, PLAIN_REFERENCE_GB)


@pytest.mark.parametrize("size, gb", [("M", 8), ("L", 24)])
def test_resenc_preset_keeps_its_topology_and_plans_msfen_by_msfens_memory(brats_sized, size, gb):
    from nnunetv2.experiment_planning.experiment_planners.residual_unets import residual_encoder_unet_planners as resenc
    from nnunet_msfen.plans import nnUNetPlannerMSFENResEnc as msfen_resenc
    planner = getattr(msfen_resenc, f"nnUNetPlannerMSFENResEnc{size}")(brats_sized)
    preset = getattr(resenc, f"nnUNetPlannerResEnc{size}")(brats_sized)
    assert planner.plans_identifier == f"nnUNetMSFENResEncUNet{size}Plans" and planner.UNet_vram_target_GB == gb
    assert planner.UNet_reference_val_3d == round(nnUNetPlannerMSFEN(brats_sized).UNet_reference_val_3d * gb / 8)
    ours, theirs = planner.plan_experiment(), preset.plan_experiment()
    for name in ("2d", "3d_fullres"):
        config, ref = ours["configurations"][name], theirs["configurations"][name]
        arch, ref_arch = config["architecture"]["arch_kwargs"], ref["architecture"]["arch_kwargs"]
        assert config["architecture"]["network_class_name"] == "nnunet_msfen.network.msfen_unet.MSFENUNet"
        assert config["data_identifier"] == ref["data_identifier"] == f"nnUNetPlans_{name}"  # nnU-Net's data reused
        assert config["spacing"] == ref["spacing"]
        assert "n_blocks_per_stage" not in arch and "block" not in arch
        # the preset's blocks per stage become MSFEN units after each stage's first convolution
        assert list(arch["n_conv_per_stage"]) == [b + 1 for b in planner.UNet_blocks_per_stage_encoder[:arch["n_stages"]]]
        if arch["n_stages"] == ref_arch["n_stages"]:
            assert list(arch["features_per_stage"]) == list(ref_arch["features_per_stage"])
        estimate = planner.static_estimate_VRAM_usage(config["patch_size"], 4, 3, config["architecture"]["network_class_name"],
                                                      arch, config["architecture"]["_kw_requires_import"])
        reference = (planner.UNet_reference_val_2d if name == "2d" else planner.UNet_reference_val_3d)
        min_bs = planner.UNet_reference_val_corresp_bs_2d if name == "2d" else planner.UNet_reference_val_corresp_bs_3d
        assert estimate / min_bs * planner.UNet_min_batch_size <= reference  # the planned patch fits MSFEN's budget


def test_plans_from_a_resenc_preset_build_the_network_the_trainer_builds(brats_sized):
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunet_msfen.network.msfen_unet import MSFENUNet
    from nnunet_msfen.plans.nnUNetPlannerMSFENResEnc import nnUNetPlannerMSFENResEncM
    config = nnUNetPlannerMSFENResEncM(brats_sized).plan_experiment()["configurations"]["2d"]["architecture"]
    net = get_network_from_plans(config["network_class_name"], config["arch_kwargs"], config["_kw_requires_import"],
                                 4, 3, allow_init=False, deep_supervision=False)
    assert isinstance(net, MSFENUNet)
    with torch.no_grad():
        out = net(torch.zeros(1, 4, 128, 128))
    assert out.shape == (1, 3, 128, 128)


def test_plan_command_plans_msfen_on_a_resenc_preset(tiny_dataset, monkeypatch, capsys):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    folder = tiny_dataset.preprocessed / tiny_dataset.dataset_name
    assert cli_main(["plan", "-d", "990", "-pl", "nnUNetPlannerResEncM", "-c", "3d_fullres", "-np", "1"]) == 0
    out = capsys.readouterr().out
    assert "-p nnUNetMSFENResEncUNetMPlans" in out and "preprocessed data already complete, reused" in out
    plans = json.loads((folder / "nnUNetMSFENResEncUNetMPlans.json").read_text())
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    assert arch["network_class_name"].endswith("MSFENUNet") and arch["arch_kwargs"]["n_conv_per_stage"][1] == 4


def test_plan_command_rejects_an_unknown_planner(tiny_dataset, monkeypatch, capsys):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    assert cli_main(["plan", "-d", "990", "-pl", "nnUNetPlannerResEncXXL"]) == 1
    err = capsys.readouterr().err
    assert "nnUNetPlannerResEncXXL" in err and "nnUNetPlannerResEncM" in err
    assert not (tiny_dataset.preprocessed / tiny_dataset.dataset_name / "nnUNetMSFENResEncUNetXXLPlans.json").exists()
