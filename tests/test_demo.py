"""nnunet-msfen demo: the overlay picture, the workdir's skip/resume logic, the table and baselines, argument
errors, and one end-to-end run with tiny settings (slow)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnunet_msfen.cli import main
from nnunet_msfen.demo.overlay import DPI, PANEL_INCHES, REGION_COLORS, OverlayCase, tumour_slice, write_overlay
from nnunet_msfen.demo.report import format_table, margins_over_trivial, trivial_baselines, verdict
from nnunet_msfen.demo.settings import STEPS, DemoSettings
from nnunet_msfen.demo.workdir import MARKER, DemoWorkdir
from nnunet_msfen.errors import WorkdirError


def _ball(shape, center, radius):
    z, y, x = np.ogrid[tuple(slice(0, s) for s in shape)]
    return (z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 <= radius ** 2


def _labels(shape=(24, 24, 24), center=(12, 12, 12)):
    seg = np.zeros(shape, np.uint8)
    seg[_ball(shape, center, 7)] = 1  # edema
    seg[_ball(shape, center, 4)] = 3  # enhancing rim
    seg[_ball(shape, center, 2)] = 2  # necrosis
    return seg


def _case(case_id="c1", prediction=None):
    ref = _labels()
    image = np.where(_ball(ref.shape, (12, 12, 12), 11), 500.0, 0.0) + 300.0 * (ref > 0)
    return OverlayCase(case_id, image, ref, ref if prediction is None else prediction,
                       {"WT": 0.9, "TC": 0.8, "ET": 0.7})


def _colour_pixels(png: np.ndarray, colour: str) -> int:
    """Pixels of ``colour`` in the image panels (the legend below them, in the bottom 8%, is left out)."""
    from matplotlib.colors import to_rgb

    rgb = png[: int(png.shape[0] * 0.9), :, :3]
    return int((np.abs(rgb - np.asarray(to_rgb(colour))).max(axis=-1) < 0.2).sum())


# --- overlay ---------------------------------------------------------------------------------------------------
def test_overlay_png_size_and_region_contours(tmp_path):
    import matplotlib.image

    cases = [_case("c1"), _case("c2", prediction=np.zeros((24, 24, 24), np.uint8))]
    path = write_overlay(cases, tmp_path / "overlay.png")
    png = matplotlib.image.imread(path)
    assert png.shape[:2] == (round((2 * PANEL_INCHES + 0.4) * DPI), round(2 * PANEL_INCHES * DPI))
    for colour in REGION_COLORS.values():
        assert _colour_pixels(png, colour) > 30, colour


def test_overlay_panels_name_the_sequence_they_show(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    titles = []
    original = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda ax, text, **kw: (titles.append(text), original(ax, text, **kw))[1])
    write_overlay([_case("c1")], tmp_path / "overlay.png", sequence="T1ce")
    assert len(titles) == 2 and all("on T1ce, axial slice" in t for t in titles)


def test_overlay_without_tumour_has_no_contour_colours(tmp_path):
    import matplotlib.image

    empty = np.zeros((24, 24, 24), np.uint8)
    case = OverlayCase("c1", np.full(empty.shape, 100.0), empty, empty, {"WT": 1.0, "TC": 1.0, "ET": 1.0})
    png = matplotlib.image.imread(write_overlay([case], tmp_path / "o.png"))
    assert all(_colour_pixels(png, c) == 0 for c in REGION_COLORS.values())


def test_overlay_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no cases"):
        write_overlay([], tmp_path / "o.png")
    bad = _case()
    bad.prediction = bad.prediction[:-1]
    with pytest.raises(ValueError, match="case c1"):
        write_overlay([bad], tmp_path / "o.png")
    assert not (tmp_path / "o.png").exists()


def test_tumour_slice_is_the_slice_with_most_tumour():
    assert tumour_slice(_labels(center=(5, 12, 12))) == 5
    assert tumour_slice(np.zeros((10, 4, 4), np.uint8)) == 5


# --- settings and workdir ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(iterations=0), "iterations"), (dict(iterations=2.5), "iterations"), (dict(train_cases=1), "train_cases"),
    (dict(test_cases=0), "test_cases"), (dict(shape=(48, 48, 8)), "shape"), (dict(seed=-1), "seed"),
    (dict(trainer="nnUNetTrainer"), "nnUNetTrainer"), (dict(patch_size=(30, 32, 32)), "patch_size")])
def test_settings_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DemoSettings(**kwargs)


def _finish(wd: DemoWorkdir, *names: str) -> None:
    """Pretend steps ran: create their outputs and record them."""
    for step in names:
        for path in wd.outputs(step):
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            else:
                path.mkdir(parents=True, exist_ok=True)
        wd.record(step, 1.0)


def test_steps_to_run_skips_finished_steps(tmp_path):
    wd = DemoWorkdir(tmp_path / "w", DemoSettings())
    wd.prepare()
    assert wd.steps_to_run() == list(STEPS)
    _finish(wd, "phantom", "convert", "plan")
    assert wd.steps_to_run() == ["train", "predict"]
    _finish(wd, "train", "predict")
    assert wd.steps_to_run() == []
    (wd.dataset_raw / "labelsTs").rmdir()  # an output gone: that step and all after it run again
    assert wd.steps_to_run() == ["convert", "plan", "train", "predict"]


@pytest.mark.parametrize("change, first", [(dict(seed=1), "phantom"), (dict(features_per_stage=(8, 16, 32)), "plan"),
                                           (dict(iterations=20), "train"), (dict(tta=True), "predict")])
def test_changed_settings_redo_the_step_that_depends_on_them(tmp_path, change, first):
    wd = DemoWorkdir(tmp_path / "w", DemoSettings())
    wd.prepare()
    _finish(wd, *STEPS)
    changed = DemoWorkdir(wd.root, DemoSettings(**change))
    assert changed.steps_to_run() == list(STEPS[STEPS.index(first):])
    # what the demo tells the user before it replaces a finished result
    name, value = next(iter(change.items()))
    then = getattr(DemoSettings(), name)
    assert changed.changed_settings(first) == {name: (list(then) if isinstance(then, tuple) else then,
                                                      list(value) if isinstance(value, tuple) else value)}
    assert DemoWorkdir(wd.root, DemoSettings()).changed_settings(first) == {}


def test_interrupted_training_resumes_only_with_the_same_settings(tmp_path):
    wd = DemoWorkdir(tmp_path / "w", DemoSettings())
    wd.prepare()
    _finish(wd, "phantom", "convert", "plan")
    wd.record_training_started()
    todo = wd.steps_to_run()
    assert not wd.can_resume_training(todo)  # no checkpoint yet
    wd.fold_dir.mkdir(parents=True)
    (wd.fold_dir / "checkpoint_latest.pth").write_bytes(b"x")
    assert wd.can_resume_training(todo)
    assert not DemoWorkdir(wd.root, DemoSettings(iterations=30)).can_resume_training(todo)
    wd.clear("plan")  # redoing an earlier step forgets the training and deletes what it made
    assert not wd.dataset_preprocessed.exists() and not wd.can_resume_training(wd.steps_to_run())


def test_workdir_refuses_a_foreign_folder_and_fresh_never_deletes_it(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(WorkdirError, match="not made by the demo"):
        DemoWorkdir(foreign, DemoSettings()).prepare(fresh=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
    wd = DemoWorkdir(tmp_path / "demo", DemoSettings())
    wd.prepare()
    _finish(wd, "phantom")
    wd.prepare(fresh=True)
    assert (wd.root / MARKER).is_file() and not wd.phantom.exists() and wd.steps_to_run() == list(STEPS)


def test_cli_errors_name_the_value_and_exit_1(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--iterations", "-2"]) == 1
    assert "iterations must be a positive integer, got -2" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.txt").write_text("keep")
    assert main(["demo", "--workdir", str(tmp_path / "x")]) == 1
    assert "not made by the demo" in capsys.readouterr().err
    assert os.listdir(tmp_path / "x") == ["data.txt"]
    with pytest.raises(SystemExit):
        main(["demo", "--train-cases", "many"])


# --- table and baselines -----------------------------------------------------------------------------------------
def test_trivial_baselines_score_what_they_should(tmp_path):
    import SimpleITK as sitk

    images, labels = tmp_path / "imagesTs", tmp_path / "labelsTs"
    images.mkdir()
    labels.mkdir()
    ref = _labels()
    brain = _ball(ref.shape, (12, 12, 12), 11)
    sitk.WriteImage(sitk.GetImageFromArray(ref), str(labels / "c1.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(brain.astype(np.int16) * 400), str(images / "c1_0003.nii.gz"))
    result = trivial_baselines(["c1"], images, labels)
    assert result["empty"]["WT"]["dice"] == 0.0 and result["empty"]["WT"]["hd95"] == pytest.approx(373.13)
    wt = int((ref > 0).sum())
    assert result["whole brain"]["WT"]["dice"] == pytest.approx(2 * wt / (brain.sum() + wt))
    assert result["whole brain"]["ET"]["sensitivity"] == pytest.approx(1.0)


def test_table_and_verdict():
    def mean(d):
        return {r: {"dice": d, "iou": d, "hd95": 3.0, "sensitivity": d, "specificity": 1.0, "precision": d,
                    "lesion_dice": d, "lesion_hd95": 4.0, "small_lesion_dice": None} for r in ("WT", "TC", "ET")}

    table = format_table({"MSFEN": mean(0.9), "empty (trivial)": mean(0.0)})
    lines = table.splitlines()
    assert "Dice" in lines[0] and "HD95" in lines[0] and "LesDice" in lines[0]
    assert lines[2].split()[:3] == ["WT", "MSFEN", "0.900"] and "n/a" in lines[2]
    assert len(lines) == 2 + 3 * 2
    margins = margins_over_trivial(mean(0.9), {"empty": mean(0.0), "whole brain": mean(0.3)})
    assert margins == pytest.approx({"WT": 0.6, "TC": 0.6, "ET": 0.6})
    assert verdict(margins).startswith("Clearly better")
    assert verdict({**margins, "ET": 0.05}).startswith("NOT clearly better")


# --- end to end --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_end_to_end_then_rerun_reuses_every_step(tmp_path):
    workdir = tmp_path / "demo"
    cmd = [str(Path(sys.executable).parent / "nnunet-msfen"), "demo", "--workdir", str(workdir), "--train-cases",
           "4", "--test-cases", "2", "--shape", "24", "24", "24", "--trainer", "nnUNetTrainerMSFEN_Smoke"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    evaluation = json.loads((workdir / "evaluation.json").read_text())
    assert sorted(evaluation["per_case"]) == ["BraTS2021_00004", "BraTS2021_00005"] and not evaluation["missing"]
    assert (workdir / "overlay.png").stat().st_size > 1000
    assert (workdir / "nnUNet_raw" / "Dataset990_PhantomDemo" / "labelsTs" / "BraTS2021_00005.nii.gz").is_file()
    for needle in ("whole brain (trivial)", "empty (trivial)", "LesDice", "SmallDice"):
        assert needle in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    # every step reused: no training epoch and no prediction ran again
    assert second.stdout.count("reused") == len(STEPS)
    assert "Epoch " not in second.stdout and "Predicting" not in second.stdout
    # the commands the demo prints to continue work as printed, with the printed exports
    from nnunet_msfen.demo import next_steps

    wd = DemoWorkdir(workdir, DemoSettings(train_cases=4, test_cases=2, shape=(24, 24, 24),
                                           trainer="nnUNetTrainerMSFEN_Smoke"))
    assert next_steps.text(wd) in first.stdout
    env = {**os.environ, **next_steps.environment(wd)}
    for command in next_steps.commands(wd):
        exe = str(Path(sys.executable).parent / command[0])
        done = subprocess.run([exe, *command[1:]], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert sorted(p.name for p in (workdir / "submission").glob("*.nii.gz")) == ["BraTS2021_00004.nii.gz",
                                                                                   "BraTS2021_00005.nii.gz"]
    assert (workdir / "submission" / "volumes.csv").is_file() and (workdir / "metrics_two_folds.json").is_file()
    assert (wd.results / wd.settings.dataset / "inference_instructions.txt").is_file()  # find_best_configuration's
