"""What decides a ``benchmark-accuracy`` run (``AccuracySettings``) and the working folder it writes
(``AccuracyWorkdir``): nnU-Net's three folders, predictions, logs, the report, and a record of the finished
steps so that a rerun skips them.
"""
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

CONFIGURATIONS = ("2d", "3d_fullres")
# -tr takes the base trainers' names; they train under the time budget (or for --iterations) through these variants
TRAINER_ALIASES = {"nnUNetTrainer": "nnUNetTrainer_TimeBudget", "nnUNetTrainerMSFEN": "nnUNetTrainerMSFEN_TimeBudget"}
ITERATION_ALIASES = {"nnUNetTrainer": "nnUNetTrainer_Iterations", "nnUNetTrainerMSFEN": "nnUNetTrainerMSFEN_Iterations",
                     "nnUNetTrainerMSFEN_v1": "nnUNetTrainerMSFEN_v1_Iterations"}
DEFAULT_TRAINERS = ("nnUNetTrainer", "nnUNetTrainerMSFEN")
DEVICES = ("cpu", "cuda")
FOLD = "all"  # every training case trains; the test folder is the only held-out data
MARKER = ".nnunet-msfen-accuracy.json"
TRAIN_NAME, TEST_NAME = "AccuracyTrain", "AccuracyTest"


class WorkdirError(Exception):
    """The workdir cannot be used: not ours, or made for other source folders."""


@dataclass(frozen=True)
class AccuracySettings:
    """One benchmark run; ``ValueError`` naming the value when one is invalid.

    Args:
        train: BraTS-layout folder of the training cases (any layout ``convert-brats`` reads).
        test: BraTS-layout folder of the test cases, with their segmentations.
        config: nnU-Net configuration, ``2d`` or ``3d_fullres``.
        minutes: training budget per trainer (``NNUNET_MSFEN_TRAIN_MINUTES`` of the time-budget trainers).
        iterations: if set, train exactly this many iterations instead of for ``minutes``
            (``NNUNET_MSFEN_TRAIN_ITERATIONS`` of the fixed-iteration trainers).
        trainers: names given to ``-tr``; ``nnUNetTrainer`` and ``nnUNetTrainerMSFEN`` (and ``nnUNetTrainerMSFEN_v1``
            with ``iterations``) become their ``_TimeBudget`` (``_Iterations``) variants, any other name is passed to
            nnU-Net unchanged.
        batch_size: if set, a copy of the plans with this batch size in ``config`` (``nnUNetPlans_bsN``).
        seed: seed of every training (network initialisation, patch sampling, augmentation).
        device: ``cpu`` or ``cuda``.
        tta: predict with nnU-Net's test-time mirroring.
        dataset_id: nnU-Net id of the training dataset; the test dataset gets ``dataset_id + 1``.
        da_processes: nnU-Net's augmentation workers (``nnUNet_n_proc_DA``); with 1, both trainers see the
            same batches in the same order.
    """

    train: Path
    test: Path
    config: str = "3d_fullres"
    minutes: float = 30.0
    iterations: Optional[int] = None
    trainers: Tuple[str, ...] = DEFAULT_TRAINERS
    batch_size: Optional[int] = None
    seed: int = 0
    device: str = "cpu"
    tta: bool = True
    dataset_id: int = 901
    da_processes: int = 1

    def __post_init__(self):
        for what, folder in (("--train", self.train), ("--test", self.test)):
            if not Path(folder).is_dir():
                raise ValueError(f"{what} folder not found: {folder}")
        if Path(self.train).resolve() == Path(self.test).resolve():
            raise ValueError(f"--train and --test are the same folder ({self.train}): the test cases must be held out")
        if self.config not in CONFIGURATIONS:
            raise ValueError(f"config must be one of {list(CONFIGURATIONS)}, got {self.config!r}")
        if not (isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes!r}")
        if self.iterations is not None and (not isinstance(self.iterations, int) or self.iterations < 1):
            raise ValueError(f"iterations must be a positive integer, got {self.iterations!r}")
        if not self.trainers:
            raise ValueError("give at least one trainer")
        for name in self.trainers:
            if not name.isidentifier():
                raise ValueError(f"trainer must be a class name, got {name!r}")
        mapped = self.nnunet_trainers
        if len(set(mapped)) != len(mapped):
            raise ValueError(f"trainers {list(self.trainers)} name the same nnU-Net trainer twice ({list(mapped)})")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if not isinstance(self.dataset_id, int) or not 1 <= self.dataset_id <= 998:
            raise ValueError(f"dataset id must be from 1 to 998 (the test set takes the next id), got {self.dataset_id!r}")
        if not isinstance(self.da_processes, int) or self.da_processes < 0:
            raise ValueError(f"augmentation processes must be an integer >= 0, got {self.da_processes!r}")

    @property
    def nnunet_trainers(self) -> Tuple[str, ...]:
        """The trainer classes nnU-Net runs, in the order given."""
        aliases = TRAINER_ALIASES if self.iterations is None else ITERATION_ALIASES
        return tuple(aliases.get(t, t) for t in self.trainers)

    @property
    def budget(self) -> str:
        """What each trainer trains for, in words."""
        return f"{self.minutes:g} min" if self.iterations is None else f"{self.iterations} iterations"

    @property
    def budget_environment(self) -> Dict[str, str]:
        """The variable the time-budget or fixed-iteration trainers read."""
        if self.iterations is None:
            return {"NNUNET_MSFEN_TRAIN_MINUTES": f"{self.minutes:g}"}
        return {"NNUNET_MSFEN_TRAIN_ITERATIONS": str(self.iterations)}

    @property
    def plans(self) -> str:
        """Plans identifier: nnU-Net's, or the copy with the changed batch size."""
        return "nnUNetPlans" if self.batch_size is None else f"nnUNetPlans_bs{self.batch_size}"

    @property
    def train_dataset(self) -> str:
        return f"Dataset{self.dataset_id:03d}_{TRAIN_NAME}"

    @property
    def test_dataset(self) -> str:
        return f"Dataset{self.dataset_id + 1:03d}_{TEST_NAME}"

    def training_key(self, trainer: str) -> Dict[str, object]:
        """Everything a training's result depends on; a training recorded under another key is redone."""
        key = {"trainer": trainer, "config": self.config, "plans": self.plans, "minutes": self.minutes,
               "seed": self.seed, "device": self.device, "da_processes": self.da_processes}
        if self.iterations is not None:  # absent otherwise, so that records of earlier time-budget runs still match
            key.update(minutes=None, iterations=self.iterations)
        return key

    def prediction_key(self, trainer: str) -> Dict[str, object]:
        return {**self.training_key(trainer), "tta": self.tta}


class AccuracyWorkdir:
    """Paths under ``root`` and the record of finished steps (``.nnunet-msfen-accuracy.json``)."""

    def __init__(self, root: Path, settings: AccuracySettings):
        self.root = Path(root).absolute()
        self.settings = settings
        self.raw = self.root / "nnUNet_raw"
        self.preprocessed = self.root / "nnUNet_preprocessed"
        self.results = self.root / "nnUNet_results"
        self.logs = self.root / "logs"
        self.report_json = self.root / "accuracy.json"
        self.report_md = self.root / "accuracy.md"

    @property
    def train_raw(self) -> Path:
        return self.raw / self.settings.train_dataset

    @property
    def test_raw(self) -> Path:
        return self.raw / self.settings.test_dataset

    @property
    def train_preprocessed(self) -> Path:
        return self.preprocessed / self.settings.train_dataset

    def fold_dir(self, trainer: str) -> Path:
        s = self.settings
        return self.results / s.train_dataset / f"{trainer}__{s.plans}__{s.config}" / f"fold_{FOLD}"

    def predictions(self, trainer: str) -> Path:
        s = self.settings
        return self.root / "predictions" / f"{trainer}__{s.plans}__{s.config}"

    def evaluation(self, trainer: str) -> Path:
        s = self.settings
        return self.root / "evaluation" / f"{trainer}__{s.plans}__{s.config}.json"

    def nnunet_env(self, **extra: str) -> Dict[str, str]:
        """Environment of nnU-Net's subprocesses: the workdir's folders, 2 worker processes for nnU-Net's pools,
        the augmentation workers and ``PYTHONHASHSEED`` of the settings."""
        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results), "nnUNet_def_n_proc": "2",
                "nnUNet_n_proc_DA": str(self.settings.da_processes), "PYTHONHASHSEED": str(self.settings.seed),
                **extra}

    # --- record ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the folder; ``WorkdirError`` when it holds someone else's files or other sources."""
        marker = self.root / MARKER
        if self.root.exists() and not self.root.is_dir():
            raise WorkdirError(f"workdir {self.root} exists and is not a folder")
        if self.root.is_dir() and not marker.is_file() and any(self.root.iterdir()):
            raise WorkdirError(f"workdir {self.root} is not empty and was not made by benchmark-accuracy (no "
                               f"{MARKER}); choose a new or empty folder")
        sources = {"train": str(Path(self.settings.train).resolve()), "test": str(Path(self.settings.test).resolve()),
                   "dataset_id": self.settings.dataset_id}
        record = self.load() if marker.is_file() else {"sources": sources}
        if record.get("sources") != sources:
            raise WorkdirError(f"workdir {self.root} was made for {record.get('sources')}, not {sources}; "
                               f"use another --workdir")
        for d in (self.raw, self.preprocessed, self.results, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.save(record)

    def load(self) -> Dict:
        return json.loads((self.root / MARKER).read_text())

    def save(self, record: Dict) -> None:
        tmp = self.root / (MARKER + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.root / MARKER)

    def note(self, section: str, name: str, value: object) -> None:
        """Record ``value`` under ``record[section][name]``."""
        record = self.load()
        record.setdefault(section, {})[name] = value
        self.save(record)

    def noted(self, section: str, name: str) -> object:
        return self.load().get(section, {}).get(name)

    def clear_training(self, trainer: str) -> None:
        """Delete a training (and its predictions) that must be redone from scratch."""
        for path in (self.fold_dir(trainer), self.predictions(trainer)):
            if path.is_dir():
                shutil.rmtree(path)
