"""Peak memory of one training step of one network, measured in a fresh process.

On the CPU the only peak the OS keeps is the process's ``ru_maxrss``, which never goes down; so every network gets
its own interpreter: build the network, optimizer and batch, then run one training step and report how far the
peak resident set grew (the activations, gradients, optimizer state and allocator slack of the step).

    python -m nnunet_msfen.benchmark.memory '{"name": "msfen", "config": "3d_fullres", "n_stages": 6,
        "patch": [64, 64, 64], "batch": 2, "device": "cpu", "channels_last": false, "loss_weights": [0.3, 0.7]}'

prints one JSON line ``{"name": ..., "peak_mib": ...}``.
"""
import json
import subprocess
import sys
from typing import Optional


def measure_in_subprocess(spec: dict, timeout: float = 900) -> Optional[float]:
    """Run this module on ``spec`` in a fresh interpreter; the peak (MiB), or ``None`` if the run failed (the
    worker's error is printed to stderr)."""
    proc = subprocess.run([sys.executable, "-m", "nnunet_msfen.benchmark.memory", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"memory measurement of {spec.get('name')!r} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return None
    return float(json.loads(lines[-1])["peak_mib"])


def main(argv=None) -> int:
    """Worker entry point: measure the spec given as the one JSON argument."""
    import torch

    from nnunet_msfen.benchmark.measure import TrainStep, peak_memory_of
    from nnunet_msfen.benchmark.networks import INPUT_CHANNELS, NUM_CLASSES, brats_arch, build_network

    spec = json.loads((argv or sys.argv[1:])[0])
    torch.manual_seed(0)
    arch = brats_arch(spec["config"], spec["n_stages"])
    device = torch.device(spec["device"])
    net = build_network(spec["name"], arch)
    step = TrainStep(net, spec["batch"], spec["patch"], arch["n_stages"] - 1, NUM_CLASSES, INPUT_CHANNELS,
                     tuple(spec["loss_weights"]), device, spec.get("channels_last", False))
    peak = peak_memory_of(step.step, device)
    print(json.dumps({"name": spec["name"], "peak_mib": round(peak, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
