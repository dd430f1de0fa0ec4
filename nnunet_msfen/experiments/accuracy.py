"""Accuracy at an equal wall-clock budget or an equal number of iterations (``nnunet-msfen benchmark-accuracy``):
the steps and their order.

1. convert-brats: ``--train`` -> ``DatasetIII_AccuracyTrain``, ``--test`` -> ``Dataset(III+1)_AccuracyTest``
   (labels in nnU-Net's convention, so the test labels are scored as converted).
2. ``nnUNetv2_plan_and_preprocess -c CONFIG`` on the training dataset; with ``--batch-size N`` a copy of the plans,
   ``nnUNetPlans_bsN``, that differs only in the configuration's batch size (same preprocessed data).
3. For each trainer: train on fold ``all`` for the budget or the iterations (train_worker.py: seeded, without nnU-Net's
   final validation), then ``nnUNetv2_predict`` the test images with the final checkpoint
   (``nnunet_msfen.pipeline.predict``).
4. Evaluate each trainer's predictions against the test labels; the report (accuracy_report.py).

Every step that is done is skipped on a rerun (conversion case by case; a training whose settings are unchanged
resumes from its last checkpoint with ``--c``); evaluation and report are recomputed (seconds).
"""
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

from nnunet_msfen.errors import StepError
from nnunet_msfen.experiments.accuracy_settings import FOLD, TEST_NAME, TRAIN_NAME, AccuracySettings
from nnunet_msfen.experiments.accuracy_workdir import AccuracyWorkdir
from nnunet_msfen.io.atomic import write_text
from nnunet_msfen.pipeline.predict import predict as predict_folder
from nnunet_msfen.pipeline.runner import environment, run_streamed, script

Say = Callable[[str], None]


def write_batch_size_plans(dataset_preprocessed: Path, config: str, batch_size: int,
                           source_plans: str = "nnUNetPlans") -> str:
    """Write ``nnUNetPlans_bs{batch_size}.json`` beside ``source_plans``: the same plans with ``batch_size`` in
    ``config``. The data identifier is unchanged, so training reads the data preprocessed for the source plans.
    Returns the new plans identifier; ``ValueError`` naming the value for a bad batch size or configuration."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")
    source = Path(dataset_preprocessed) / f"{source_plans}.json"
    if not source.is_file():
        raise ValueError(f"plans file not found: {source} (run nnUNetv2_plan_and_preprocess first)")
    plans = json.loads(source.read_text())
    if config not in plans["configurations"]:
        raise ValueError(f"configuration {config!r} is not in {source}; it has {sorted(plans['configurations'])}")
    identifier = f"{source_plans}_bs{batch_size}"
    plans["plans_name"] = identifier
    plans["configurations"][config]["batch_size"] = batch_size
    # as json.dumps, not write_json: nnU-Net's own plans writer lets NaN through, and a copy must not fail on it
    write_text(source.with_name(f"{identifier}.json"), json.dumps(plans, indent=2))
    return identifier


def convert(wd: AccuracyWorkdir) -> None:
    """Both folders -> nnU-Net raw datasets (convert_brats skips the cases converted before)."""
    from nnunet_msfen.dataset_conversion.convert_brats import convert_brats

    s = wd.settings
    with environment(nnUNet_raw=str(wd.raw)):
        convert_brats(Path(s.train), s.dataset_id, TRAIN_NAME, num_processes=2, progress=True)
        convert_brats(Path(s.test), s.dataset_id + 1, TEST_NAME, num_processes=2, progress=True)


def is_planned(wd: AccuracyWorkdir) -> bool:
    """nnU-Net's plans exist and the configuration's data was preprocessed to the end (recorded)."""
    plans = wd.train_preprocessed / "nnUNetPlans.json"
    return plans.is_file() and wd.noted("planned", wd.settings.config) is True


def plan(wd: AccuracyWorkdir) -> None:
    """``nnUNetv2_plan_and_preprocess`` for the configuration (fingerprint and plans are shared by all)."""
    s = wd.settings
    run_streamed([script("nnUNetv2_plan_and_preprocess"), "-d", str(s.dataset_id), "-c", s.config,
                  "-np", "2", "-npfp", "2"], wd.nnunet_env(), wd.logs / "plan.log")
    wd.note("planned", s.config, True)


def train(wd: AccuracyWorkdir, trainer: str, say: Say) -> None:
    """Train ``trainer`` on fold ``all`` for the budget, resuming an interrupted run of the same settings."""
    s = wd.settings
    fold_dir = wd.fold_dir(trainer)
    key = s.training_key(trainer)
    resume = wd.noted("started", trainer) == key and (fold_dir / "checkpoint_latest.pth").is_file()
    if resume:
        say(f"  resuming {trainer} from {fold_dir / 'checkpoint_latest.pth'} (--c)")
    else:
        wd.clear_training(trainer)
    wd.note("started", trainer, key)
    cmd = [sys.executable, "-m", "nnunet_msfen.experiments.train_worker", str(s.dataset_id), s.config, FOLD, trainer,
           s.plans, s.device, str(s.seed)] + (["--c"] if resume else [])
    run_streamed(cmd, wd.nnunet_env(**s.budget_environment), wd.logs / f"train_{trainer}.log")
    if not (fold_dir / "checkpoint_final.pth").is_file():
        raise StepError(f"training of {trainer} ended without {fold_dir / 'checkpoint_final.pth'}; see {wd.logs}")
    wd.note("trained", trainer, key)


def predict(wd: AccuracyWorkdir, trainer: str) -> None:
    """``nnUNetv2_predict`` the test images with the final checkpoint (``nnunet_msfen.pipeline.predict``)."""
    s = wd.settings
    predict_folder(wd.test_raw / "imagesTr", wd.predictions(trainer), wd.test_raw / "labelsTr",
                   dataset_id=s.dataset_id, configuration=s.config, trainer=trainer, plans=s.plans, folds=[FOLD],
                   env=wd.nnunet_env(), log=wd.logs / f"predict_{trainer}.log", device=s.device, tta=s.tta)
    wd.note("predicted", trainer, s.prediction_key(trainer))


def _timed(header: str, say: Say, step: Callable[[], None]) -> float:
    say(f"{header} ...")
    start = time.monotonic()
    step()
    seconds = time.monotonic() - start
    say(f"{header}: finished in {seconds:.0f} s")
    return seconds


def run_benchmark(settings: AccuracySettings, workdir: Path, say: Say = print) -> List[Dict]:
    """Run (or finish) the benchmark in ``workdir``; returns the report's rows, one per trainer, and writes
    ``accuracy.json`` and ``accuracy.md``. Raises ``StepError`` when a step fails and ``WorkdirError`` when
    the folder cannot be used."""
    from nnunet_msfen.experiments.accuracy_report import evaluate_trainer, write_report

    wd = AccuracyWorkdir(workdir, settings)
    wd.prepare()
    s = settings
    n = 2 + 2 * len(s.nnunet_trainers) + 1
    _timed(f"[1/{n}] convert-brats {s.train} and {s.test}", say, lambda: convert(wd))
    if is_planned(wd):
        say(f"[2/{n}] nnUNetv2_plan_and_preprocess -c {s.config}: done before, reused")
    else:
        _timed(f"[2/{n}] nnUNetv2_plan_and_preprocess -c {s.config}", say, lambda: plan(wd))
    if s.batch_size is not None:
        write_batch_size_plans(wd.train_preprocessed, s.config, s.batch_size)
        say(f"      plans {s.plans}: nnUNetPlans with batch size {s.batch_size} in {s.config}")
    i = 2
    for trainer in s.nnunet_trainers:
        i += 1
        header = f"[{i}/{n}] train {trainer} ({s.config}, {s.budget}, seed {s.seed}, {s.device})"
        if wd.noted("trained", trainer) == s.training_key(trainer) and (wd.fold_dir(trainer) / "checkpoint_final.pth").is_file():
            say(f"{header}: done before, reused")
        else:
            _timed(header, say, lambda: train(wd, trainer, say))
        i += 1
        header = f"[{i}/{n}] predict the test cases with {trainer} ({'with' if s.tta else 'without'} mirroring)"
        if wd.noted("predicted", trainer) == s.prediction_key(trainer) and wd.predictions(trainer).is_dir():
            say(f"{header}: done before, reused")
        else:
            _timed(header, say, lambda: predict(wd, trainer))
    rows: List[Dict] = []

    def evaluate_all() -> None:
        for trainer in s.nnunet_trainers:
            rows.append(evaluate_trainer(wd, trainer))
        write_report(wd, rows)

    _timed(f"[{n}/{n}] evaluate and write {wd.report_json.name}, {wd.report_md.name}", say, evaluate_all)
    return rows
