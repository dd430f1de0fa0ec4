"""A pipeline's working folder: nnU-Net's three folders and the logs under one root, the environment of nnU-Net's
subprocesses, and a record of the finished steps in a marker file that also says the folder is ours.

Only a folder that holds the marker (or is empty) is ever used, and only such a folder is ever emptied (``fresh``):
a mistyped ``--workdir`` must never delete or mix with someone's data. A pipeline whose results depend on input
folders names them in ``sources()``; the record keeps them, and the folder is refused for other inputs.
Subclasses add their own paths and steps (``DemoWorkdir``, ``AccuracyWorkdir``).
"""
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from nnunet_msfen.errors import WorkdirError
from nnunet_msfen.io.atomic import write_json


def in_workdir(relative: str, doc: str) -> property:
    """A property: ``root / relative``, a file or folder of the working folder itself."""
    return property(lambda self: self.root / relative, doc=doc)


def dataset_folder(nnunet_folder: str, dataset_setting: str, doc: str) -> property:
    """A property: the dataset named by ``settings.<dataset_setting>`` under one of nnU-Net's folders
    (``raw``, ``preprocessed`` or ``results``) of the working folder."""
    return property(lambda self: getattr(self, nnunet_folder) / getattr(self.settings, dataset_setting), doc=doc)


class Workdir:
    """Paths of one pipeline run under ``root`` and its record (``marker``, JSON).

    Subclasses set ``marker`` (the record's file name) and ``made_by`` (the pipeline, in the refusal message), and
    may override ``new_record``, ``sources``, ``folders`` and ``nnunet_variables``.
    """

    marker: str = ".nnunet-msfen.json"
    made_by: str = "nnunet-msfen"

    def __init__(self, root: Path, settings: object):
        self.root = Path(root).absolute()
        self.settings = settings
        self.raw = self.root / "nnUNet_raw"
        self.preprocessed = self.root / "nnUNet_preprocessed"
        self.results = self.root / "nnUNet_results"
        self.logs = self.root / "logs"

    @property
    def marker_path(self) -> Path:
        return self.root / self.marker

    # --- what subclasses choose ---------------------------------------------------------------------------------
    def new_record(self) -> Dict:
        """The record of a folder that has none yet."""
        return {}

    def sources(self) -> Optional[Dict[str, object]]:
        """The inputs the folder is made for (kept in the record); ``None``: any."""
        return None

    def folders(self) -> List[Path]:
        """Folders ``prepare`` creates."""
        return [self.logs]

    def nnunet_variables(self) -> Dict[str, str]:
        """Variables of nnU-Net's subprocesses besides its three folders (worker processes, seeds, ...)."""
        return {}

    def nnunet_env(self, **extra: str) -> Dict[str, str]:
        """The environment of nnU-Net's subprocesses: ours, the workdir's three nnU-Net folders,
        ``nnunet_variables()`` and ``extra``."""
        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results), **self.nnunet_variables(), **extra}

    # --- the record -----------------------------------------------------------------------------------------------
    def prepare(self, fresh: bool = False) -> None:
        """Create the folder (or empty it with ``fresh``, only when it is ours) and its record; ``WorkdirError``
        when it exists and is not ours, or was made for other ``sources()``."""
        ours = self.marker_path.is_file()
        if self.root.exists():
            if not self.root.is_dir():
                raise WorkdirError(f"workdir {self.root} exists and is not a folder")
            if not ours and any(self.root.iterdir()):
                raise WorkdirError(f"workdir {self.root} is not empty and was not made by {self.made_by} (no "
                                   f"{self.marker}); choose a new or empty folder")
            if fresh and ours:
                shutil.rmtree(self.root)
                ours = False
        record = self.load() if ours else self.new_record()
        sources = self.sources()
        if sources is not None:
            if not ours:
                record["sources"] = sources
            if record.get("sources") != sources:
                raise WorkdirError(f"workdir {self.root} was made for {record.get('sources')}, not {sources}; "
                                   f"use another --workdir")
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in self.folders():
            folder.mkdir(parents=True, exist_ok=True)
        self.save(record)

    def load(self) -> Dict:
        """The record (``OSError``/``ValueError`` when it is missing or unreadable)."""
        return json.loads(self.marker_path.read_text())

    def save(self, record: Dict) -> None:
        """Replace the record atomically: an interrupted run leaves the old record or the new one."""
        write_json(self.marker_path, record)

    def note(self, section: str, name: str, value: object) -> None:
        """Record ``value`` under ``record[section][name]``."""
        record = self.load()
        record.setdefault(section, {})[name] = value
        self.save(record)

    def noted(self, section: str, name: str) -> object:
        """``record[section][name]``, or ``None``."""
        return self.load().get(section, {}).get(name)
