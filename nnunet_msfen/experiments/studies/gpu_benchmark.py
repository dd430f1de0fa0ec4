"""The GPU measurements the issue asks for whenever a GPU is at hand, as one prepared run (never a CI requirement).

    python -m nnunet_msfen.experiments.studies.gpu_benchmark OUT_DIR [--repeats 5]

Runs, each into ``OUT_DIR`` (JSON + the printed log):

1. ``nnunet-msfen benchmark --device cuda --patch 128 128 128`` (nnU-Net's 3d_fullres patch for BraTS, batch 2,
   nnU-Net's autocast and grad scaler), networks plain, resenc-m, msfen, msfen-v1;
2. the same for the 2d topology (192 x 192, batch 12);
3. the 3D run again with ``--compile``, plain and msfen: nnU-Net's trainer compiles the network by default on a GPU;
4. the planner calibration on CUDA (``plans/calibrate_reference.py -device cuda``), 3D and 2D.

Takes ~10 minutes on a recent GPU (the compilation included). Prints where the results are; docs/ablation.md quotes them with the GPU's name.
"""
import argparse
import subprocess
import sys
from pathlib import Path


def main(argv=None) -> int:
    """Run the measurements of the module docstring; non-zero exit if one fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        "benchmark_3d": [sys.executable, "-m", "nnunet_msfen.cli", "benchmark", "-device", "cuda", "--patch", "128",
                         "128", "128", "--networks", "default", "msfen-v1", "--repeats", str(args.repeats),
                         "--inference-repeats", "3", "-o", str(args.out_dir / "benchmark_3d.json")],
        "benchmark_2d": [sys.executable, "-m", "nnunet_msfen.cli", "benchmark", "-device", "cuda", "--config", "2d",
                         "--networks", "default", "msfen-v1", "--repeats", str(args.repeats), "--inference-repeats",
                         "3", "-o", str(args.out_dir / "benchmark_2d.json")],
        "benchmark_3d_compiled": [sys.executable, "-m", "nnunet_msfen.cli", "benchmark", "-device", "cuda", "--patch",
                                  "128", "128", "128", "--networks", "plain", "msfen", "--compile", "--repeats",
                                  str(args.repeats), "--inference-repeats", "3",
                                  "-o", str(args.out_dir / "benchmark_3d_compiled.json")],
        "calibration_3d": [sys.executable, "-m", "nnunet_msfen.plans.calibrate_reference", "-device", "cuda",
                           "--patch", "128", "128", "128"],
        "calibration_2d": [sys.executable, "-m", "nnunet_msfen.plans.calibrate_reference", "-device", "cuda",
                           "--config", "2d"],
    }
    failed = []
    for name, cmd in runs.items():
        with open(args.out_dir / f"{name}.log", "w") as log:
            print(f"$ {' '.join(cmd[2:])}", flush=True)
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                failed.append(name)
    print(f"results in {args.out_dir}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
