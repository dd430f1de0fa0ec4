"""The BraTS task table, and convert-brats on a miniature release of every task beside GLI 2023 and the legacy years
(those are covered by test_convert_brats.py): names, channels, labels, dataset.json regions, task recognition."""
import json
import re

import numpy as np
import pytest

from brats_fixtures import all_files, make_release, read, tree_hash, write_nifti

from nnunet_msfen.cli import main  # noqa: E402
from nnunet_msfen.dataset_conversion import convert_brats as cb  # noqa: E402
from nnunet_msfen.dataset_conversion.brats_layouts import RELEASES  # noqa: E402
from nnunet_msfen.dataset_conversion.errors import (AmbiguousTaskError, BadCasesError,  # noqa: E402
                                                    BratsConversionError, LayoutError)
from nnunet_msfen.brats_tasks import TASKS, dataset_json_labels, is_region_based, regions_class_order  # noqa: E402

GLI_JSON = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
FOUR = {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
TO_2023 = {0: 0, 1: 2, 2: 1, 3: 3}
# task -> (BraTS label -> nnU-Net label, dataset.json labels, regions_class_order, channel names), written out by
# hand from the task table of the brief so that the test does not repeat the implementation
EXPECTED = {
    "gli2024": ({**TO_2023, 4: 4}, {**GLI_JSON, "resection cavity": [4]}, [1, 2, 3, 4], FOUR),
    "ssa": (TO_2023, GLI_JSON, [1, 2, 3], FOUR),
    "men": (TO_2023, GLI_JSON, [1, 2, 3], FOUR),
    "met": (TO_2023, GLI_JSON, [1, 2, 3], FOUR),
    "ped2023": (TO_2023, GLI_JSON, [1, 2, 3], FOUR),
    "ped": ({0: 0, 1: 4, 2: 2, 3: 3, 4: 1},
            {"background": 0, "whole tumor": [1, 2, 3, 4], "tumor core": [2, 3, 4], "cyst": [3],
             "enhancing tumor": [4]}, [1, 2, 3, 4], FOUR),
    "menrt": ({0: 0, 1: 1}, {"background": 0, "gross tumor volume": 1}, None, {"0": "T1ce"}),
}
DEFAULT_NAMES = {"gli2024": "BraTS_GLI2024", "ssa": "BraTS_SSA", "men": "BraTS_MEN", "met": "BraTS_MET",
                 "ped": "BraTS_PED", "ped2023": "BraTS_PED2023", "menrt": "BraTS_MENRT"}


def convert(src, dataset_id=1, **kw):
    return cb.convert_brats(src, dataset_id, progress=False, **kw)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_table_is_consistent(name):
    task = TASKS[name]
    assert re.fullmatch(task.case_pattern, task.example) and len(task.sequences) == len(task.channels)
    values = np.array(task.allowed_labels(), np.uint8)
    np.testing.assert_array_equal(task.from_nnunet_labels(task.to_nnunet_labels(values)), values)
    back = {v: k for k, v in task.to_nnunet.items()}
    for region, labels in task.train_regions.items():  # what nnU-Net trains is what the challenge reports
        assert sorted(back[v] for v in labels) == sorted(task.regions[region]), region
    assert sorted(task.to_nnunet.values()) == list(range(len(task.to_nnunet)))  # nnU-Net wants 0..n
    for release in RELEASES.values():  # a release carries only tasks of its naming
        if name in release.tasks and name != "legacy":
            assert (release.case_pattern, release.sep, release.modality_suffixes, release.seg_suffix) == (
                task.case_pattern, task.sep, task.sequences, task.seg_suffix)
    for case_id in ("Brats18_PHA_001_1", "BraTS19_2013_1_1", "BraTS20_Training_355", "BraTS2021_00001"):
        assert re.fullmatch(TASKS["legacy"].case_pattern, case_id)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_nnunet_export_recovers_every_label(name):
    """nnU-Net's own LabelManager turns the task's regions back into labels: every BraTS label survives."""
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    task = TASKS[name]
    order = regions_class_order(task) if is_region_based(task) else None
    manager = LabelManager(dataset_json_labels(task), order)
    assert manager.has_regions == is_region_based(task)
    brats = np.array(task.allowed_labels(), np.uint8).reshape(1, 1, -1)
    seg = task.to_nnunet_labels(brats)
    if manager.has_regions:  # the training target: one channel per region, as nnU-Net builds it
        targets = np.stack([np.isin(seg, r) for r in manager.foreground_regions]).astype(np.float32)
    else:
        targets = np.stack([seg == v for v in manager.all_labels]).astype(np.float32)
    predicted = manager.convert_probabilities_to_segmentation(targets)
    np.testing.assert_array_equal(task.from_nnunet_labels(np.asarray(predicted)), brats)


def test_a_region_order_that_loses_a_label_is_refused():
    from dataclasses import replace

    bad = replace(TASKS["ped"], train_regions={"WT": (1, 2, 3, 4), "TC": (2, 3, 4), "ET": (4,)})  # no CC region
    with pytest.raises(ValueError, match="TC"):
        regions_class_order(bad)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_task_converts(tmp_path, nnunet_dirs, name):
    src, cases = make_release(tmp_path / "src", name, n=2)
    before = tree_hash(src)
    out = convert(src, 7, task="ped2023" if name == "ped2023" else None)  # PED 2023 needs --task: see below
    assert tree_hash(src) == before
    assert out.name == f"Dataset007_{DEFAULT_NAMES[name]}"
    mapping, labels, order, channels = EXPECTED[name]
    for case_id, case in cases.items():
        for c in range(len(channels)):
            np.testing.assert_array_equal(read(out / "imagesTr" / f"{case_id}_{c:04d}.nii.gz"), case["images"][c])
        assert not (out / "imagesTr" / f"{case_id}_{len(channels):04d}.nii.gz").exists()
        label = read(out / "labelsTr" / f"{case_id}.nii.gz")
        np.testing.assert_array_equal(label, np.vectorize(mapping.get)(case["seg"]))
        assert label.dtype == np.uint8
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["labels"] == labels and ds.get("regions_class_order") == order
    assert ds["channel_names"] == channels and ds["numTraining"] == 2 and ds["release"] == name
    record = json.loads((out / "brats_cases.json").read_text())
    assert record["task"] == name and {v["brats_id"] for v in record["cases"].values()} == set(cases)


def test_gli_release_with_2024_names_but_no_cavity_needs_task(tmp_path, nnunet_dirs, capsys):
    src, cases = make_release(tmp_path / "src", "gli2024", n=2, labels=(0, 1, 2, 3))
    with pytest.raises(AmbiguousTaskError, match="--task gli2024.*--task gli2023"):
        convert(src)
    assert all_files(nnunet_dirs["nnUNet_raw"]) == []
    assert main(["convert-brats", str(src), "-d", "3"]) == 1
    assert "--task gli2024" in capsys.readouterr().err
    assert main(["convert-brats", str(src), "-d", "3", "--task", "gli2024"]) == 0
    out = nnunet_dirs["nnUNet_raw"] / "Dataset003_BraTS_GLI2024"
    assert json.loads((out / "dataset.json").read_text())["labels"]["resection cavity"] == [4]
    convert(src, 3)  # a rerun continues the recorded task: no --task needed
    with pytest.raises(BratsConversionError, match="gli2024.*--overwrite"):
        convert(src, 3, name="BraTS_GLI2024", task="gli2023")
    assert json.loads((convert(src, 4, task="gli2023") / "dataset.json").read_text())["labels"] == GLI_JSON


def test_label_4_in_a_2023_release_is_a_bad_case_naming_the_2024_task(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2023", n=2)
    seg = cases["BraTS-GLI-00002-000"]["seg"].copy()
    seg[0, 0, 0] = 4
    write_nifti(cases["BraTS-GLI-00002-000"]["paths"]["seg"], seg)
    with pytest.raises(BadCasesError, match="BraTS-GLI-00002-000.*resection cavity.*--task gli2024"):
        convert(src)
    out = convert(src, 2, task="gli2024")
    np.testing.assert_array_equal(read(out / "labelsTr" / "BraTS-GLI-00002-000.nii.gz")[0, 0, 0], 4)


def test_ped_release_without_label_4_needs_task(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "ped2023", n=1)
    with pytest.raises(AmbiguousTaskError, match="--task ped .*--task ped2023"):
        convert(src)
    unlabeled, _ = make_release(tmp_path / "val", "ped", n=1, labeled=False)
    with pytest.raises(AmbiguousTaskError, match="without segmentations"):
        convert(unlabeled)
    out = convert(unlabeled, 5, task="ped")
    assert all_files(out / "imagesTs") == [f"BraTS-PED-00001-000_{c:04d}.nii.gz" for c in range(4)]


def test_task_must_fit_the_names(tmp_path, nnunet_dirs):
    src, _ = make_release(tmp_path / "src", "2023", n=1)
    with pytest.raises(LayoutError, match="--task ped .*BraTS-PED-00000-000.*BraTS-GLI-00001-000"):
        convert(src, task="ped")
    with pytest.raises(ValueError, match="'gli2022'"):
        convert(src, task="gli2022")
    assert all_files(nnunet_dirs["nnUNet_raw"]) == []


def test_a_record_written_before_the_tasks_existed_is_continued(tmp_path, nnunet_dirs):
    src, cases = make_release(tmp_path / "src", "2023", n=2)
    out = convert(src)
    record = json.loads((out / "brats_cases.json").read_text())
    del record["task"]  # as convert-brats wrote it before
    (out / "brats_cases.json").write_text(json.dumps(record))
    written = {p: p.stat().st_mtime_ns for p in (out / "imagesTr").iterdir()}
    convert(src)
    assert {p: p.stat().st_mtime_ns for p in (out / "imagesTr").iterdir()} == written
    assert json.loads((out / "brats_cases.json").read_text())["task"] == "gli2023"
