"""The prediction step of every pipeline: ``nnUNetv2_predict`` of an images folder into a scratch folder that is
renamed into place only when every expected case is there, so a folder under the final name is always complete
(an interrupted or failed prediction leaves ``<output>.partial``, which the next run deletes).
"""
import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

from nnunet_msfen.errors import StepError
from nnunet_msfen.pipeline.runner import run_streamed, script

DEVICES = ("cpu", "cuda", "mps")  # nnUNetv2_predict -device
SEG_GLOB = "*.nii.gz"


def predict(images: Path, output: Path, labels: Path, *, dataset_id: int, configuration: str, trainer: str,
            plans: str, folds: Sequence[str], env: Mapping[str, str], log: Path,
            checkpoint: str = "checkpoint_final.pth", device: str = "cpu", tta: bool = True) -> Path:
    """Predict ``images`` into ``output``; returns ``output``.

    Args:
        images: nnU-Net images folder (``imagesTs``, or the test set's ``imagesTr``).
        output: the predictions folder; replaced when the prediction is complete.
        labels: reference labels: one prediction per ``*.nii.gz`` there is expected.
        dataset_id, configuration, trainer, plans, folds, checkpoint: the model (``-d -c -tr -p -f -chk``).
        env: the environment of ``nnUNetv2_predict`` (the workdir's nnU-Net folders).
        log: file its output is appended to.
        device: ``cpu``, ``cuda`` or ``mps``.
        tta: test-time mirroring (without it ``--disable_tta``).

    Raises:
        ValueError: no folds, or an unknown device.
        StepError: the command failed, or wrote no prediction for some case.
    """
    if not folds:
        raise ValueError(f"give at least one fold to predict with, got {list(folds)!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {list(DEVICES)}, got {device!r}")
    output = Path(output)
    scratch = output.with_name(output.name + ".partial")
    if scratch.exists():
        shutil.rmtree(scratch)  # left by an interrupted run
    scratch.parent.mkdir(parents=True, exist_ok=True)
    cmd = [script("nnUNetv2_predict"), "-i", str(images), "-o", str(scratch), "-d", str(dataset_id),
           "-c", configuration, "-f", *map(str, folds), "-tr", trainer, "-p", plans, "-chk", checkpoint,
           "-device", device, "-npp", "1", "-nps", "1"]
    run_streamed(cmd + ([] if tta else ["--disable_tta"]), dict(env), log)
    expected = {p.name for p in Path(labels).glob(SEG_GLOB)}
    missing = sorted(expected - {p.name for p in scratch.glob(SEG_GLOB)})
    if missing:
        raise StepError(f"nnUNetv2_predict wrote no prediction for {missing}; see {log}")
    if output.exists():
        shutil.rmtree(output)
    os.replace(scratch, output)
    return output
