"""``nnunet-msfen benchmark-accuracy``: argument errors, the batch-size plans copy, the workdir record, the report,
the seeded augmentation workers, and one end-to-end run on phantoms through nnU-Net's real tools (slow)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnunet_msfen.cli import main
from nnunet_msfen.errors import WorkdirError
from nnunet_msfen.experiments.accuracy import write_batch_size_plans
from nnunet_msfen.experiments.accuracy_report import format_table, markdown, report_row
from nnunet_msfen.experiments.accuracy_settings import AccuracySettings
from nnunet_msfen.experiments.accuracy_workdir import AccuracyWorkdir


@pytest.fixture
def folders(tmp_path):
    """Two existing (empty) source folders: enough for the argument checks, which come before any work."""
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    return train, test


def _error(capsys, *argv):
    rc = main(["benchmark-accuracy", *argv])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("extra, expected", [
    (["--minutes", "0"], "minutes must be a positive number, got 0.0"),
    (["--minutes", "nan"], "minutes must be a positive number, got nan"),
    (["--batch-size", "0"], "batch size must be a positive integer, got 0"),
    (["--seed", "-3"], "seed must be a non-negative integer, got -3"),
    (["--dataset-id", "999"], "dataset id must be from 1 to 998"),
    (["-tr", "nnUNetTrainer", "nnUNetTrainer_TimeBudget"], "name the same nnU-Net trainer twice"),
    (["-tr", "not-a-class"], "trainer must be a class name, got 'not-a-class'"),
    (["-tr", "nnUNetTrainerDoesNotExist"], "no trainer class named 'nnUNetTrainerDoesNotExist'"),
])
def test_bad_arguments_name_the_value(folders, tmp_path, capsys, extra, expected):
    train, test = folders
    rc, err = _error(capsys, "--train", str(train), "--test", str(test), "--workdir", str(tmp_path / "wd"),
                     "--device", "cpu", *extra)
    assert rc == 1
    assert expected in err
    assert not (tmp_path / "wd").exists()  # nothing is written before the arguments are checked


def test_a_trainer_module_that_fails_to_import_is_reported_not_called_missing(folders, tmp_path, monkeypatch, capsys):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "broken_trainers.py").write_text("import nnunet_msfen_no_such_dependency\n")
    monkeypatch.setenv("nnUNet_extTrainer", os.pathsep.join([str(ext), os.environ.get("nnUNet_extTrainer", "")]))
    train, test = folders
    rc, err = _error(capsys, "--train", str(train), "--test", str(test), "--workdir", str(tmp_path / "wd"),
                     "--device", "cpu", "-tr", "nnUNetTrainerFromBrokenModule")
    assert rc == 1
    assert "ModuleNotFoundError: No module named 'nnunet_msfen_no_such_dependency'" in err
    assert f"{ext / 'broken_trainers.py'}:1" in err  # where the real error is
    assert "no trainer class named" not in err
    assert not (tmp_path / "wd").exists()


def test_missing_or_identical_folders(folders, tmp_path, capsys):
    train, test = folders
    rc, err = _error(capsys, "--train", str(tmp_path / "nope"), "--test", str(test), "--device", "cpu")
    assert rc == 1 and f"--train folder not found: {tmp_path / 'nope'}" in err
    rc, err = _error(capsys, "--train", str(train), "--test", str(train), "--device", "cpu")
    assert rc == 1 and "--train and --test are the same folder" in err


def test_bad_config_is_an_argparse_error(folders, capsys):
    train, test = folders
    with pytest.raises(SystemExit) as exc:
        main(["benchmark-accuracy", "--train", str(train), "--test", str(test), "--config", "3d_lowres"])
    assert exc.value.code == 2 and "3d_lowres" in capsys.readouterr().err


def test_trainer_names_map_to_time_budget_variants(folders):
    train, test = folders
    s = AccuracySettings(train, test, trainers=("nnUNetTrainer", "nnUNetTrainerMSFEN", "nnUNetTrainerMSFEN_Smoke"))
    assert s.nnunet_trainers == ("nnUNetTrainer_TimeBudget", "nnUNetTrainerMSFEN_TimeBudget",
                                 "nnUNetTrainerMSFEN_Smoke")
    assert s.plans == "nnUNetPlans"
    assert AccuracySettings(train, test, batch_size=12).plans == "nnUNetPlans_bs12"


def _plans_file(folder: Path) -> Path:
    plans = {"plans_name": "nnUNetPlans", "configurations": {
        "2d": {"data_identifier": "nnUNetPlans_2d", "batch_size": 105, "patch_size": [192, 160]},
        "3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "batch_size": 2, "patch_size": [128, 128, 128]},
    }}
    path = folder / "nnUNetPlans.json"
    path.write_text(json.dumps(plans))
    return path


def test_batch_size_plans_copy_changes_only_the_batch_size(tmp_path):
    source = _plans_file(tmp_path)
    before = source.read_text()
    identifier = write_batch_size_plans(tmp_path, "2d", 12)
    assert identifier == "nnUNetPlans_bs12"
    copy = json.loads((tmp_path / "nnUNetPlans_bs12.json").read_text())
    original = json.loads(before)
    assert copy["plans_name"] == "nnUNetPlans_bs12"
    assert copy["configurations"]["2d"]["batch_size"] == 12
    assert copy["configurations"]["2d"]["data_identifier"] == "nnUNetPlans_2d"  # reuses the preprocessed data
    copy["configurations"]["2d"]["batch_size"], copy["plans_name"] = 105, "nnUNetPlans"
    assert copy == original  # nothing else changed, 3d_fullres included
    assert source.read_text() == before


def test_batch_size_plans_bad_input(tmp_path):
    with pytest.raises(ValueError, match="plans file not found"):
        write_batch_size_plans(tmp_path, "2d", 12)
    _plans_file(tmp_path)
    with pytest.raises(ValueError, match="configuration '3d_lowres' is not in"):
        write_batch_size_plans(tmp_path, "3d_lowres", 12)
    with pytest.raises(ValueError, match="batch size must be a positive integer, got 0"):
        write_batch_size_plans(tmp_path, "2d", 0)


def test_workdir_refuses_foreign_folder_and_other_sources(folders, tmp_path):
    train, test = folders
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(WorkdirError, match="not made by benchmark-accuracy"):
        AccuracyWorkdir(foreign, AccuracySettings(train, test)).prepare()
    assert (foreign / "precious.txt").read_text() == "keep"
    AccuracyWorkdir(tmp_path / "wd", AccuracySettings(train, test)).prepare()
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(WorkdirError, match="was made for"):
        AccuracyWorkdir(tmp_path / "wd", AccuracySettings(other, test)).prepare()


def test_report_row_and_tables():
    mean = {"WT": {"dice": 0.9, "hd95": 3.0}, "TC": {"dice": 0.8, "hd95": 5.5}, "ET": {"dice": 0.7, "hd95": None}}
    stats = {"epochs": 2, "iterations": 50, "iterations_per_epoch": 25, "epoch_seconds": [10.0, 20.0],
             "parameters": 2_500_000}
    row = report_row("nnUNetTrainerMSFEN_TimeBudget", mean, stats, ["a", "b"])
    assert row["seconds_per_iteration"] == pytest.approx(15.0 / 25)
    assert row["mean_dice"] == pytest.approx(0.8)
    table = format_table([row])
    assert "0.9000" in table and "5.50" in table and "n/a" in table and "0.60" in table and "2.50" in table
    md = markdown([row], {"config": "2d", "minutes": 10, "train": "T", "test": "S", "plans": "nnUNetPlans_bs12",
                          "batch_size": 12, "seed": 0, "device": "cpu", "tta": False, "machine": "m", "written": "w"})
    assert "| nnUNetTrainerMSFEN_TimeBudget | 0.9000 | 0.8000 | 0.7000 | 3.00 | 5.50 | n/a | 2 | 50 | 0.5 | 0.60 | 2.50 |" in md
    assert "batch size 12" in md and "2 cases: a, b" in md


def test_report_row_counts_a_cut_off_last_epoch():
    mean = {r: {"dice": 0.5, "hd95": 1.0} for r in ("WT", "TC", "ET")}
    # two whole epochs of 25 iterations (20 s each), then 5 iterations in 4 s before the budget ran out
    stats = {"epochs": 3, "iterations": 55, "iterations_per_epoch": 25, "partial_epoch_iterations": 5,
             "epoch_seconds": [20.0, 20.0, 4.0], "parameters": 1}
    row = report_row("t", mean, stats, ["a"])
    assert row["seconds_per_iteration"] == pytest.approx(44.0 / 55)
    assert row["median_seconds_per_iteration"] == pytest.approx(20.0 / 25)
    assert row["training_minutes"] == pytest.approx(44.0 / 60)


def test_augmentation_workers_get_seeds(monkeypatch):
    from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as trainer_module

    from nnunet_msfen.experiments.train_worker import seed_everything

    monkeypatch.setattr(trainer_module, "NonDetMultiThreadedAugmenter", trainer_module.NonDetMultiThreadedAugmenter)
    seed_everything(7)
    cls = trainer_module.NonDetMultiThreadedAugmenter
    train_loader, val_loader = cls(object(), None, 2, seeds=None), cls(object(), None, 1, seeds=None)
    assert train_loader.seeds == [7, 8] and val_loader.seeds == [1007]
    assert cls(object(), None, 1, seeds=[3]).seeds == [3]  # explicit seeds are kept


@pytest.mark.slow
def test_end_to_end_on_phantoms(tmp_path):
    """4 training and 2 test phantoms of 32^3, 3d_fullres on the CPU, through every step and nnU-Net's real tools.
    The Smoke trainers (2 epochs of 2 iterations) keep it short on 2 busy cores, where one 25-iteration epoch of
    a time-budget trainer takes minutes; the -tr mapping to those is tested above."""
    from nnunet_fixtures import nnunet_env

    from nnunet_msfen.dataset_conversion.phantom import generate_phantom_dataset

    generate_phantom_dataset(tmp_path / "train", 4, layout="2021", shape=(32, 32, 32), seed=1)
    generate_phantom_dataset(tmp_path / "test", 2, layout="2021", shape=(32, 32, 32), seed=1000)
    wd = tmp_path / "wd"
    cmd = [str(Path(sys.executable).parent / "nnunet-msfen"), "benchmark-accuracy", "--train", str(tmp_path / "train"),
           "--test", str(tmp_path / "test"), "--config", "3d_fullres", "--minutes", "0.1", "--workdir", str(wd),
           "--device", "cpu", "--disable-tta", "-tr", "nnUNetTrainer_Smoke", "nnUNetTrainerMSFEN_Smoke"]
    env = nnunet_env(tmp_path / "unused")  # the command sets nnU-Net's folders to the workdir's own
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((wd / "accuracy.json").read_text())
    rows = {r["trainer"]: r for r in report["results"]}
    assert list(rows) == ["nnUNetTrainer_Smoke", "nnUNetTrainerMSFEN_Smoke"]
    for row in rows.values():
        assert row["test_cases"] == ["BraTS2021_00000", "BraTS2021_00001"]
        assert all(0.0 <= row["dice"][r] <= 1.0 for r in ("WT", "TC", "ET"))
        assert row["epochs"] == 2 and row["iterations"] == 4 and len(row["training"]["epoch_seconds"]) == 2
        assert row["seconds_per_iteration"] > 0 and row["parameters"] > 100_000
        assert row["training"]["budget_minutes"] is None  # not a time-budget trainer: its own 2 epochs
    assert rows["nnUNetTrainer_Smoke"]["parameters"] != rows["nnUNetTrainerMSFEN_Smoke"]["parameters"]
    assert "| nnUNetTrainerMSFEN_Smoke |" in (wd / "accuracy.md").read_text()
    assert "nnUNetTrainerMSFEN_Smoke" in run.stdout and "Dice WT" in run.stdout
    assert not list((wd / "nnUNet_results").rglob("validation"))  # nnU-Net's final validation was skipped

    # pool-accuracy reads the real workdir: one test folder pooled gives the report's own means back
    assert main(["pool-accuracy", str(wd), "-tr", "nnUNetTrainer_Smoke", "nnUNetTrainerMSFEN_Smoke",
                 "-o", str(tmp_path / "pooled")]) == 0
    pooled = json.loads((tmp_path / "pooled" / "pooled.json").read_text())
    for trainer, row in rows.items():
        assert {r: pooled["means"][trainer][r]["dice"] for r in ("WT", "TC", "ET")} == pytest.approx(row["dice"])

    start = time.monotonic()  # a rerun reuses every training and prediction
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert again.stdout.count("done before, reused") == 5  # plan, 2 trainings, 2 predictions
    assert "nnUNetv2_train" not in again.stdout and "train_worker" not in again.stdout
    assert json.loads((wd / "accuracy.json").read_text())["results"] == report["results"]
    assert time.monotonic() - start < 120
