"""The phantom: determinism, label sanity, release layouts the converter accepts."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nnunet_msfen.cli import main
from nnunet_msfen.dataset_conversion.convert_brats import convert_brats
from nnunet_msfen.dataset_conversion.errors import BratsConversionError
from nnunet_msfen.dataset_conversion import mni_template
from nnunet_msfen.dataset_conversion.brain_template import CSF, GM, WM
from nnunet_msfen.dataset_conversion.phantom import (LAYOUTS, ProceduralFallbackWarning, generate_phantom_dataset,
                                                     resolve_anatomy)
from nnunet_msfen.dataset_conversion.phantom_case import generate_phantom_case
from nnunet_msfen.brats_tasks import TASKS

SHAPE = (32, 32, 24)
CONSOLE = Path(sys.executable).parent / "nnunet-msfen"
HAS_TEMPLATE = mni_template.template_folder() is not None
needs_template = pytest.mark.skipif(not HAS_TEMPLATE, reason="nilearn (the MNI152 template) is not installed")
ANATOMIES = [pytest.param("template", marks=needs_template), "procedural"]


@pytest.mark.parametrize("anatomy", ANATOMIES)
def test_same_seed_same_case_other_seed_other_case(anatomy):
    a, b, c = (generate_phantom_case(SHAPE, s, anatomy=anatomy) for s in (3, 3, 4))
    for m in a.images:
        np.testing.assert_array_equal(a.images[m], b.images[m])
        assert a.images[m].dtype == np.int16 and a.images[m].shape == SHAPE[::-1]
    np.testing.assert_array_equal(a.seg, b.seg)
    assert not np.array_equal(a.seg, c.seg)


@pytest.mark.parametrize("anatomy", ANATOMIES)
@pytest.mark.parametrize("seed", range(6))
def test_labels_are_nested_and_inside_the_brain(seed, anatomy):
    case = generate_phantom_case(SHAPE, seed, convention="legacy", anatomy=anatomy)
    seg = case.seg
    assert set(np.unique(seg)) <= {0, 1, 2, 4} and (seg == 2).any()
    core = (seg == 1) | (seg == 4)
    assert core.any()
    assert (seg[ndimage.binary_dilation(core)] > 0).all()  # the core is wrapped in tumour (edema), never bare
    assert (case.images["flair"][seg > 0] > 0).all()  # tumour lies in the brain, background is 0
    if (seg == 4).any():  # necrosis of an enhancing tumour sits inside the enhancing rim, never touching edema
        assert np.isin(seg[ndimage.binary_dilation(seg == 1)], [1, 4]).all()


@pytest.mark.parametrize("anatomy", ANATOMIES)
def test_tumour_is_visible_and_small_lesions_occur(anatomy):
    cnr, small = [], 0
    for seed in range(8):
        case = generate_phantom_case(SHAPE, seed, convention="2023", anatomy=anatomy)
        flair, t1ce, seg = (case.images["flair"].astype(float), case.images["t1ce"].astype(float), case.seg)
        brain = (flair > 0) & (seg == 0)
        cnr.append((flair[seg == 2].mean() - flair[brain].mean()) / flair[brain].std())
        if (seg == 3).any():
            assert t1ce[seg == 3].mean() > 1.3 * t1ce[brain].mean()  # the enhancing rim is bright on T1ce
        lesions, n = ndimage.label(seg > 0)
        small += sum(np.sum(lesions == i) <= 65 for i in range(1, n + 1))  # < 5 mm: within a 2.5 mm-radius ball
    assert min(cnr) > 1.0  # edema clearly brighter than brain on FLAIR
    assert small > 0


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_converter_accepts_every_layout(tmp_path, nnunet_dirs, layout):
    dirs = generate_phantom_dataset(tmp_path / "ph", 2, layout, shape=(20, 20, 16), seed=1)
    assert [d.name for d in dirs] == [d.name for d in sorted(dirs)] and all(d.is_dir() for d in dirs)
    out = convert_brats(tmp_path / "ph", 11, progress=False)
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["numTraining"] == 2 and ds["release"] == layout


def test_cli_writes_deterministic_files_and_refuses_foreign_cases(tmp_path):
    assert main(["phantom", str(tmp_path / "a"), "-n", "2", "--layout", "2020", "--shape", "20", "20", "16"]) == 0
    res = subprocess.run([str(CONSOLE), "phantom", str(tmp_path / "b"), "-n", "2", "--layout", "2020", "--shape",
                          "20", "20", "16"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.nii"))
    assert len(files) == 10
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    with pytest.raises(BratsConversionError, match="other cases"):
        generate_phantom_dataset(tmp_path / "a", 1, "2020", shape=(20, 20, 16))  # 002 would be left over
    assert main(["phantom", str(tmp_path / "c"), "-n", "1", "--shape", "8", "8", "8"]) == 1
    with pytest.raises(ValueError, match="layout"):
        generate_phantom_dataset(tmp_path / "d", 1, "2022")


@needs_template
def test_template_brain_has_real_anatomy_in_a_pose_that_varies_with_the_seed():
    shape = (48, 56, 48)
    first, radius = mni_template.template_brain(shape, np.random.default_rng(0))
    again, _ = mni_template.template_brain(shape, np.random.default_rng(0))
    other, _ = mni_template.template_brain(shape, np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert np.mean((first > 0) != (other > 0)) > 0.02  # another pose: the brain outline moves
    brain = first > 0
    assert 0.1 < brain.mean() < 0.6  # a head in the field of view, not a speck, not the whole grid
    counts = {k: int(np.sum(first == k)) for k in (CSF, GM, WM)}
    assert counts[GM] > counts[WM] > counts[CSF] > 0  # cortex outweighs white matter, as in an adult brain
    # ventricles: CSF deep inside the brain, not only the outer rim
    assert (first[radius < 0.5] == CSF).any()
    assert radius[brain].min() == 0 and (radius[~brain] == 1).all()
    assert not brain[0].any() and not brain[-1].any()  # the brain fits the grid


def test_auto_anatomy_falls_back_with_a_warning_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setattr(mni_template, "template_folder", lambda: None)
    with pytest.warns(ProceduralFallbackWarning, match="pip install"):
        generate_phantom_dataset(tmp_path / "p", 1, shape=(20, 20, 16), anatomy="auto")
    assert json.loads((tmp_path / "p" / "phantom.json").read_text())["anatomy"] == "procedural"
    with pytest.raises(mni_template.TemplateNotFoundError, match="pip install nilearn"):
        resolve_anatomy("template")
    assert main(["phantom", str(tmp_path / "t"), "-n", "1", "--shape", "20", "20", "16", "--anatomy", "template"]) == 1
    assert not (tmp_path / "t").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="'mni'"):
        resolve_anatomy("mni")


@needs_template
def test_template_phantoms_record_the_template(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "p"), "-n", "1", "--shape", "24", "24", "20"]) == 0
    assert "MNI152" in capsys.readouterr().out
    record = json.loads((tmp_path / "p" / "phantom.json").read_text())
    assert record["anatomy"] == "template" and "MNI152" in record["template"]
    assert sorted(record["template_sha256"]) == sorted(mni_template.TEMPLATE_FILES.values())
    assert all(len(h) == 64 for h in record["template_sha256"].values())


@pytest.mark.parametrize("layout,required", [("gli2024", {4}), ("ped", {3, 4}), ("menrt", {1}), ("met", {2, 3})])
def test_task_layouts_carry_their_structures_and_convert_as_their_task(tmp_path, nnunet_dirs, layout, required):
    dirs = generate_phantom_dataset(tmp_path / "ph", 3, layout, shape=(24, 24, 20), seed=2, anatomy="procedural")
    task = TASKS[LAYOUTS[layout].task]
    for d in dirs:  # the task's sequences and label map, nothing else
        assert sorted(p.name for p in d.iterdir()) == sorted(
            f"{d.name}{task.sep}{s}.nii.gz" for s in task.sequences + (task.seg_suffix,))
        seg = sitk.GetArrayFromImage(sitk.ReadImage(str(d / f"{d.name}{task.sep}{task.seg_suffix}.nii.gz")))
        assert required <= set(np.unique(seg).tolist()) <= set(task.allowed_labels())
    out = convert_brats(tmp_path / "ph", 12, progress=False)  # recognised without --task
    assert json.loads((out / "brats_cases.json").read_text())["task"] == task.name
    assert len(list((out / "imagesTr").iterdir())) == 3 * len(task.sequences)


def test_the_tasks_leave_the_older_phantoms_unchanged():
    for seed in range(3):
        old, new = generate_phantom_case(SHAPE, seed, convention="2023"), generate_phantom_case(SHAPE, seed, task="ssa")
        np.testing.assert_array_equal(old.seg, new.seg)
        assert all(np.array_equal(old.images[m], new.images[m]) for m in old.images)
