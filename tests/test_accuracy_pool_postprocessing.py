"""``pool-accuracy --lesion-wise-postprocessing``: each source scored after component rules chosen on its trainer's
other sources only, on real label files (a trainer whose predictions carry a false-positive speck catches up in
lesion-wise Dice), and the errors when the rules cannot be chosen that way."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

import nnunet_msfen.evaluation.component_postprocessing as component_postprocessing
from nnunet_msfen.cli import main
from nnunet_msfen.evaluation.evaluate import evaluate_folders, save_results
from nnunet_msfen.experiments.accuracy_pool import load_sources
from nnunet_msfen.experiments.accuracy_pool_postprocessing import postprocess_runs

BASE, MSFEN = "nnUNetTrainer_Iterations", "nnUNetTrainerMSFEN_Iterations"
PLANS = "nnUNetPlans_bs12__2d"


def _write(seg: np.ndarray, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(seg.astype(np.uint8)), str(path))


def _reference(shift: int) -> np.ndarray:
    seg = np.zeros((24, 24, 24), np.uint8)
    seg[2 + shift:14 + shift, 2:14, 2:14] = 1
    seg[4 + shift:12 + shift, 4:12, 4:12] = 2
    seg[6 + shift:10 + shift, 6:10, 6:10] = 3
    return seg


def _source(root, name: str, cases) -> None:
    """A benchmark-accuracy workdir's test labels, predictions and evaluation files: the base trainer predicts the
    reference, MSFEN the reference plus an 8-voxel oedema speck far from it."""
    wd = root / name
    for i, case in enumerate(cases):
        ref = _reference(i)
        _write(ref, wd / "labels" / f"{case}.nii.gz")
        _write(ref, wd / "predictions" / f"{BASE}__{PLANS}" / f"{case}.nii.gz")
        speck = ref.copy()
        speck[20:22, 20:22, 20:22] = 1
        _write(speck, wd / "predictions" / f"{MSFEN}__{PLANS}" / f"{case}.nii.gz")
    for trainer in (BASE, MSFEN):
        results = evaluate_folders(str(wd / "predictions" / f"{trainer}__{PLANS}"), str(wd / "labels"), "nnunet")
        (wd / "evaluation").mkdir(exist_ok=True)
        save_results(results, str(wd / "evaluation" / f"{trainer}__{PLANS}.json"))


@pytest.fixture
def three_sources(tmp_path):
    for name, cases in (("A", ("a1", "a2")), ("B", ("b1", "b2")), ("C", ("c1",))):
        _source(tmp_path, name, cases)
    return [tmp_path / s / "evaluation" / f"{t}__{PLANS}.json" for s in "ABC" for t in (BASE, MSFEN)]


def test_each_source_is_postprocessed_with_rules_chosen_on_the_others(three_sources, monkeypatch):
    seen = []
    choose = component_postprocessing.choose_rules_on_pairs
    monkeypatch.setattr(component_postprocessing, "choose_rules_on_pairs",
                        lambda pairs, scoring: seen.append(sorted(pairs)) or choose(pairs, scoring))
    runs = load_sources(three_sources, (BASE, MSFEN))
    before = {(r.trainer, c): m["WT"]["lesion_dice"] for r in runs for c, m in r.per_case.items()}
    assert all(before[(MSFEN, c)] == pytest.approx(0.5) for c in ("a1", "a2", "b1", "b2", "c1"))  # 1 TP, 1 FP
    rules = postprocess_runs(runs, (BASE, MSFEN))
    # per trainer, one choice per source, on the cases of the two other sources only
    assert seen == [["b1", "b2", "c1"], ["a1", "a2", "c1"], ["a1", "a2", "b1", "b2"]] * 2
    assert set(rules) == {BASE, MSFEN} and all(len(by_source) == 3 for by_source in rules.values())
    assert all(r["WT"] != 0 for r in rules[MSFEN].values())  # the speck is removed in every source
    for run in runs:
        for case, metrics in run.per_case.items():
            assert metrics["WT"]["lesion_dice"] == pytest.approx(1.0) and metrics["WT"]["dice"] == pytest.approx(1.0)


def test_the_command_reports_the_rules_and_refuses_a_single_source(tmp_path, three_sources, capsys):
    out = tmp_path / "pooled"
    assert main(["pool-accuracy", *map(str, three_sources), "-tr", BASE, MSFEN, "-o", str(out),
                 "--lesion-wise-postprocessing"]) == 0
    assert f"lesion-wise rules of {MSFEN} for " in capsys.readouterr().out
    pooled = json.loads((out / "pooled.json").read_text())
    assert len(pooled["lesion_wise_postprocessing"][MSFEN]) == 3
    assert "## Lesion-wise postprocessing (chosen on each trainer's other sources)" in (out / "pooled.md").read_text()
    table = {row["region"] + row["metric"]: row for row in pooled["table"]}
    assert table["WTlesion_dice"]["diff"] == pytest.approx(0.0)  # without the option MSFEN is 0.5 behind

    assert main(["pool-accuracy", *map(str, three_sources[:2]), "-tr", BASE, MSFEN, "-o", str(tmp_path / "one"),
                 "--lesion-wise-postprocessing"]) == 1
    assert f"{BASE} needs runs in at least two sources, got 1" in capsys.readouterr().err


def test_a_source_whose_predictions_are_gone_is_named(tmp_path, three_sources):
    import shutil

    shutil.rmtree(tmp_path / "B" / "predictions" / f"{MSFEN}__{PLANS}")
    runs = load_sources(three_sources, (BASE, MSFEN))
    with pytest.raises(ValueError, match=f"{MSFEN}__{PLANS}.json: the folder it was scored on, .*B/predictions/"
                                         f"{MSFEN}__{PLANS}, is missing"):
        postprocess_runs(runs, (BASE, MSFEN))
