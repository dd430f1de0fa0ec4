"""The demo's working folder: where every step writes, which steps are done, and what a rerun skips.

A step is done when its record in ``.nnunet-msfen-demo.json`` carries the settings it ran with (``step_keys``)
and its outputs are on disk. A rerun starts at the first step that is not done and runs every step after it;
an interrupted training whose settings are unchanged resumes from its last checkpoint (``--c``). Only a
folder that holds the demo's marker file is ever emptied (``--fresh``): a mistyped ``--workdir`` must never
delete someone's data.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from nnunet_msfen.demo.settings import STEPS, DemoSettings

MARKER = ".nnunet-msfen-demo.json"
DEMO_PLANS = "nnUNetMSFENDemoPlans"
CONFIGURATION = "3d_fullres"
FOLD = 0
NNUNET_PROCESSES = "1"


class WorkdirError(Exception):
    """The workdir cannot be used (not a demo folder, or not writable)."""


class DemoWorkdir:
    """Paths of one demo run under ``root`` and its step records."""

    def __init__(self, root: Path, settings: DemoSettings):
        self.root = Path(root).absolute()
        self.settings = settings
        self.raw = self.root / "nnUNet_raw"
        self.preprocessed = self.root / "nnUNet_preprocessed"
        self.results = self.root / "nnUNet_results"
        self.phantom = self.root / "phantom"  # training cases in the BraTS 2021 layout
        self.heldout = self.root / "phantom_heldout"  # held-out cases, same layout
        self.predictions = self.root / "predictions"
        self.logs = self.root / "logs"
        self.evaluation = self.root / "evaluation.json"
        self.overlay = self.root / "overlay.png"

    # --- nnU-Net's folders -------------------------------------------------------------------------------------
    @property
    def dataset_raw(self) -> Path:
        return self.raw / self.settings.dataset

    @property
    def dataset_preprocessed(self) -> Path:
        return self.preprocessed / self.settings.dataset

    @property
    def fold_dir(self) -> Path:
        return (self.results / self.settings.dataset / f"{self.settings.trainer}__{DEMO_PLANS}__{CONFIGURATION}"
                / f"fold_{FOLD}")

    def nnunet_env(self, **extra: str) -> Dict[str, str]:
        """The environment for nnU-Net subprocesses: ours plus the workdir's three nnU-Net folders, unbuffered
        output (progress shows as it happens) and one worker process where nnU-Net spawns 8 by default (each
        imports torch: on 2 busy cores that costs minutes)."""
        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results), "nnUNet_def_n_proc": NNUNET_PROCESSES,
                "PYTHONUNBUFFERED": "1", **extra}

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
    def prepare(self, fresh: bool = False) -> None:
        """Create the folder (or empty it with ``fresh``); ``WorkdirError`` when it exists and is not ours."""
        marker = self.root / MARKER
        if self.root.exists():
            if not self.root.is_dir():
                raise WorkdirError(f"workdir {self.root} exists and is not a folder")
            if not marker.is_file() and any(self.root.iterdir()):
                raise WorkdirError(f"workdir {self.root} is not empty and was not made by the demo (no {MARKER}); "
                                   f"choose a new or empty folder")
            if fresh and marker.is_file():
                shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if not marker.is_file():
            self._save({"steps": {}})

    def _load(self) -> Dict:
        try:
            return json.loads((self.root / MARKER).read_text())
        except (OSError, ValueError):
            return {"steps": {}}

    def _save(self, records: Dict) -> None:
        tmp = self.root / (MARKER + ".tmp")
        tmp.write_text(json.dumps(records, indent=2))
        os.replace(tmp, self.root / MARKER)

    def record(self, step: str, seconds: float) -> None:
        """Mark ``step`` done under the current settings."""
        records = self._load()
        records["steps"][step] = {"key": self.settings.step_keys()[step], "seconds": round(seconds, 1)}
        self._save(records)

    def record_training_started(self) -> None:
        """Note the settings of a training that has started, so that an interrupted one can resume."""
        records = self._load()
        records["train_started"] = self.settings.step_keys()["train"]
        self._save(records)

    def step_seconds(self, step: str) -> Optional[float]:
        """Seconds the recorded run of ``step`` took, if it is recorded."""
        rec = self._load()["steps"].get(step)
        return None if rec is None else rec.get("seconds")

    def is_done(self, step: str) -> bool:
        """Recorded under the current settings, with its outputs on disk."""
        rec = self._load()["steps"].get(step)
        return (rec is not None and rec.get("key") == self.settings.step_keys()[step]
                and all(p.exists() for p in self.outputs(step)))

    def steps_to_run(self) -> List[str]:
        """The first step that is not done and every step after it (a stale step invalidates the later ones)."""
        for i, step in enumerate(STEPS):
            if not self.is_done(step):
                return list(STEPS[i:])
        return []

    def can_resume_training(self, todo: List[str]) -> bool:
        """An interrupted training with the current settings, on unchanged data: continue it with ``--c``."""
        return (bool(todo) and todo[0] == "train"
                and self._load().get("train_started") == self.settings.step_keys()["train"]
                and (self.fold_dir / "checkpoint_latest.pth").is_file())

    def clear(self, step: str) -> None:
        """Delete ``step``'s outputs and forget it and every later step."""
        for path in self._scratch(step):
            if path.is_dir():
                shutil.rmtree(path)
        records = self._load()
        for later in STEPS[STEPS.index(step):]:
            records["steps"].pop(later, None)
        if step in ("phantom", "convert", "plan", "train"):
            records.pop("train_started", None)
        self._save(records)
