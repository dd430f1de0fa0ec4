"""The wheel users install: our code under nnunet_msfen only, the discovery hook at the root of site-packages."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in ("nnunet_msfen", "plans", "dataset_conversion", "tests", "pyproject.toml", "setup.py", "README.md"):
        path = REPO / name
        (shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__")) if path.is_dir()
         else shutil.copy(path, src / name))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("nnunet_msfen-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_no_generic_top_level_module_in_the_wheel(wheel_names):
    top = {n.split("/")[0] for n in wheel_names}
    assert top == {"nnunet_msfen", "nnunet_msfen_discovery.pth", next(t for t in top if t.endswith(".dist-info"))}


def test_plans_and_conversion_install_inside_the_package(wheel_names):
    assert "nnunet_msfen/plans/nnUNetPlannerMSFEN.py" in wheel_names
    assert "nnunet_msfen/dataset_conversion/convert_brats.py" in wheel_names
    assert "nnunet_msfen/discovery/nnunet_ext/nnunet_msfen_trainers.py" in wheel_names
    assert not any(n.startswith("nnunet_msfen/tests") for n in wheel_names)


def test_console_script_is_declared(wheel_names):
    assert any(n.endswith("entry_points.txt") for n in wheel_names)


def _pinned() -> dict:
    pins = {}
    for line in (REPO / "requirements" / "pinned.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_declared_floors_are_the_tested_versions():
    # a floor below what CI tests is a promise nobody checked (NumPy 1.24 lacked np.trapezoid, Matplotlib 3.7
    # boxplot(tick_labels=)); the floors are the pinned versions CI installs
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _pinned()
    checked = []
    for requirement in requirements:
        name, op, version = re.match(r"([A-Za-z0-9_.-]+)\s*(==|>=)\s*([^,;\s]+)", requirement).groups()
        key = name.lower().replace("_", "-")
        assert key in pins, f"{name} is declared but not pinned (and so not tested) in requirements/pinned.txt"
        assert version == pins[key], f"{requirement}: the tested version is {pins[key]}"
        checked.append(key)
    assert {"torch", "numpy", "matplotlib", "nnunetv2"} <= set(checked)
    assert project["requires-python"] == ">=3.11"
