"""The demo's steps. Phantom and conversion run in this process (the package's own API); planning, training
and prediction run nnU-Net's and this package's real commands in subprocesses (``nnunet_msfen.pipeline``), their
output streamed to the terminal and to ``workdir/logs/``, with the workdir's nnU-Net folders set for them only.
"""
import json
import os
import shutil
from pathlib import Path
from typing import List

from nnunet_msfen.demo.workdir import CONFIGURATION, DEMO_PLANS, FOLD, DemoWorkdir
from nnunet_msfen.errors import StepError
from nnunet_msfen.io.atomic import write_json, write_text
from nnunet_msfen.pipeline.predict import predict as predict_folder
from nnunet_msfen.pipeline.runner import environment, run_streamed, script

PHANTOM_LAYOUT = "2021"
DATA_AUGMENTATION_PROCESSES = "1"  # nnU-Net's default is one per core: on 2 cores they starve the training


def make_phantoms(wd: DemoWorkdir) -> None:
    """``train_cases + test_cases`` phantoms in the BraTS 2021 layout; the last ``test_cases`` are moved to
    their own release folder, so that they are converted (and later scored) apart from the training cases."""
    from nnunet_msfen.dataset_conversion.phantom import LAYOUTS, generate_phantom_dataset

    s = wd.settings
    cases = generate_phantom_dataset(wd.phantom, s.train_cases + s.test_cases, PHANTOM_LAYOUT, s.shape, s.seed,
                                     progress=True)
    record = json.loads((wd.phantom / "phantom.json").read_text())
    print(f"      anatomy: {record.get('template', 'procedural brain')}", flush=True)
    heldout = wd.heldout / LAYOUTS[PHANTOM_LAYOUT][0]
    heldout.mkdir(parents=True)
    for case in cases[s.train_cases:]:
        os.replace(case, heldout / case.name)


def convert(wd: DemoWorkdir) -> None:
    """convert-brats: training phantoms -> imagesTr/labelsTr; held-out phantoms -> imagesTs/labelsTs."""
    from nnunet_msfen.dataset_conversion.convert_brats import convert_brats

    s = wd.settings
    wd.raw.mkdir(parents=True, exist_ok=True)
    with environment(nnUNet_raw=str(wd.raw)):
        out = convert_brats(wd.phantom, s.dataset_id, s.dataset_name, progress=True)
    scratch = wd.raw / "heldout_conversion"
    scratch.mkdir()
    with environment(nnUNet_raw=str(scratch)):
        tmp = convert_brats(wd.heldout, s.dataset_id, s.dataset_name, progress=True)
    os.replace(tmp / "imagesTr", out / "imagesTs")
    os.replace(tmp / "labelsTr", out / "labelsTs")
    shutil.rmtree(scratch)


def plan(wd: DemoWorkdir) -> None:
    """``nnunet-msfen plan`` (fingerprint, nnUNetPlannerMSFEN, preprocessing), then the demo's smaller plans
    and a split with ``val_cases`` validation cases."""
    run_streamed([script("nnunet-msfen"), "plan", "-d", str(wd.settings.dataset_id), "-c", CONFIGURATION,
                  "-np", "2"], wd.nnunet_env(), wd.logs / "plan.log")
    write_demo_plans(wd)
    write_split(wd)


def write_demo_plans(wd: DemoWorkdir) -> Path:
    """``nnUNetMSFENDemoPlans.json``: the planned ``3d_fullres`` with the demo's patch and network width and
    depth (see settings.py); it reuses the preprocessed data of the planned configuration."""
    s = wd.settings
    plans = json.loads((wd.dataset_preprocessed / "nnUNetMSFENPlans.json").read_text())
    config = plans["configurations"][CONFIGURATION]
    arch = config["architecture"]["arch_kwargs"]
    n = len(s.features_per_stage)
    config["patch_size"] = list(s.patch_size)
    arch.update(n_stages=n, features_per_stage=list(s.features_per_stage), kernel_sizes=[[3, 3, 3]] * n,
                strides=[[1, 1, 1]] + [[2, 2, 2]] * (n - 1), n_conv_per_stage=arch["n_conv_per_stage"][:n],
                n_conv_per_stage_decoder=arch["n_conv_per_stage_decoder"][:n - 1])
    plans.update(plans_name=DEMO_PLANS, configurations={CONFIGURATION: config})
    path = wd.dataset_preprocessed / f"{DEMO_PLANS}.json"
    # as json.dumps, not write_json: nnU-Net's own plans writer lets NaN through, and a copy must not fail on it
    write_text(path, json.dumps(plans, indent=2))
    return path


def write_split(wd: DemoWorkdir) -> List[str]:
    """``splits_final.json`` with two folds of ``val_cases`` validation cases each: fold 0 (the demo's, the last
    cases) and fold 1 (the ones before them), which the printed next steps train. nnU-Net's 5-fold split would
    validate on a fifth of the cases, with test-time mirroring, which costs minutes on a CPU. Returns fold 0's
    validation cases."""
    cases = sorted(p.name[: -len(".nii.gz")] for p in (wd.dataset_raw / "labelsTr").glob("*.nii.gz"))
    n_val = wd.settings.val_cases
    folds = [cases[-n_val:], cases[-2 * n_val:-n_val]]
    split = [{"train": [c for c in cases if c not in val], "val": val} for val in folds]
    write_json(wd.dataset_preprocessed / "splits_final.json", split)
    return split[0]["val"]


def train(wd: DemoWorkdir, resume: bool) -> None:
    """``nnUNetv2_train`` on the CPU for ``iterations`` (``--c`` continues an interrupted run)."""
    s = wd.settings
    wd.record_training_started()
    cmd = [script("nnUNetv2_train"), str(s.dataset_id), CONFIGURATION, str(FOLD), "-tr", s.trainer, "-p", DEMO_PLANS,
           "-device", "cpu"] + (["--c"] if resume else [])
    run_streamed(cmd, wd.nnunet_env(NNUNET_MSFEN_TRAIN_ITERATIONS=str(s.iterations),
                                    nnUNet_n_proc_DA=DATA_AUGMENTATION_PROCESSES), wd.logs / "train.log")
    if not (wd.fold_dir / "checkpoint_final.pth").is_file():
        raise StepError(f"nnUNetv2_train ended without {wd.fold_dir / 'checkpoint_final.pth'}; see {wd.logs}")


def predict(wd: DemoWorkdir) -> None:
    """``nnUNetv2_predict`` on imagesTs with the final checkpoint (``nnunet_msfen.pipeline.predict``)."""
    s = wd.settings
    predict_folder(wd.dataset_raw / "imagesTs", wd.predictions, wd.dataset_raw / "labelsTs",
                   dataset_id=s.dataset_id, configuration=CONFIGURATION, trainer=s.trainer, plans=DEMO_PLANS,
                   folds=[str(FOLD)], env=wd.nnunet_env(), log=wd.logs / "predict.log", device="cpu", tta=s.tta)
