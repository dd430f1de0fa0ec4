"""Running the steps of a pipeline in subprocesses: the console scripts of this environment, their output streamed
to the terminal and to a log, and environment variables set for in-process steps only.

A failing command raises ``nnunet_msfen.errors.StepError`` naming the command and its log.
"""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Sequence

from nnunet_msfen.errors import StepError


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
