"""Shared fixtures. Tests run against the installed (editable) package: ``make test``."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BRATS2018_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "brats2018_sample"


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
    """A planned and preprocessed 5-case phantom dataset (+ 2 test cases), shared by the session's tests."""
    from nnunet_fixtures import build_tiny_dataset

    return build_tiny_dataset(tmp_path_factory.mktemp("tiny_nnunet"))
