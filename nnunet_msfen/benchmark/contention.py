"""Busy processes beside a timing: the step time a user sees while something else runs on the machine.

nnU-Net trains with background augmentation workers, and a workstation runs other jobs; on a small CPU they take
cores from the training's threads. A network of many small operations suffers more from that than one of a few
large ones: every operation ends in a barrier that waits for the thread the scheduler preempted. ``busy_processes(n)``
starts ``n`` single-threaded Python processes that spin (each keeps one core busy, like an augmentation worker)
and stops them on exit.
"""
import contextlib
import subprocess
import sys
import time
from typing import Iterator, List

_SPIN = "import os, signal\nsignal.signal(signal.SIGTERM, lambda *_: os._exit(0))\nwhile True:\n    pass\n"


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[List[subprocess.Popen]]:
    """Run the body while ``n`` processes each keep one core busy (none for ``n == 0``); yields the processes.

    Raises:
        ValueError: for a negative ``n``.
    """
    if n < 0:
        raise ValueError(f"the number of busy processes must be >= 0, got {n}")
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
    try:
        if procs:
            time.sleep(0.5)  # let them start spinning
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
