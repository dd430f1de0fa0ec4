"""`nnunet-msfen compare` on hand-made nnU-Net cross-validation folders (16^3 volumes, 2 trainers, 5 folds)
where the difference between the trainers is known by construction, and on plain folders of 24^3 volumes for the
lesion-wise postprocessing and ``--task``."""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_msfen.cli import main
from nnunet_msfen.evaluation.stats import bootstrap_ci, holm, wilcoxon_p

N_CASES, SHAPE = 15, (16, 16, 16)
DATASET = "Dataset777_Phantom"
CHROMIUM = "/usr/bin/chromium"


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(path))


def _reference(i: int) -> np.ndarray:
    """Nested boxes: edema (1) around NCR (2) around ET (3); pairs of cases (2k, 2k+1) share a size."""
    half = 4 + (i // 2) % 3
    c = 8
    ref = np.zeros(SHAPE, np.uint8)
    ref[c - half:c + half, c - half:c + half, c - half:c + half] = 1
    ref[c - half + 1:c + half - 1, c - half + 1:c + half - 1, c - half + 1:c + half - 1] = 2
    ref[c - 2:c + 2, c - 2:c + 2, c - 2:c + 2] = 3
    return ref


def _probabilities(seg: np.ndarray, region_based: bool) -> np.ndarray:
    if region_based:  # sigmoid per region, dataset.json order: whole tumour, tumour core, enhancing tumour
        masks = [np.isin(seg, r) for r in ((1, 2, 3), (2, 3), (3,))]
        return np.stack([np.where(m, 0.85, 0.1) for m in masks]).astype(np.float32)
    onehot = np.stack([seg == k for k in range(4)]).astype(np.float32)
    return (0.9 * onehot + 0.025).astype(np.float32)  # softmax-like, sums to 1 per voxel


def build_cv(root: Path, shifts: dict) -> None:
    """nnU-Net folders for two trainers; ``shifts[trainer][case]`` voxels of shift make the prediction."""
    gt = root / "nnUNet_preprocessed" / DATASET / "gt_segmentations"
    for i in range(N_CASES):
        _write(gt / f"case_{i:03d}.nii.gz", _reference(i))
    for t, (trainer, region_based) in enumerate((("TrainerA", False), ("TrainerB", True))):
        tdir = root / "nnUNet_results" / DATASET / f"{trainer}__nnUNetPlans__3d_fullres"
        tdir.mkdir(parents=True)
        labels = ({"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
                  if region_based else {"background": 0, "edema": 1, "necrosis": 2, "enhancing": 3})
        (tdir / "dataset.json").write_text(json.dumps({"labels": labels}))
        for fold in range(5):
            fdir = tdir / f"fold_{fold}"
            (fdir / "validation").mkdir(parents=True)
            (fdir / f"training_log_2024_1_1_{fold}.txt").write_text(
                "".join(f"2024-01-01 00:00:00: Epoch time: {10.0 + t + 0.5 * e} s\n" for e in range(3)))
            for i in range(fold, N_CASES, 5):
                pred = np.roll(_reference(i), shifts[trainer][i], axis=0)
                _write(fdir / "validation" / f"case_{i:03d}.nii.gz", pred)
                np.savez_compressed(fdir / "validation" / f"case_{i:03d}.npz",
                                    probabilities=_probabilities(pred, region_based))
        import torch
        net = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.BatchNorm3d(2))
        torch.save({"network_weights": net.state_dict(), "trainer_name": trainer}, tdir / "fold_0" / "checkpoint_final.pth")


def _run_compare(root: Path, out: Path) -> int:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            mp.setenv(name, str(root / name))
        return main(["compare", "-d", "777", "-tr", "TrainerA", "TrainerB", "-o", str(out)])


@pytest.fixture(scope="module")
def better(tmp_path_factory):
    """B predicts exactly, A is shifted by 1-2 voxels: B is better on every overlap metric."""
    root = tmp_path_factory.mktemp("better")
    build_cv(root, {"TrainerA": [1 + i % 2 for i in range(N_CASES)], "TrainerB": [0] * N_CASES})
    assert _run_compare(root, root / "out") == 0
    return root / "out"


@pytest.fixture(scope="module")
def equal(tmp_path_factory):
    """Mirrored errors: in case 2k A is shifted by 2 and B by 1, in case 2k+1 (same size) the other way round."""
    root = tmp_path_factory.mktemp("equal")
    a = [2 if i % 2 == 0 else 1 for i in range(N_CASES)]
    b = [1 if i % 2 == 0 else 2 for i in range(N_CASES)]
    a[-1] = b[-1] = 1  # the 15th case has no partner
    build_cv(root, {"TrainerA": a, "TrainerB": b})
    assert _run_compare(root, root / "out") == 0
    return root / "out"


def _row(out: Path, region: str, metric: str) -> dict:
    table = json.loads((out / "compare.json").read_text())["table"]
    return next(r for r in table if r["region"] == region and r["metric"] == metric)


def test_better_model_ci_excludes_zero_and_is_significant(better, equal):
    for region in ("WT", "TC", "ET"):
        row = _row(better, region, "dice")
        assert row["ci_low"] > 0 and row["p_holm"] < 0.05 and row["verdict"] == "TrainerB better"
        hd = _row(better, region, "hd95")
        assert hd["ci_high"] < 0 and hd["verdict"] == "TrainerB better"  # lower HD95 is better
        assert row["p"] < _row(equal, region, "dice")["p"]


def test_equal_models_ci_includes_zero_and_not_significant(equal):
    for region in ("WT", "TC", "ET"):
        row = _row(equal, region, "dice")
        assert row["ci_low"] <= 0 <= row["ci_high"]
        assert abs(row["diff"]) < 1e-12 and row["p"] > 0.5
        assert row["verdict"] == "no significant difference"
    assert json.loads((equal / "compare.json").read_text())["verdict"].startswith("No significant difference")


def test_verdict_holm_and_files(better):
    c = json.loads((better / "compare.json").read_text())
    assert c["verdict"].startswith("TrainerB is significantly better than TrainerA")
    assert c["n_cases"] == N_CASES and c["missing"] == {"TrainerA": [], "TrainerB": []}
    ps = np.array([r["p"] for r in c["table"]])
    adjusted = np.array([r["p_holm"] for r in c["table"]])
    order = np.argsort(ps)
    assert np.all(adjusted >= ps) and np.all(np.diff(adjusted[order]) >= 0)
    # cost: Conv3d(1,2,3) 54+2 weights, BatchNorm3d(2) 2+2 affine + 2+2 running stats; num_batches_tracked skipped
    assert c["cost"]["TrainerA"]["parameters"] == 64
    assert c["cost"]["TrainerB"]["epoch_time_mean_s"] == pytest.approx(11.5)
    assert c["cost"]["TrainerA"]["inference_time_s"] is None
    # no raw images and no loadable nnU-Net model here: the timing is reported as not measured, with the reason
    assert all(t["seconds"] is None and t["why"].startswith("not measured") for t in c["inference"].values())
    # probabilities: A label-based softmax, B region-based sigmoid; B's perfect predictions separate perfectly
    assert c["auc"]["TrainerB"]["ET"] == pytest.approx(1.0)
    assert 0.5 < c["auc"]["TrainerA"]["WT"] < 1.0
    md = (better / "report.md").read_text()
    assert "not measured" in md and "## Postprocessing study" in md and "| model | ET threshold (voxels)" in md
    # both postprocessing studies, per model: the ET rule (WT/TC/ET convention) and the lesion-wise component rules
    assert set(c["postprocessing"]) == set(c["lesion_wise_postprocessing"]) == {"TrainerA", "TrainerB"}
    for tag in ("A", "B"):
        assert (better / f"postprocessing_{tag}.json").is_file()
        assert (better / f"postprocessing_lesion_wise_{tag}.json").is_file()
    assert "## Lesion-wise postprocessing (component rules chosen on each model's predictions)" in md
    for stem in ("box_dice", "box_hd95", "paired_dice", "roc_pr", "overlays"):
        assert (better / "figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{stem}.png" in md


def test_html_report_opens_in_chromium(better, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    page = (better / "report.html").read_text()
    assert "src=\"http" not in page and page.count("data:image/png;base64,") == 5
    probe = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
             "document.title=(i.length&&i.every(x=>x.complete&&x.naturalWidth>0))?'IMAGES_OK':'IMAGES_BAD';});"
             "</script></body>")
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", probe))
    profile = tempfile.mkdtemp(dir=tmp_path)
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
         "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<title>IMAGES_OK</title>" in proc.stdout
    assert not re.search(r"Uncaught|CONSOLE\(\d+\)].*[Ee]rror", proc.stderr), proc.stderr[-2000:]


def test_plain_folder_mode_and_missing_prediction(better, tmp_path):
    root = better.parent
    ref = root / "nnUNet_preprocessed" / DATASET / "gt_segmentations"
    pred_a, pred_b = tmp_path / "a", tmp_path / "b"
    for src, dst in ((root / "nnUNet_results" / DATASET / "TrainerA__nnUNetPlans__3d_fullres", pred_a),
                     (root / "nnUNet_results" / DATASET / "TrainerB__nnUNetPlans__3d_fullres", pred_b)):
        dst.mkdir()
        for f in src.glob("fold_*/validation/*.nii.gz"):
            shutil.copy(f, dst / f.name)
    (pred_a / "case_000.nii.gz").unlink()
    assert main(["compare", "--pred-a", str(pred_a), "--pred-b", str(pred_b), "--ref", str(ref),
                 "-o", str(tmp_path / "out")]) == 0
    c = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert c["missing"]["a"] == ["case_000"] and c["n_cases"] == N_CASES
    assert c["cost"] == {"a": None, "b": None} and c["auc"]["a"] is None
    assert "not available" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["-d", "778", "-tr", "TrainerA", "TrainerB"], "expected one folder"),
    (["-d", "777", "-tr", "TrainerA", "NoSuchTrainer"], "NoSuchTrainer__nnUNetPlans__3d_fullres"),
    (["-d", "777"], "needs both -d DATASET and -tr A B"),
])
def test_bad_arguments_name_the_value(better, tmp_path, capsys, argv, message):
    root = better.parent
    with pytest.MonkeyPatch.context() as mp:
        for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            mp.setenv(name, str(root / name))
        assert main(["compare", *argv, "-o", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_stats_units():
    a = np.linspace(0.5, 0.9, 12)
    mean, low, high = bootstrap_ci(a, a + 0.05)
    assert mean == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)
    assert wilcoxon_p(a, a) == 1.0 and wilcoxon_p(a, a + np.linspace(0.01, 0.1, 12)) < 0.001
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="equal length"):
        bootstrap_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="p-values"):
        holm([0.5, 1.5])


# --- lesion-wise postprocessing and --task, on plain folders of tiny volumes -------------------------------------

SMALL = (24, 24, 24)


def _nested(i: int, labels=(1, 2, 3)) -> np.ndarray:
    """Nested boxes in a 24^3 volume: ``labels`` outermost to innermost; the size varies with ``i``."""
    half, c = 4 + i % 3, 12
    ref = np.zeros(SMALL, np.uint8)
    for shrink, label in zip((0, 1, half - 2), labels):
        ref[c - half + shrink:c + half - shrink, c - half + shrink:c + half - shrink,
            c - half + shrink:c + half - shrink] = label
    return ref


def _folders(root: Path, refs, preds_a, preds_b) -> list:
    """Write ref/, a/ and b/ (case_000 ...) and return the plain-folder arguments of ``compare``."""
    for folder, arrays in (("ref", refs), ("a", preds_a), ("b", preds_b)):
        for i, arr in enumerate(arrays):
            _write(root / folder / f"case_{i:03d}.nii.gz", arr)
    return ["--pred-a", str(root / "a"), "--pred-b", str(root / "b"), "--ref", str(root / "ref")]


def test_lesion_wise_postprocessing_removes_false_positive_specks(tmp_path):
    refs = [_nested(i) for i in range(6)]
    specked = []
    for ref in refs:  # A: the reference plus a 4-voxel oedema speck in a corner, far from the tumour
        pred = ref.copy()
        pred[0:2, 0:2, 0] = 1
        specked.append(pred)
    out = tmp_path / "out"
    assert main(["compare", *_folders(tmp_path, refs, specked, refs), "--names", "specks", "clean",
                 "-o", str(out), "--no-inference-timing"]) == 0
    c = json.loads((out / "compare.json").read_text())
    study = c["lesion_wise_postprocessing"]["specks"]
    assert study["rules"]["WT"] not in (0, "largest") and study["rules"]["WT"] > 4
    assert study["lesion_dice_after"] > study["lesion_dice_before"] + 0.1
    assert study["before"]["WT"]["lesion_dice"] == pytest.approx(0.5) and study["after"]["WT"]["lesion_dice"] == 1.0
    assert c["lesion_wise_postprocessing"]["clean"]["rules"] == {"WT": 0, "TC": 0, "ET": 0}
    for tag, name in (("A", "specks"), ("B", "clean")):
        assert json.loads((out / f"postprocessing_lesion_wise_{tag}.json").read_text())["rules"] == \
            c["lesion_wise_postprocessing"][name]["rules"]
        assert (out / f"postprocessing_{tag}.json").is_file()  # without --task the ET-rule study stays
    md = (out / "report.md").read_text()
    assert "## Lesion-wise postprocessing (component rules chosen on each model's predictions)" in md
    assert f"| specks | WT {study['rules']['WT']}, TC keep all, ET keep all | 0.8333 → 1.0000 |" in md
    assert "Lesion-wise postprocessing: per region" in md and "## Postprocessing study (BraTS ET rule)" in md
    # the stored choice is one `postprocess --from` applies: it removes the specks
    assert main(["postprocess", str(tmp_path / "a"), "-o", str(tmp_path / "pp"),
                 "--from", str(out / "postprocessing_lesion_wise_A.json")]) == 0
    cleaned = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pp" / "case_000.nii.gz")))
    assert np.array_equal(cleaned, refs[0])


def test_compare_with_a_task_scores_the_task_regions(tmp_path):
    from nnunet_msfen.evaluation.scoring import scoring_for

    regions = scoring_for("nnunet", "gli2024").regions  # nnU-Net labels 1 SNFH, 2 NETC, 3 ET, 4 RC
    refs = []
    for i in range(5):
        ref = _nested(i)
        ref[1:5, 1:5, 1:5] = 4  # a resection cavity away from the tumour
        refs.append(ref)
    shifted = [np.roll(r, 1, axis=0) for r in refs]
    out = tmp_path / "out"
    assert main(["compare", "--task", "gli2024", *_folders(tmp_path, refs, shifted, refs), "-o", str(out)]) == 0
    c = json.loads((out / "compare.json").read_text())
    assert {r["region"] for r in c["table"]} == set(regions) and c["regions"] == list(regions)
    assert len(c["table"]) == len(regions) * 6
    assert _row(out, "RC", "dice")["B"]["mean"] == 1.0 and _row(out, "RC", "dice")["A"]["mean"] < 1.0
    assert c["labels"] == "gli2024 (nnU-Net labels)" and c["postprocessing"] is None
    assert set(c["lesion_wise_postprocessing"]["b"]["rules"]) == set(regions)
    assert not (out / "postprocessing_A.json").exists() and (out / "postprocessing_lesion_wise_B.json").is_file()
    md = (out / "report.md").read_text()
    assert "not applicable (the ET rule is defined for the WT/TC/ET conventions)" in md
    assert "labels gli2024 (nnU-Net labels)" in md and "| model | WT AUC | TC AUC | ET AUC | NETC AUC" in md
    assert "ET, RC: 10 mm³" in md


@pytest.mark.parametrize("extra, message", [
    (["--task", "gli2099"], "gli2099"),
    (["--labels", "brats"], "needs --task"),
    (["--labels", "legacy", "--task", "gli2024"], "'legacy'"),
])
def test_bad_task_or_labels_exit_1_and_write_nothing(tmp_path, capsys, extra, message):
    refs = [_nested(0)]
    argv = ["compare", *extra, *_folders(tmp_path, refs, refs, refs), "-o", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
