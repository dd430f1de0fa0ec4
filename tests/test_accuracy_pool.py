"""``nnunet-msfen pool-accuracy``: benchmark-accuracy workdirs of disjoint test folders pooled into one paired
comparison, the choice of one trainer through an evaluation file, and the errors for sources that do not fit."""
import json

import numpy as np
import pytest

from nnunet_msfen.evaluation.stats import bootstrap_ci, wilcoxon_p
from nnunet_msfen.experiments.accuracy_pool import load_source, load_sources, mean_dice_comparison, pool
from nnunet_msfen.cli import main

BASE, MSFEN = "nnUNetTrainer_TimeBudget", "nnUNetTrainerMSFEN_TimeBudget"
METRICS = ("dice", "iou", "hd95", "sensitivity", "specificity", "precision", "lesion_dice", "lesion_hd95")


def _case(dice: float) -> dict:
    """Metrics of one case; every region gets the same Dice, HD95 falls as Dice rises."""
    return {r: {m: (dice if m != "hd95" and m != "lesion_hd95" else 10 * (1 - dice)) for m in METRICS}
            for r in ("WT", "TC", "ET")}


def _workdir(root, name, dice_by_trainer, iterations=(100, 200)):
    """A benchmark-accuracy workdir: accuracy.json and one evaluation file per trainer."""
    wd = root / name
    (wd / "evaluation").mkdir(parents=True)
    rows = []
    for (trainer, per_case), its in zip(dice_by_trainer.items(), iterations):
        evaluation = {"per_case": {c: _case(d) for c, d in per_case.items()}, "mean": {}, "missing": []}
        (wd / "evaluation" / f"{trainer}__nnUNetPlans_bs12__2d.json").write_text(json.dumps(evaluation))
        rows.append({"trainer": trainer, "iterations": its, "seconds_per_iteration": 1800 / its,
                     "training_minutes": 30.0, "parameters": 1000})
    (wd / "accuracy.json").write_text(json.dumps({"settings": {"plans": "nnUNetPlans_bs12", "config": "2d"},
                                                  "results": rows}))
    return wd


@pytest.fixture
def two_splits(tmp_path):
    """Two splits of 3 test cases each; MSFEN is 0.1 Dice better on every case."""
    first = {BASE: {"a1": 0.5, "a2": 0.6, "a3": 0.4}, MSFEN: {"a1": 0.6, "a2": 0.7, "a3": 0.5}}
    second = {BASE: {"b1": 0.3, "b2": 0.8, "b3": 0.7}, MSFEN: {"b1": 0.4, "b2": 0.9, "b3": 0.8}}
    return _workdir(tmp_path, "A", first), _workdir(tmp_path, "B", second)


def test_pooling_two_workdirs_pairs_every_test_case(two_splits):
    pooled = pool([r for wd in two_splits for r in load_source(wd)], ("nnUNetTrainer", "nnUNetTrainerMSFEN"))
    assert pooled["names"] == [BASE, MSFEN]  # -tr names map to the time-budget variants
    assert pooled["cases"] == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert pooled["means"][BASE]["WT"]["dice"] == pytest.approx(np.mean([0.5, 0.6, 0.4, 0.3, 0.8, 0.7]))
    assert pooled["means"][MSFEN]["ET"]["dice"] == pytest.approx(np.mean([0.6, 0.7, 0.5, 0.4, 0.9, 0.8]))
    dice_wt = next(r for r in pooled["table"] if (r["region"], r["metric"]) == ("WT", "dice"))
    assert dice_wt["diff"] == pytest.approx(0.1) and dice_wt["ci_low"] == pytest.approx(0.1)
    assert dice_wt["p"] == pytest.approx(0.03125)  # exact two-sided Wilcoxon, 6 positive differences
    assert len(pooled["splits"]) == 4
    first_msfen = next(s for s in pooled["splits"] if s["trainer"] == MSFEN and s["cases"][0] == "a1")
    assert first_msfen["iterations"] == 200 and first_msfen["dice"]["TC"] == pytest.approx(0.6)
    assert pooled["per_case_dice"][MSFEN]["b2"]["WT"] == pytest.approx(0.9)
    mean_dice = pooled["mean_dice"]
    assert mean_dice["diff"] == pytest.approx(0.1) and mean_dice["ci_low"] == pytest.approx(0.1)
    assert mean_dice["A"] == pytest.approx(0.55) and mean_dice["p"] == pytest.approx(0.03125)


def test_mean_dice_averages_the_regions_of_a_case_before_pairing():
    # B is better on WT in every case and worse on ET by more: per case the region mean falls
    a = {c: {"WT": {"dice": 0.5}, "TC": {"dice": 0.5}, "ET": {"dice": d}} for c, d in zip("pqrs", (0.2, 0.4, 0.6, 0.8))}
    b = {c: {"WT": {"dice": 0.6}, "TC": {"dice": 0.5}, "ET": {"dice": d - 0.3}} for c, d in zip("pqrs", (0.2, 0.4, 0.6, 0.8))}
    result = mean_dice_comparison(a, b)
    means_a = [(0.5 + 0.5 + d) / 3 for d in (0.2, 0.4, 0.6, 0.8)]
    means_b = [(0.6 + 0.5 + d - 0.3) / 3 for d in (0.2, 0.4, 0.6, 0.8)]
    assert result["diff"] == pytest.approx(-0.2 / 3)
    assert (result["diff"], result["ci_low"], result["ci_high"]) == pytest.approx(bootstrap_ci(means_a, means_b))
    assert result["p"] == pytest.approx(wilcoxon_p(means_a, means_b))
    assert result["A"] == pytest.approx(np.mean(means_a)) and result["B"] == pytest.approx(np.mean(means_b))


def test_an_evaluation_file_takes_one_trainer_from_a_workdir(tmp_path, two_splits):
    first, _ = two_splits
    # a rerun of MSFEN alone on the first split, in its own workdir
    rerun = _workdir(tmp_path, "A_rerun", {MSFEN: {"a1": 0.9, "a2": 0.9, "a3": 0.9}}, iterations=(300,))
    with pytest.raises(ValueError, match=r"test case a1 of nnUNetTrainerMSFEN_TimeBudget is in two sources"):
        pool(load_source(first) + load_source(rerun), (BASE, MSFEN))
    base_only = first / "evaluation" / f"{BASE}__nnUNetPlans_bs12__2d.json"
    runs = load_source(base_only) + load_source(rerun)
    assert [r.trainer for r in load_source(base_only)] == [BASE]
    pooled = pool(runs, (BASE, MSFEN))
    assert pooled["means"][MSFEN]["WT"]["dice"] == pytest.approx(0.9)
    assert {s["trainer"]: s["iterations"] for s in pooled["splits"]} == {BASE: 100, MSFEN: 300}


def test_sources_that_do_not_fit_are_refused(tmp_path, two_splits):
    first, second = two_splits
    with pytest.raises(ValueError, match="no run of nnUNetTrainerOther"):
        pool(load_source(first), (BASE, "nnUNetTrainerOther"))
    with pytest.raises(ValueError, match="give two different trainers"):
        pool(load_source(first), (BASE, BASE))
    lopsided = _workdir(tmp_path, "C", {BASE: {"c1": 0.5, "c2": 0.5}, MSFEN: {"c1": 0.5}})
    with pytest.raises(ValueError, match="tested on different cases: only nnUNetTrainer_TimeBudget: c2"):
        pool(load_source(lopsided), (BASE, MSFEN))
    with pytest.raises(ValueError, match=f"{tmp_path} is not a benchmark-accuracy workdir"):
        load_source(tmp_path)
    (first / "accuracy.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"cannot read {first / 'accuracy.json'}"):
        load_source(first)
    (second / "evaluation" / f"{MSFEN}__nnUNetPlans_bs12__2d.json").unlink()
    with pytest.raises(ValueError, match=f"lists {MSFEN} but .* is missing"):
        load_source(second)
    stray = tmp_path / "stray.json"
    stray.write_text("{}")
    with pytest.raises(ValueError, match="is neither a benchmark-accuracy workdir nor"):
        load_source(stray)


def test_command_writes_the_report_and_exits_1_on_bad_input(tmp_path, two_splits, capsys):
    out = tmp_path / "pooled"
    assert main(["pool-accuracy", *map(str, two_splits), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nnUNetTrainerMSFEN_TimeBudget" in printed and "mean Dice" in printed
    assert "paired over 6 cases" in printed and "- nnUNetTrainer_TimeBudget +0.100 [95% CI +0.100, +0.100]" in printed
    report = (out / "pooled.md").read_text()
    assert "6 test cases from 2 test folder(s)" in report
    assert "| b2 | 0.800 | 0.800 | 0.800 | 0.900 | 0.900 | 0.900 |" in report
    assert json.loads((out / "pooled.json").read_text())["cases"][0] == "a1"

    assert main(["pool-accuracy", str(tmp_path / "missing"), "-o", str(tmp_path / "never")]) == 1
    assert f"{tmp_path / 'missing'} is neither" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_workdir_without_either_trainer_is_refused_not_dropped(tmp_path, two_splits):
    first, _ = two_splits
    later = _workdir(tmp_path, "later", {"nnUNetTrainerOther": {"c1": 0.5}})
    assert {r.trainer for r in load_sources([first], (BASE, MSFEN))} == {BASE, MSFEN}
    with pytest.raises(ValueError, match=f"{later}: its accuracy.json has no run of {MSFEN} or {BASE} "
                                         r"\(it lists \['nnUNetTrainerOther'\]\)"):
        load_sources([first, later], (BASE, MSFEN))
