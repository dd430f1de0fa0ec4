"""The current official BraTS metrics (``nnunet_msfen.evaluation.panoptic``) against the official implementation.

``tests/golden/official_metrics.json`` holds the outputs of ``brats_evaluation.evaluate_single_exam`` (brats-evaluation
0.0.10, panoptica 2.1.7) for synthetic pairs, recorded by ``tests/golden/make_official_metrics.py``; the pairs are
rebuilt here by the same pure-numpy code (``tests/golden/official_pairs.py``) and checked against the recorded sha256.

Tolerance: ``TOLERANCE`` (1e-6) on every score, DSC, NSD, HD95, rq and pq alike (the definitions are the same; the
largest difference measured is 1e-16), counts exact. The spacing is rounded to float32 as the NIfTI files that the
official code read store it. An infinite official HD95 is compared as ``OFFICIAL_HD95_PENALTY``, NaN as None.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from golden.official_pairs import digest, make_pair
from nnunet_msfen.brats_tasks import TASKS
from nnunet_msfen.evaluation.evaluate import evaluate_arrays, mean_results
from nnunet_msfen.evaluation.panoptic import (OFFICIAL_CONFIGS, OFFICIAL_HD95_PENALTY, PANOPTIC_KEYS,
                                              panoptic_metrics)
from nnunet_msfen.evaluation.scoring import scoring_for

GOLDEN = json.loads((Path(__file__).parent / "golden" / "official_metrics.json").read_text())
TOLERANCE = 1e-6
OFFICIAL_FIELD = {"global_dice": "global_bin_dsc", "global_nsd": "global_bin_nsd", "global_hd95": "global_bin_hd95",
                  "instance_tp": "tp", "instance_fp": "fp", "instance_fn": "fn", "instance_rq": "rq",
                  "instance_dice": "sq_dsc", "instance_pq": "pq_dsc", "instance_nsd": "sq_nsd",
                  "instance_hd95": "sq_hd95"}


def _official(value):
    return OFFICIAL_HD95_PENALTY if value == "inf" else value


def _file_spacing(spacing):
    return tuple(float(np.float32(s)) for s in spacing)  # NIfTI pixdim is float32


def _compare(cfg: str):
    """(mismatches, {key: max |ours - official|}) over every pair and group of ``cfg``."""
    entry = GOLDEN["configs"][cfg]
    bad, worst = [], {k: 0.0 for k in PANOPTIC_KEYS}
    for pair in entry["pairs"]:
        spec = pair["spec"]
        pred, ref = make_pair(spec)
        assert digest(pred, ref) == pair["sha256"], f"{cfg}/{spec['name']}: the pair was not rebuilt identically"
        for group, labels in entry["groups"].items():
            ours = panoptic_metrics(np.isin(pred, labels), np.isin(ref, labels), _file_spacing(spec["spacing"]))
            for key in PANOPTIC_KEYS:
                theirs = _official(pair["official"][group][OFFICIAL_FIELD[key]])
                mine = ours[key]
                if theirs is None or mine is None:
                    if theirs is not mine:
                        bad.append(f"{cfg}/{spec['name']}/{group}/{key}: ours {mine}, official {theirs}")
                    continue
                diff = abs(mine - theirs)
                worst[key] = max(worst[key], diff)
                if diff > (0 if key in ("instance_tp", "instance_fp", "instance_fn") else TOLERANCE):
                    bad.append(f"{cfg}/{spec['name']}/{group}/{key}: ours {mine}, official {theirs}")
    return bad, worst


@pytest.mark.parametrize("cfg", sorted(GOLDEN["configs"]))
def test_agrees_with_the_official_evaluation(cfg, record_property):
    bad, worst = _compare(cfg)
    record_property("max_abs_diff", worst)
    print(f"{cfg}: max |ours - official| per key: {worst}")
    assert not bad, "\n".join(bad[:20])


def test_golden_file_names_its_versions():
    assert GOLDEN["versions"]["brats-evaluation"] == "0.0.10" and GOLDEN["versions"]["panoptica"] == "2.1.7"


def test_each_task_maps_to_the_config_holding_its_regions():
    assert set(OFFICIAL_CONFIGS) == set(TASKS) - {"legacy"}  # BraTS 2018-2021 labels: no official config
    for task, cfg in OFFICIAL_CONFIGS.items():
        groups = GOLDEN["configs"][cfg]["groups"]
        for region, labels in TASKS[task].regions.items():
            assert sorted(groups[region.lower()]) == sorted(labels), (task, region)


def _cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_both_empty_is_undefined():
    empty = np.zeros((8, 8, 8), bool)
    m = panoptic_metrics(empty, empty, (1, 1, 1))
    assert {k: m[k] for k in ("instance_tp", "instance_fp", "instance_fn")} == {
        "instance_tp": 0, "instance_fp": 0, "instance_fn": 0}
    assert all(m[k] is None for k in PANOPTIC_KEYS if k not in ("instance_tp", "instance_fp", "instance_fn"))


@pytest.mark.parametrize("missing", ["prediction", "reference"])
def test_one_empty_mask_scores_zero_and_the_hd95_penalty(missing):
    lesions = _cube((20, 20, 20), (2, 2, 2), (6, 6, 6)) | _cube((20, 20, 20), (10, 10, 10), (15, 15, 15))
    empty = np.zeros_like(lesions)
    pred, ref = (empty, lesions) if missing == "prediction" else (lesions, empty)
    m = panoptic_metrics(pred, ref, (1, 1, 1))
    assert (m["instance_tp"], m["instance_fp"], m["instance_fn"]) == ((0, 0, 2) if missing == "prediction" else (0, 2, 0))
    for key in ("global_dice", "global_nsd", "instance_rq", "instance_dice", "instance_pq", "instance_nsd"):
        assert m[key] == 0.0, key
    assert m["global_hd95"] == m["instance_hd95"] == OFFICIAL_HD95_PENALTY


def test_masks_that_do_not_touch_get_the_edge_values_not_a_distance():
    pred, ref = _cube((20, 20, 20), (2, 2, 2), (6, 6, 6)), _cube((20, 20, 20), (10, 10, 10), (15, 15, 15))
    m = panoptic_metrics(pred, ref, (1, 1, 1))
    assert (m["global_dice"], m["global_hd95"], m["instance_hd95"]) == (0.0, OFFICIAL_HD95_PENALTY, OFFICIAL_HD95_PENALTY)
    assert (m["instance_tp"], m["instance_fp"], m["instance_fn"], m["instance_rq"]) == (0, 1, 1, 0.0)


def test_identical_masks_are_perfect_and_a_speck_costs_detection_only():
    ref = _cube((20, 20, 20), (3, 3, 3), (9, 9, 9))
    m = panoptic_metrics(ref, ref, (1, 1, 1))
    assert (m["global_dice"], m["global_nsd"], m["global_hd95"], m["instance_rq"], m["instance_pq"]) == (1, 1, 0, 1, 1)
    speck = ref.copy()
    speck[15, 15, 15] = True
    m = panoptic_metrics(speck, ref, (1, 1, 1))
    assert (m["instance_tp"], m["instance_fp"], m["instance_dice"]) == (1, 1, 1.0)
    assert m["instance_rq"] == pytest.approx(1 / 1.5) and m["instance_pq"] == pytest.approx(1 / 1.5)


def test_cropping_changes_nothing_for_a_mask_on_the_image_border():
    ref = _cube((12, 12, 12), (0, 0, 0), (5, 6, 7))
    pred = _cube((12, 12, 12), (0, 1, 0), (6, 6, 5))
    padded = [np.pad(a, 3) for a in (pred, ref)]
    assert panoptic_metrics(pred, ref, (1.0, 1.5, 2.0)) == panoptic_metrics(*padded, (1.0, 1.5, 2.0))


def test_bad_input_is_refused():
    a = np.zeros((4, 4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        panoptic_metrics(a, np.zeros((4, 4, 5), bool), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        panoptic_metrics(a, a, (1, 0, 1))


def test_evaluate_arrays_adds_the_official_keys_and_means_skip_undefined_values():
    seg = np.zeros((16, 16, 16), np.uint8)
    seg[3:9, 3:9, 3:9] = 2
    seg[4:7, 4:7, 4:7] = 3
    empty = np.zeros_like(seg)
    scoring = scoring_for("brats", "gli2024")
    hit, nothing = evaluate_arrays(seg, seg, (1.0, 1.0, 1.0), scoring), evaluate_arrays(empty, empty, (1, 1, 1), scoring)
    for region in scoring.regions:
        assert set(PANOPTIC_KEYS) <= set(hit[region]) and "lesion_dice" in hit[region] and "dice" in hit[region]
    assert hit["ET"]["instance_dice"] == 1.0 and hit["RC"]["instance_dice"] is None
    json.dumps(hit, allow_nan=False)  # what save_results writes
    mean = mean_results({"a": hit, "b": nothing})
    assert mean["ET"]["instance_dice"] == 1.0 and mean["RC"]["global_dice"] is None
    assert mean["ET"]["instance_tp"] == 0.5 and not math.isnan(mean["WT"]["global_hd95"])
