"""``make gpu-check`` (issue 12's GPU check, run by hand where a CUDA GPU is at hand): its steps stay valid commands
of this package as their flags evolve, every one on CUDA."""
import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = tmp_path_factory.mktemp("gpu")
    dry = subprocess.run(["make", "-n", "-s", "gpu-check", f"GPU_OUT={out}"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    text = dry.stdout.replace("\\\n", " ")
    return {m.group(1): shlex.split(m.group(2)) for m in re.finditer(r"; run (\w+) (.*)", text)}


def test_the_check_names_the_gpu_benchmarks_both_topologies_and_calibrates_both(steps):
    assert list(steps) == ["gpu", "benchmark_3d", "benchmark_2d", "calibration_3d", "calibration_2d"]
    assert "torch.cuda.is_available()" in " ".join(steps["gpu"])


def test_the_benchmark_steps_parse_and_run_on_cuda_at_nnunets_3d_patch(steps):
    from nnunet_msfen.benchmark.command import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for name in ("benchmark_3d", "benchmark_2d"):
        argv = steps[name][steps[name].index("benchmark") + 1:]
        args = parser.parse_args(argv)
        assert args.device == "cuda" and args.output.endswith(f"{name}.json") and args.repeats >= 3
    assert parser.parse_args(steps["benchmark_3d"][2:]).patch == [128, 128, 128]
    assert parser.parse_args(steps["benchmark_2d"][2:]).config == "2d"


def test_the_calibration_steps_parse_and_run_on_cuda(steps, monkeypatch):
    from nnunet_msfen.plans import calibrate_reference

    seen = []
    monkeypatch.setattr(calibrate_reference, "measure", lambda name, config, patch, batch, device:
                        seen.append((config, patch, device)) or {"counted_elements": 1, "step_memory_mib": 1.0})
    for name in ("calibration_3d", "calibration_2d"):
        argv = steps[name][steps[name].index("nnunet_msfen.plans.calibrate_reference") + 1:]
        assert calibrate_reference.main(argv) == 0
    assert {(c, d) for c, _, d in seen} == {("3d_fullres", "cuda"), ("2d", "cuda")}
    assert [128, 128, 128] in [p for _, p, _ in seen]
