"""The demo's working folder: where every step writes, which steps are done, and what a rerun skips.

A step is done when its record in ``.nnunet-msfen-demo.json`` carries the settings it ran with (``step_keys``)
and its outputs are on disk. A rerun starts at the first step that is not done and runs every step after it;
an interrupted training whose settings are unchanged resumes from its last checkpoint (``--c``). The folder rules
(only our own folder is used or emptied by ``--fresh``) are the pipeline's (``nnunet_msfen.pipeline.workdir``).
"""
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nnunet_msfen.demo.settings import STEPS, DemoSettings
from nnunet_msfen.pipeline.workdir import Workdir, dataset_folder, in_workdir

MARKER = ".nnunet-msfen-demo.json"
DEMO_PLANS = "nnUNetMSFENDemoPlans"
CONFIGURATION = "3d_fullres"
FOLD = 0
NNUNET_PROCESSES = "1"


class DemoWorkdir(Workdir):
    """Paths of one demo run under ``root`` and its step records."""

    marker = MARKER
    made_by = "the demo"

    phantom = in_workdir("phantom", "Training cases in the BraTS 2021 layout.")
    heldout = in_workdir("phantom_heldout", "Held-out cases, same layout.")
    predictions = in_workdir("predictions", "The held-out cases predicted.")
    evaluation = in_workdir("evaluation.json", "Their metrics (a .csv beside it).")
    overlay = in_workdir("overlay.png", "Reference and prediction contours.")

    # --- nnU-Net's folders -------------------------------------------------------------------------------------
    dataset_raw = dataset_folder("raw", "dataset", "The phantom dataset converted (imagesTr/Ts, labelsTr/Ts).")
    dataset_preprocessed = dataset_folder("preprocessed", "dataset", "Its plans and preprocessed data.")

    @property
    def fold_dir(self) -> Path:
        return (self.results / self.settings.dataset / f"{self.settings.trainer}__{DEMO_PLANS}__{CONFIGURATION}"
                / f"fold_{FOLD}")

    def nnunet_variables(self) -> Dict[str, str]:
        """One worker process where nnU-Net spawns 8 by default (each imports torch: on 2 busy cores that costs
        minutes), and unbuffered output (progress shows as it happens)."""
        return {"nnUNet_def_n_proc": NNUNET_PROCESSES, "PYTHONUNBUFFERED": "1"}

    def outputs(self, step: str) -> List[Path]:
        """Files and folders that must exist once ``step`` has finished."""
        if step == "phantom":
            return [self.phantom, self.heldout]
        if step == "convert":
            return [self.dataset_raw / n for n in ("dataset.json", "imagesTr", "labelsTr", "imagesTs", "labelsTs")]
        if step == "plan":
            return [self.dataset_preprocessed / f"{DEMO_PLANS}.json", self.dataset_preprocessed / "splits_final.json"]
        if step == "train":
            return [self.fold_dir / "checkpoint_final.pth"]
        if step == "predict":
            return [self.predictions]
        raise ValueError(f"unknown demo step {step!r}; expected one of {list(STEPS)}")

    def _scratch(self, step: str) -> List[Path]:
        """What to delete before ``step`` runs from scratch."""
        return {"phantom": [self.phantom, self.heldout], "convert": [self.raw], "plan": [self.preprocessed],
                "train": [self.fold_dir], "predict": [self.predictions]}[step]

    # --- records -----------------------------------------------------------------------------------------------
    def new_record(self) -> Dict:
        """No step done yet."""
        return {"steps": {}}

    def load(self) -> Dict:
        """The record; an unreadable one counts as empty (every step runs again)."""
        try:
            return super().load()
        except (OSError, ValueError):
            return self.new_record()

    def record(self, step: str, seconds: float) -> None:
        """Mark ``step`` done under the current settings."""
        self.note("steps", step, {"key": self.settings.step_keys()[step], "seconds": round(seconds, 1)})

    def record_training_started(self) -> None:
        """Note the settings of a training that has started, so that an interrupted one can resume."""
        records = self.load()
        records["train_started"] = self.settings.step_keys()["train"]
        self.save(records)

    def step_seconds(self, step: str) -> Optional[float]:
        """Seconds the recorded run of ``step`` took, if it is recorded."""
        rec = self.noted("steps", step)
        return None if rec is None else rec.get("seconds")

    def is_done(self, step: str) -> bool:
        """Recorded under the current settings, with its outputs on disk."""
        rec = self.noted("steps", step)
        return (rec is not None and rec.get("key") == self.settings.step_keys()[step]
                and all(p.exists() for p in self.outputs(step)))

    def changed_settings(self, step: str) -> Dict[str, Tuple[object, object]]:
        """Settings whose value differs from the one ``step`` was recorded with: ``{name: (then, now)}`` (empty
        when the step was never recorded)."""
        rec = self.noted("steps", step)
        if rec is None:
            return {}
        then, now = rec.get("key", {}), self.settings.step_keys()[step]
        return {k: (then.get(k), v) for k, v in now.items() if then.get(k) != v}

    def steps_to_run(self) -> List[str]:
        """The first step that is not done and every step after it (a stale step invalidates the later ones)."""
        for i, step in enumerate(STEPS):
            if not self.is_done(step):
                return list(STEPS[i:])
        return []

    def can_resume_training(self, todo: List[str]) -> bool:
        """An interrupted training with the current settings, on unchanged data: continue it with ``--c``."""
        return (bool(todo) and todo[0] == "train"
                and self.load().get("train_started") == self.settings.step_keys()["train"]
                and (self.fold_dir / "checkpoint_latest.pth").is_file())

    def clear(self, step: str) -> None:
        """Delete ``step``'s outputs and forget it and every later step."""
        for path in self._scratch(step):
            if path.is_dir():
                shutil.rmtree(path)
        records = self.load()
        for later in STEPS[STEPS.index(step):]:
            records["steps"].pop(later, None)
        if step in ("phantom", "convert", "plan", "train"):
            records.pop("train_started", None)
        self.save(records)
