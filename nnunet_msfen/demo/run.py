"""The demo from start to end: the steps that are not done yet (workdir.py), then the scores, the table and the
overlay, which are recomputed on every run (seconds)."""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

from nnunet_msfen.demo import steps
from nnunet_msfen.demo.settings import STEPS, DemoSettings
from nnunet_msfen.demo.workdir import DemoWorkdir
from nnunet_msfen.labels import REGIONS

TITLES = {"phantom": "generate phantom cases", "convert": "convert-brats (imagesTr/labelsTr, imagesTs/labelsTs)",
          "plan": "plan and preprocess (nnunet-msfen plan, 3d_fullres)", "train": "train on the CPU (nnUNetv2_train)",
          "predict": "predict the held-out cases (nnUNetv2_predict)"}


@dataclass
class DemoResult:
    """What a demo run produced: the model's and the baselines' mean metrics, the Dice margins, the files."""

    mean: Dict
    baselines: Dict[str, Dict]
    margins: Dict[str, float]
    table: str
    evaluation: Path
    overlay: Path
    seconds: Dict[str, float]


def run_demo(settings: DemoSettings, workdir: Path, fresh: bool = False,
             say: Callable[[str], None] = print) -> DemoResult:
    """Run (or finish) the demo in ``workdir``; returns the scores. Raises ``nnunet_msfen.errors.StepError`` when
    a step fails and ``nnunet_msfen.errors.WorkdirError`` when the folder cannot be used."""
    wd = DemoWorkdir(workdir, settings)
    wd.prepare(fresh=fresh)
    todo = wd.steps_to_run()
    resume = wd.can_resume_training(todo)
    changed = wd.changed_settings(todo[0]) if todo else {}
    if changed:  # a finished result is about to be replaced: say so, and why
        what = ", ".join(f"{k} {then} -> {now}" for k, (then, now) in changed.items())
        say(f"settings changed since the last run ({what}): redoing {', '.join(todo)}; the earlier results of "
            f"these steps in {wd.root} are replaced (use another --workdir to keep them)")
    seconds: Dict[str, float] = {}
    for i, step in enumerate(STEPS, 1):
        header = f"[{i}/{len(STEPS) + 1}] {TITLES[step]}"
        if step not in todo:
            say(f"{header}: done before in {wd.step_seconds(step)} s, reused")
            continue
        if step == "train" and resume:
            say(f"{header}: resuming the interrupted training from its last checkpoint (--c)")
        else:
            wd.clear(step)
            say(f"{header} ...")
        start = time.monotonic()
        _run_step(step, wd, resume)
        seconds[step] = time.monotonic() - start
        wd.record(step, seconds[step])
        say(f"{header}: finished in {seconds[step]:.0f} s")
    say(f"[{len(STEPS) + 1}/{len(STEPS) + 1}] evaluate the held-out cases and draw the overlay ...")
    start = time.monotonic()
    result = score(wd, seconds)
    say(f"[{len(STEPS) + 1}/{len(STEPS) + 1}] finished in {time.monotonic() - start:.0f} s")
    return result


def _run_step(step: str, wd: DemoWorkdir, resume: bool) -> None:
    if step == "phantom":
        steps.make_phantoms(wd)
    elif step == "convert":
        steps.convert(wd)
    elif step == "plan":
        steps.plan(wd)
    elif step == "train":
        steps.train(wd, resume)
    elif step == "predict":
        steps.predict(wd)


def score(wd: DemoWorkdir, seconds: Dict[str, float]) -> DemoResult:
    """Evaluate the predictions (``evaluation.json``/``.csv``), score the baselines, write the overlay."""
    from nnunet_msfen.demo.overlay import OverlayCase, write_overlay
    from nnunet_msfen.demo.report import (format_table, load_case, margins_over_trivial, trivial_baselines)
    from nnunet_msfen.evaluation.evaluate import evaluate_folders, save_results

    images, labels = wd.dataset_raw / "imagesTs", wd.dataset_raw / "labelsTs"
    results = evaluate_folders(str(wd.predictions), str(labels))
    save_results(results, str(wd.evaluation))
    case_ids: List[str] = sorted(results["per_case"])
    baselines = trivial_baselines(case_ids, images, labels)
    model_name = f"MSFEN ({wd.settings.trainer.replace('nnUNetTrainer', '')})"
    table = format_table({model_name: results["mean"], **{f"{k} (trivial)": v for k, v in baselines.items()}})
    cases = []
    for case_id in case_ids:
        image, reference, prediction, _ = load_case(case_id, images, labels, wd.predictions)
        dice = {r: results["per_case"][case_id][r]["dice"] for r in REGIONS}
        cases.append(OverlayCase(case_id, image, reference, prediction, dice))
    write_overlay(cases, wd.overlay)
    return DemoResult(results["mean"], baselines, margins_over_trivial(results["mean"], baselines), table,
                      wd.evaluation, wd.overlay, seconds)
