"""``nnunet-msfen robustness``: the 15 subsets, the paired statistics against the full input, the report's tables
and figure, and the command's bad inputs. Predicting with a trained model runs in the end-to-end tests."""
import numpy as np
import pytest

from nnunet_msfen.cli import main
from nnunet_msfen.evaluation.robustness import (FULL, attention_table, heatmap, missing_of, subset_name, subsets,
                                                 summarise, table)
from nnunet_msfen.labels import REGIONS


def test_fifteen_subsets_full_input_first():
    all_subsets = subsets()
    assert len(all_subsets) == 15 == len(set(all_subsets))
    assert subset_name(all_subsets[0]) == FULL and missing_of(all_subsets[0]) == []
    assert subset_name(("t1", "t2")) == "t1+t2" and missing_of(("t1", "t2")) == ["t1ce", "flair"]
    assert [len(s) for s in all_subsets] == [4] + [3] * 4 + [2] * 6 + [1] * 4


def _result(dice_by_case):
    per_case = {case: {r: {"dice": d, "hd95": 10 * (1 - d) if d else None} for r in REGIONS}
                for case, d in dice_by_case.items()}
    return {"per_case": per_case}


def test_summary_pairs_every_subset_with_the_full_input():
    results = {"A": {FULL: _result({"c1": 0.9, "c2": 0.8, "c3": 0.7}), "t1+t2": _result({"c1": 0.6, "c2": 0.4, "c3": 0.5})}}
    attention = {"A": {FULL: {"t1": 1.0, "t1ce": 1.0, "t2": 1.0, "flair": 1.0}}}
    summary = summarise(results, attention)
    row = summary["A"]["subsets"]["t1+t2"]
    assert row["dice"]["WT"] == pytest.approx(0.5) and row["mean_dice"] == pytest.approx(0.5)
    assert row["share_of_full"] == pytest.approx(0.5 / 0.8)
    diff = row["vs_full"]["WT"]["dice"]
    assert diff["mean"] == pytest.approx(-0.3) and diff["low"] <= -0.3 <= diff["high"] and diff["n"] == 3
    assert summary["A"]["subsets"][FULL]["vs_full"]["ET"]["dice"]["mean"] == 0
    header, rows = table(summary, "A")
    assert rows[1][:2] == ["t1+t2", "t1ce, flair"] and len(header) == len(rows[0])
    assert attention_table(summary, "A")[1] == [[FULL, "1.00", "1.00", "1.00", "1.00"]]
    assert heatmap(summary)[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_refuses_results_without_the_full_input_or_other_cases():
    with pytest.raises(ValueError, match="full-input"):
        summarise({"A": {"t1": _result({"c1": 0.5})}})
    with pytest.raises(ValueError, match="other cases"):
        summarise({"A": {FULL: _result({"c1": 0.5, "c2": 0.4}), "t1": _result({"c1": 0.5})}})


def test_command_refuses_unknown_subsets_and_incomplete_cases(tmp_path, capsys):
    from brats_fixtures import SHAPE, write_nifti

    for c in range(3):  # case c without T1ce
        write_nifti(tmp_path / "in" / f"c_{c if c != 1 else 3:04d}.nii.gz", np.ones(SHAPE, np.float32))
    (tmp_path / "ref").mkdir()
    base = ["robustness", "-d", "1", "-c", "2d", "-tr", "T", "-i", str(tmp_path / "in"), "-r", str(tmp_path / "ref")]
    assert main([*base, "-o", str(tmp_path / "o"), "--subsets", "t1+t5"]) == 1
    assert "'t1+t5'" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "complete cases" in err and "['c']" in err
