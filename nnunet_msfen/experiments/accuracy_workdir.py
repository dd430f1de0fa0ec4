"""The working folder of a ``benchmark-accuracy`` run: nnU-Net's three folders, predictions, evaluations, logs,
the report, and a record of the finished steps so that a rerun skips them. The folder is made for one pair of
source folders and refused for others (``nnunet_msfen.pipeline.workdir``).
"""
import shutil
from pathlib import Path
from typing import Dict, List

from nnunet_msfen.experiments.accuracy_settings import FOLD, AccuracySettings
from nnunet_msfen.pipeline.workdir import Workdir, dataset_folder, in_workdir

MARKER = ".nnunet-msfen-accuracy.json"
NNUNET_PROCESSES = "2"


class AccuracyWorkdir(Workdir):
    """Paths under ``root`` and the record of finished steps (``.nnunet-msfen-accuracy.json``)."""

    made_by = "benchmark-accuracy"
    marker = MARKER

    train_raw = dataset_folder("raw", "train_dataset", "The training cases converted (imagesTr, labelsTr).")
    test_raw = dataset_folder("raw", "test_dataset", "The test cases converted (their imagesTr and labelsTr).")
    train_preprocessed = dataset_folder("preprocessed", "train_dataset",
                                        "nnU-Net's plans and preprocessed data of the training dataset.")
    report_json = in_workdir("accuracy.json", "The report's data.")
    report_md = in_workdir("accuracy.md", "The report.")

    def _model(self, trainer: str) -> str:
        """nnU-Net's name of a trained model, ``TRAINER__PLANS__CONFIG``."""
        s = self.settings
        return f"{trainer}__{s.plans}__{s.config}"

    def fold_dir(self, trainer: str) -> Path:
        """nnU-Net's results folder of ``trainer``'s training (fold ``all``)."""
        return self.results / self.settings.train_dataset / self._model(trainer) / f"fold_{FOLD}"

    def predictions(self, trainer: str) -> Path:
        """``trainer``'s predictions of the test cases."""
        return self.root / "predictions" / self._model(trainer)

    def evaluation(self, trainer: str) -> Path:
        """``trainer``'s per-case metrics (``.json``, with a ``.csv`` beside it)."""
        return self.root / "evaluation" / f"{self._model(trainer)}.json"

    def sources(self) -> Dict[str, object]:
        """The source folders and dataset id: a workdir made for others is refused."""
        s = self.settings
        return {"train": str(Path(s.train).resolve()), "test": str(Path(s.test).resolve()),
                "dataset_id": s.dataset_id}

    def folders(self) -> List[Path]:
        """nnU-Net's three folders and the logs."""
        return [self.raw, self.preprocessed, self.results, self.logs]

    def nnunet_variables(self) -> Dict[str, str]:
        """2 worker processes for nnU-Net's pools, the augmentation workers and ``PYTHONHASHSEED`` of the
        settings (the same batches in the same order for every trainer)."""
        return {"nnUNet_def_n_proc": NNUNET_PROCESSES, "nnUNet_n_proc_DA": str(self.settings.da_processes),
                "PYTHONHASHSEED": str(self.settings.seed)}

    def clear_training(self, trainer: str) -> None:
        """Delete a training (and its predictions) that must be redone from scratch."""
        for path in (self.fold_dir(trainer), self.predictions(trainer)):
            if path.is_dir():
                shutil.rmtree(path)
