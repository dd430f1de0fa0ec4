"""The demo's steps. Phantom and conversion run in this process (the package's own API); planning, training
and prediction run nnU-Net's and this package's real commands in subprocesses, their output streamed to the
terminal and to ``workdir/logs/``, with the workdir's nnU-Net folders set for them only.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

from nnunet_msfen.demo.workdir import CONFIGURATION, DEMO_PLANS, FOLD, DemoWorkdir

PHANTOM_LAYOUT = "2021"
DATA_AUGMENTATION_PROCESSES = "1"  # nnU-Net's default is one per core: on 2 cores they starve the training


class StepError(Exception):
    """A step failed; the message names the command and its log."""


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables inside the block only (the in-process steps read ``nnUNet_raw``)."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def script(name: str) -> str:
    """Path of a console script of this environment (``nnUNetv2_train``, ``nnunet-msfen``, ...)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise StepError(f"command {name!r} not found beside {sys.executable} or on PATH: is nnunet-msfen installed "
                        f"in this environment?")
    return found


def run_streamed(cmd: Sequence[str], env: Dict[str, str], log_path: Path) -> None:
    """Run ``cmd``, copying its output byte for byte to stdout (progress bars intact) and to ``log_path``;
    ``StepError`` on a non-zero exit."""
    print("$ " + " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
    with open(log_path, "ab") as log, subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE,
                                                       stderr=subprocess.STDOUT) as proc:
        try:
            while chunk := os.read(proc.stdout.fileno(), 65536):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                log.write(chunk)
        except BaseException:
            proc.terminate()  # Ctrl-C or a broken pipe: no orphaned training
            raise
    if proc.returncode != 0:
        raise StepError(f"{Path(cmd[0]).name} failed with exit code {proc.returncode}; its output is in {log_path}")


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
    path.write_text(json.dumps(plans, indent=2))
    return path


def write_split(wd: DemoWorkdir) -> List[str]:
    """``splits_final.json`` with one fold: the last ``val_cases`` training cases validate. nnU-Net's 5-fold
    split would validate on a fifth of the cases, with test-time mirroring, which costs minutes on a CPU."""
    cases = sorted(p.name[: -len(".nii.gz")] for p in (wd.dataset_raw / "labelsTr").glob("*.nii.gz"))
    n_val = wd.settings.val_cases
    split = [{"train": cases[:-n_val], "val": cases[-n_val:]}]
    (wd.dataset_preprocessed / "splits_final.json").write_text(json.dumps(split, indent=2))
    return split[0]["val"]


def train(wd: DemoWorkdir, resume: bool) -> None:
    """``nnUNetv2_train`` on the CPU for ``minutes`` (``--c`` continues an interrupted run, same budget)."""
    s = wd.settings
    wd.record_training_started()
    cmd = [script("nnUNetv2_train"), str(s.dataset_id), CONFIGURATION, str(FOLD), "-tr", s.trainer, "-p", DEMO_PLANS,
           "-device", "cpu"] + (["--c"] if resume else [])
    run_streamed(cmd, wd.nnunet_env(NNUNET_MSFEN_TRAIN_MINUTES=f"{s.minutes:g}",
                                    nnUNet_n_proc_DA=DATA_AUGMENTATION_PROCESSES), wd.logs / "train.log")
    if not (wd.fold_dir / "checkpoint_final.pth").is_file():
        raise StepError(f"nnUNetv2_train ended without {wd.fold_dir / 'checkpoint_final.pth'}; see {wd.logs}")


def predict(wd: DemoWorkdir) -> None:
    """``nnUNetv2_predict`` on imagesTs with the final checkpoint, into a scratch folder renamed when complete."""
    s = wd.settings
    scratch = wd.root / "predictions.partial"
    if scratch.exists():
        shutil.rmtree(scratch)
    cmd = [script("nnUNetv2_predict"), "-i", str(wd.dataset_raw / "imagesTs"), "-o", str(scratch),
           "-d", str(s.dataset_id), "-c", CONFIGURATION, "-f", str(FOLD), "-tr", s.trainer, "-p", DEMO_PLANS,
           "-chk", "checkpoint_final.pth", "-device", "cpu", "-npp", "1", "-nps", "1"]
    run_streamed(cmd + ([] if s.tta else ["--disable_tta"]), wd.nnunet_env(), wd.logs / "predict.log")
    expected = {p.name for p in (wd.dataset_raw / "labelsTs").glob("*.nii.gz")}
    missing = sorted(expected - {p.name for p in scratch.glob("*.nii.gz")})
    if missing:
        raise StepError(f"nnUNetv2_predict wrote no prediction for {missing}; see {wd.logs / 'predict.log'}")
    os.replace(scratch, wd.predictions)
