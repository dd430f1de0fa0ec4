"""End to end through nnU-Net's real command-line tools on the tiny phantom dataset: 5-fold training with --npz
(one fold killed and resumed with --c), --val, find_best_configuration, predict, predict_from_modelfolder, and
training on nnUNetMSFENPlans."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_fixtures import TRAIN_ID, case_ids

pytestmark = pytest.mark.slow
TRAINER = "nnUNetTrainerMSFEN_Smoke"
TRAIN = ["nnUNetv2_train", str(TRAIN_ID), "3d_fullres"]


def model_folder(ds, trainer=TRAINER, plans="nnUNetPlans") -> Path:
    return ds.results / ds.dataset_name / f"{trainer}__{plans}__3d_fullres"


def _wait_until_written(path: Path, deadline: float) -> None:
    """Wait until ``path`` (which torch.save is writing) loads as a checkpoint: nnU-Net saves in place, so the
    file exists before it is complete."""
    import torch

    while True:
        try:
            torch.load(path, map_location="cpu", weights_only=False)
            return
        except (RuntimeError, EOFError, OSError, ValueError):  # truncated zip archive / pickle while being written
            assert time.time() < deadline, f"{path} did not become a complete checkpoint"
            time.sleep(0.05)


def train_killed_then_resumed(ds, fold: int) -> None:
    """Start a training, kill it (SIGKILL, whole process group) once its first checkpoint exists, resume with --c."""
    fold_dir = model_folder(ds) / f"fold_{fold}"
    exe = str(Path(sys.executable).parent / TRAIN[0])
    proc = subprocess.Popen([exe, *TRAIN[1:], str(fold), "-tr", TRAINER, "--npz", "-device", "cpu"], env=ds.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not (fold_dir / "checkpoint_latest.pth").exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint after 10 minutes"
        time.sleep(0.05)
    _wait_until_written(fold_dir / "checkpoint_latest.pth", deadline)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (fold_dir / "checkpoint_final.pth").exists(), "the kill came too late to test resuming"
    ds.run(*TRAIN, str(fold), "-tr", TRAINER, "--npz", "-device", "cpu", "--c")


@pytest.fixture(scope="module")
def cross_validation(tiny_dataset):
    train_killed_then_resumed(tiny_dataset, 0)
    for fold in range(1, 5):
        tiny_dataset.run(*TRAIN, str(fold), "-tr", TRAINER, "--npz", "-device", "cpu")
    return tiny_dataset


def test_all_five_folds_trained_and_validated_with_probabilities(cross_validation):
    ds = cross_validation
    validated = []
    for fold in range(5):
        fold_dir = model_folder(ds) / f"fold_{fold}"
        assert (fold_dir / "checkpoint_final.pth").is_file() and not (fold_dir / "checkpoint_latest.pth").exists()
        cases = case_ids(fold_dir / "validation")
        assert cases and all((fold_dir / "validation" / f"{c}.npz").is_file() for c in cases)
        validated += cases
    splits = json.loads((ds.preprocessed / ds.dataset_name / "splits_final.json").read_text())
    assert sorted(validated) == sorted(sum((s["val"] for s in splits), []))  # every case validated exactly once


def test_killed_fold_resumed_from_its_checkpoint(cross_validation):
    fold_dir = model_folder(cross_validation) / "fold_0"
    logs = sorted(fold_dir.glob("training_log_*.txt"))
    assert len(logs) == 2  # the killed run and the resumed one
    resumed = logs[-1].read_text()
    assert "Epoch 1" in resumed and "Epoch 0\n" not in resumed  # continued, did not start over
    ckpt = torch.load(fold_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["current_epoch"] == 2 and ckpt["trainer_name"] == TRAINER


def test_validation_dice_beats_an_empty_prediction(cross_validation):
    for fold in range(5):
        summary = json.loads((model_folder(cross_validation) / f"fold_{fold}" / "validation" / "summary.json").read_text())
        # an empty prediction scores Dice 0 on every region that is present in the reference
        assert summary["foreground_mean"]["Dice"] > 0, (fold, summary["foreground_mean"])


def test_val_only_reruns_the_validation(cross_validation):
    summary = model_folder(cross_validation) / "fold_1" / "validation" / "summary.json"
    summary.unlink()
    cross_validation.run(*TRAIN, "1", "-tr", TRAINER, "--val", "--npz", "-device", "cpu")
    assert summary.is_file()


def test_find_best_configuration_then_predict(cross_validation, tmp_path):
    ds = cross_validation
    ds.run("nnUNetv2_find_best_configuration", str(TRAIN_ID), "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "1",
           "2", "3", "4", "-np", "1")
    instructions = (ds.results / ds.dataset_name / "inference_instructions.txt").read_text()
    assert TRAINER in instructions
    out = tmp_path / "pred"
    ds.run("nnUNetv2_predict", "-i", str(ds.test_images), "-o", str(out), "-d", str(TRAIN_ID), "-c", "3d_fullres",
           "-tr", TRAINER, "-f", "0", "1", "2", "3", "4", "-device", "cpu", "-npp", "1", "-nps", "1")
    _assert_predictions_match_inputs(ds, out)
    single = tmp_path / "pred_modelfolder"
    ds.run("nnUNetv2_predict_from_modelfolder", "-i", str(ds.test_images), "-o", str(single), "-m",
           str(model_folder(ds)), "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1")
    _assert_predictions_match_inputs(ds, single)


def _assert_predictions_match_inputs(ds, out: Path) -> None:
    assert case_ids(out) == case_ids(ds.test_labels)
    for case in case_ids(out):
        pred = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        image = sitk.ReadImage(str(ds.test_images / f"{case}_0000.nii.gz"))
        assert pred.GetSize() == image.GetSize() and np.allclose(pred.GetSpacing(), image.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2, 3}


def test_training_on_msfen_plans(tiny_dataset):
    tiny_dataset.run("nnunet-msfen", "plan", "-d", str(TRAIN_ID), "-c", "3d_fullres", "-np", "1")
    tiny_dataset.run(*TRAIN, "0", "-tr", TRAINER, "-p", "nnUNetMSFENPlans", "-device", "cpu")
    fold_dir = model_folder(tiny_dataset, plans="nnUNetMSFENPlans") / "fold_0"
    assert (fold_dir / "checkpoint_final.pth").is_file() and (fold_dir / "validation" / "summary.json").is_file()
    plans = json.loads((fold_dir.parent / "plans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"].endswith("MSFENUNet")


def test_inference_time_of_a_trained_fold(cross_validation):
    from nnunet_msfen.evaluation.cost import inference_time

    ds = cross_validation
    fold_dir = model_folder(ds) / "fold_1"
    case = case_ids(fold_dir / "validation")[0]
    images = sorted((ds.raw / ds.dataset_name / "imagesTr").glob(f"{case}_*.nii.gz"))
    assert len(images) == 4
    assert 0 < inference_time(fold_dir, images, repeats=1) < 300
    with pytest.raises(ValueError, match="no checkpoint_final.pth"):
        inference_time(fold_dir.parent / "fold_9", images)


def test_two_tiles_at_a_time_predict_a_trained_model_as_the_one_tile_loop(cross_validation):
    """nnU-Net's whole predictor (two folds, mirroring) around the trained MSFEN: two workers of one thread give the
    logits of nnU-Net's loop on one thread bit for bit, on a case large enough for several tiles."""
    from nnunet_msfen.inference.parallel_tiles import nnUNetPredictorParallelTiles

    def predictor(workers):
        p = nnUNetPredictorParallelTiles(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                         perform_everything_on_device=False, device=torch.device("cpu"),
                                         verbose=False, allow_tqdm=False, tile_workers=workers)
        p.initialize_from_trained_model_folder(str(model_folder(cross_validation)), (0, 1), "checkpoint_final.pth")
        return p

    one, two = predictor(1), predictor(2)
    patch = one.configuration_manager.patch_size
    data = torch.randn(4, *[s + s // 2 for s in patch], generator=torch.Generator().manual_seed(0))
    assert len(one._internal_get_sliding_window_slicers(data.shape[1:])) >= 8
    threads, forward = [], two.network.forward

    def spy(x):  # not a hook: a hooked network is predicted one tile at a time
        threads.append(threading.current_thread())
        return forward(x)

    two.network.forward = spy
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # nnU-Net's loop on one thread; the two workers get one each
    try:
        ours, theirs = two.predict_logits_from_preprocessed_data(data), one.predict_logits_from_preprocessed_data(data)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(ours, theirs)
    assert len(set(threads)) >= 2 and threading.main_thread() not in threads  # workers ran the tiles (2 per fold)


def test_predict_with_missing_sequences_and_attention(cross_validation, tmp_path):
    ds = cross_validation
    cases = case_ids(ds.test_labels)
    src = tmp_path / "in"
    src.mkdir()
    for f in ds.test_images.glob("*.nii.gz"):
        if not f.name.startswith(cases[0]) or not f.name.endswith("_0001.nii.gz"):  # the first case has no T1ce
            shutil.copy(f, src / f.name)
    out = tmp_path / "out"
    ds.run("nnunet-msfen", "predict", "-i", str(src), "-o", str(out), "-d", str(TRAIN_ID), "-c", "3d_fullres", "-tr",
           TRAINER, "-f", "0", "1", "-device", "cpu", "--missing", "flair", "--save-attention", "--disable_tta")
    _assert_predictions_match_inputs(ds, out)
    missing = json.loads((out / "missing_sequences.json").read_text())
    assert missing[cases[0]] == {"missing": ["t1ce", "flair"], "left_out": ["flair"]}
    assert missing[cases[1]] == {"missing": ["flair"], "left_out": ["flair"]}
    weights = json.loads((out / "attention" / f"{cases[0]}.json").read_text())["weights"]
    assert weights["t1ce"] == 0 and weights["flair"] == 0 and weights["t1"] > 0 and weights["t2"] > 0
    assert abs(sum(weights.values()) - 4) < 1e-4
    # nnU-Net's own predictor takes an all-zero image in place of the missing sequence, as the command does
    zero_filled = tmp_path / "zero_filled"
    zero_filled.mkdir()
    for f in src.glob(f"{cases[0]}_*.nii.gz"):
        shutil.copy(f, zero_filled / f.name)
    t1 = sitk.ReadImage(str(zero_filled / f"{cases[0]}_0000.nii.gz"))
    sitk.WriteImage(sitk.Cast(t1, sitk.sitkFloat32) * 0, str(zero_filled / f"{cases[0]}_0001.nii.gz"))
    ds.run("nnUNetv2_predict", "-i", str(zero_filled), "-o", str(tmp_path / "nnunet"), "-d", str(TRAIN_ID), "-c",
           "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_tta")
    assert case_ids(tmp_path / "nnunet") == [cases[0]]


def test_robustness_study_on_a_few_subsets(cross_validation, tmp_path):
    ds = cross_validation
    out = tmp_path / "robust"
    ds.run("nnunet-msfen", "robustness", "-d", str(TRAIN_ID), "-c", "3d_fullres", "-tr", TRAINER, "-i",
           str(ds.test_images), "-r", str(ds.test_labels), "-o", str(out), "-f", "0", "-device", "cpu",
           "--disable_tta", "--subsets", "t1+t1ce+t2", "flair")
    summary = json.loads((out / "summary.json").read_text())
    rows = summary[TRAINER]["subsets"]
    assert list(rows) == ["all", "t1+t1ce+t2", "flair"]
    assert rows["t1+t1ce+t2"]["attention"]["flair"] == 0 and rows["flair"]["attention"]["t1"] == 0
    assert case_ids(out / "predictions" / TRAINER / "flair") == case_ids(ds.test_labels)
    assert (out / "report.html").read_text().count("<table>") == 2 and (out / "figures" / "heatmap.png").is_file()


def test_training_and_prediction_on_residual_encoder_plans(tiny_dataset, tmp_path):
    ds = tiny_dataset
    ds.run("nnUNetv2_plan_experiment", "-d", str(TRAIN_ID), "-pl", "nnUNetPlannerResEncM")
    ds.run(*TRAIN, "0", "-tr", TRAINER, "-p", "nnUNetResEncUNetMPlans", "-device", "cpu")
    fold_dir = model_folder(ds, plans="nnUNetResEncUNetMPlans") / "fold_0"
    assert (fold_dir / "checkpoint_final.pth").is_file() and (fold_dir / "validation" / "summary.json").is_file()
    out = tmp_path / "pred"
    ds.run("nnUNetv2_predict", "-i", str(ds.test_images), "-o", str(out), "-d", str(TRAIN_ID), "-c", "3d_fullres",
           "-tr", TRAINER, "-p", "nnUNetResEncUNetMPlans", "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1")
    _assert_predictions_match_inputs(ds, out)


def test_export_onnx_then_predict_with_onnxruntime_equals_torch(cross_validation, tmp_path):
    pytest.importorskip("onnxruntime")
    ds = cross_validation
    export = tmp_path / "export"
    ds.run("nnunet-msfen", "export-onnx", "-d", str(TRAIN_ID), "-c", "3d_fullres", "-tr", TRAINER, "-f", "0", "1",
           "-o", str(export), "--quantize", "dynamic", "--quantize-cases", "4")
    record = json.loads((export / "export.json").read_text())
    assert record["folds"] == ["0", "1"] and set(record["verification"]["0"]) == {"random", "real"}
    int8 = record["int8"]  # calibrated and checked on the dataset's own preprocessed cases
    assert int8["checked_patches"] == 2 and set(int8["folds"]) == {"0", "1"}
    assert (export / "fold_0.int8.onnx").is_file() is int8["offered"]
    common = ["-i", str(ds.test_images), "--disable_tta"]
    ds.run("nnunet-msfen", "predict", *common, "-o", str(tmp_path / "torch"), "-d", str(TRAIN_ID), "-c", "3d_fullres",
           "-tr", TRAINER, "-f", "0", "1", "-device", "cpu")
    env_without_nnunet = {k: v for k, v in ds.env.items() if not k.startswith("nnUNet_")}
    exe = Path(sys.executable).parent / "nnunet-msfen"
    result = subprocess.run([str(exe), "predict", *common, "-o", str(tmp_path / "onnx"), "-m", str(export),
                             "--backend", "onnxruntime", "--threads", "1"], env=env_without_nnunet,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for case in case_ids(ds.test_labels):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "torch" / f"{case}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "onnx" / f"{case}.nii.gz")))
        assert (a == b).mean() > 0.999  # voxel agreement between the backends
