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


def _study(folder, results, attention=None):
    """A finished robustness study folder (as the command writes it) from per-case results."""
    from nnunet_msfen.evaluation.robustness import write_study
    from nnunet_msfen.io.atomic import write_json

    for trainer, by_subset in results.items():
        for name, result in by_subset.items():
            write_json(folder / "evaluation" / trainer / f"{name}.json", result)
    write_study(folder, summarise(results, attention), "test data.")
    return folder


def test_pool_concatenates_splits_merges_trainers_and_weighs_the_stem_by_cases(tmp_path):
    from nnunet_msfen.evaluation.robustness_pool import load_study, pool_studies

    w = {FULL: {"t1": 0.1, "t1ce": 0.2, "t2": 0.3, "flair": 0.4}}
    split1 = _study(tmp_path / "s1", {"A": {FULL: _result({"c1": 0.9, "c2": 0.8}), "t1": _result({"c1": 0.5, "c2": 0.4})}},
                    {"A": w})
    split2 = _study(tmp_path / "s2", {"A": {FULL: _result({"c3": 0.6, "c4": 0.7, "c5": 0.5}),
                                            "t1": _result({"c3": 0.3, "c4": 0.2, "c5": 0.1})}},
                    {"A": {FULL: {"t1": 0.6, "t1ce": 0.2, "t2": 0.1, "flair": 0.1}}})
    other = _study(tmp_path / "s3", {"B": {FULL: _result({"c1": 0.7, "c2": 0.6}), "t1": _result({"c1": 0.6, "c2": 0.6})}})
    results, attention = pool_studies([(str(f), *load_study(f)) for f in (split1, split2, other)])
    assert sorted(results["A"][FULL]["per_case"]) == ["c1", "c2", "c3", "c4", "c5"]
    assert sorted(results["B"]["t1"]["per_case"]) == ["c1", "c2"]
    assert attention["A"][FULL]["t1"] == pytest.approx((0.1 * 2 + 0.6 * 3) / 5) and "B" not in attention
    summary = summarise(results, attention)
    assert summary["A"]["subsets"]["t1"]["dice"]["WT"] == pytest.approx(0.3)


def test_pool_refuses_a_case_twice_other_subsets_and_unfinished_studies(tmp_path):
    from nnunet_msfen.evaluation.robustness_pool import load_study, pool_studies

    a = _study(tmp_path / "a", {"A": {FULL: _result({"c1": 0.9, "c2": 0.8})}})
    b = _study(tmp_path / "b", {"A": {FULL: _result({"c2": 0.9, "c3": 0.8})}})
    c = _study(tmp_path / "c", {"A": {FULL: _result({"c4": 0.9, "c5": 0.8}), "t2": _result({"c4": 0.9, "c5": 0.8})}})
    with pytest.raises(ValueError, match="case c2 of A, subset all is in both"):
        pool_studies([(str(f), *load_study(f)) for f in (a, b)])
    with pytest.raises(ValueError, match="same subsets"):
        pool_studies([(str(f), *load_study(f)) for f in (a, c)])
    with pytest.raises(ValueError, match="no summary.json"):
        load_study(tmp_path / "nothing")
    (a / "evaluation" / "A" / "all.json").unlink()
    with pytest.raises(ValueError, match="all.json for A, subset all"):
        load_study(a)


def test_versus_pairs_cases_per_subset():
    from nnunet_msfen.evaluation.robustness_pool import versus, versus_table

    results = {"A": {FULL: _result({"c1": 0.9, "c2": 0.8, "c3": 0.7}), "t1": _result({"c1": 0.5, "c2": 0.4, "c3": 0.3})},
               "B": {FULL: _result({"c1": 0.8, "c2": 0.8, "c3": 0.8}), "t1": _result({"c1": 0.6, "c2": 0.5, "c3": 0.4})}}
    diffs = versus(results, "A", "B")
    assert diffs[FULL]["mean"]["mean"] == pytest.approx(0.0) and diffs["t1"]["WT"]["mean"] == pytest.approx(0.1)
    assert diffs["t1"]["mean"]["low"] == pytest.approx(0.1) and diffs["t1"]["mean"]["n"] == 3
    header, rows = versus_table(diffs)
    assert rows[1][0] == "t1" and rows[1][-1] == "3" and len(header) == len(rows[0])
    with pytest.raises(ValueError, match="'C' is not in the studies"):
        versus(results, "A", "C")


def test_pool_command_writes_the_report_and_names_bad_sources(tmp_path, capsys):
    a = _study(tmp_path / "a", {"A": {FULL: _result({"c1": 0.9, "c2": 0.8}), "t1": _result({"c1": 0.5, "c2": 0.4})}})
    b = _study(tmp_path / "b", {"B": {FULL: _result({"c1": 0.8, "c2": 0.8}), "t1": _result({"c1": 0.6, "c2": 0.5})}})
    assert main(["pool-robustness", str(a), str(b), "-o", str(tmp_path / "o"), "--versus", "A", "B"]) == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "B - A: paired Dice difference per subset" in report and "2 test cases pooled from 2 studies" in report
    assert (tmp_path / "o" / "versus.json").is_file() and (tmp_path / "o" / "figures" / "heatmap.png").is_file()
    capsys.readouterr()
    assert main(["pool-robustness", str(a), str(tmp_path / "missing"), "-o", str(tmp_path / "o2")]) == 1
    assert "missing is not a finished robustness study" in capsys.readouterr().err
    assert main(["pool-robustness", str(a), "-o", str(tmp_path / "o3"), "--versus", "A", "X"]) == 1
    assert "'X' is not in the studies" in capsys.readouterr().err
    assert not (tmp_path / "o3" / "report.md").exists()
