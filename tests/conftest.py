"""Shared fixtures. Tests run against the installed (editable) package: ``make test``."""
import fcntl
import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BRATS2018_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "brats2018_sample"


def pytest_collection_modifyitems(config, items):
    """Put the modules with end-to-end (``slow``) tests first, most slow tests first, keeping the order within a
    module: under ``make test``'s ``--dist loadscope`` (a module per process, in this order) the two processes
    start on the long runs and the quick modules fill the gaps."""
    modules = {}
    for item in items:
        modules.setdefault(item.module.__name__, []).append(item)
    slow = {name: sum(i.get_closest_marker("slow") is not None for i in members) for name, members in modules.items()}
    items[:] = [item for name in sorted(modules, key=lambda name: -slow[name]) for item in modules[name]]


def pytest_configure(config):
    try:
        import nnunet_msfen.plans  # noqa: F401  (only an install maps plans/ into the package)
    except ImportError as e:
        raise pytest.UsageError(f"nnunet_msfen is not installed ({e}): run `make test`, or `make install` first.")


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch):
    """Fresh nnUNet_raw / nnUNet_preprocessed / nnUNet_results folders, set in the environment."""
    dirs = {}
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        d = tmp_path / name
        d.mkdir()
        monkeypatch.setenv(name, str(d))
        dirs[name] = d
    return dirs


@pytest.fixture
def brats2018_sample():
    """The 12 real BraTS 2018 cases, read-only; the test is skipped where they are absent."""
    if not BRATS2018_SAMPLE.is_dir():
        pytest.skip(f"real BraTS sample not present at {BRATS2018_SAMPLE}")
    return BRATS2018_SAMPLE


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A planned and preprocessed 5-case phantom dataset (+ 2 test cases), shared by the session's tests. Under
    pytest-xdist it is built once for all processes, and each process works on its own copy (tests train into it
    and plan into it)."""
    from nnunet_fixtures import build_tiny_dataset, copy_tiny_dataset

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build_tiny_dataset(tmp_path_factory.mktemp("tiny_nnunet"))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each process's own
    with open(shared / "tiny_nnunet.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first process builds, the others wait for it
        built = shared / "tiny_nnunet"
        if not (built / "complete").is_file():
            shutil.rmtree(built, ignore_errors=True)  # a build that failed half-way in another process
            dataset = build_tiny_dataset(built)
            (built / "complete").write_text(dataset.dataset_name)
        return copy_tiny_dataset(built, (built / "complete").read_text(), tmp_path_factory.mktemp("tiny_nnunet"))
