"""Calibrates nnUNetPlannerMSFEN's reference value against PlainConvUNet's, from measured training memory.

nnU-Net sizes patch and batch by comparing ``compute_conv_feature_map_size`` of the planned network with a reference
value (560e6 for PlainConvUNet in 3D at 8 GB) that it calibrated by measuring GPU memory. MSFENUNet counts its maps
with its own rule (every map a forward pass allocates, while its blocks recompute most of them in the backward pass
instead of keeping them), so one of its counted elements stands for a different amount of memory than one of
PlainConvUNet's. This script runs the first training step of each network's trainer on the BraTS topology (the
benchmark's step and memory measurement: ``nnunet_msfen.benchmark.nnunet_step``, ``.memory``) and reports

    (MSFEN elements / MSFEN memory) / (Plain elements / Plain memory)

the factor by which MSFEN's reference value differs from PlainConvUNet's for the same memory.

    python -m nnunet_msfen.plans.calibrate_reference [--config 3d_fullres|2d] [--patch 64 64 64] [--batch 2]
                                                     [--device cpu|cuda]
"""
import argparse
import json
import sys
from typing import Dict, List


def measure(name: str, config: str, patch: List[int], batch: int, device: str) -> Dict[str, float]:
    """Counted elements (one sample) and peak tensor memory (MiB) of the first training step of contender ``name``."""
    import torch

    from nnunet_msfen.benchmark.memory import peak_tensor_memory
    from nnunet_msfen.benchmark.networks import VARIANTS, brats_arch, plans_arch, trainer_class
    from nnunet_msfen.benchmark.nnunet_step import NnUNetTrainStep

    torch.manual_seed(0)
    step = NnUNetTrainStep(trainer_class(name), config, VARIANTS[name].plans_network,
                           plans_arch(name, brats_arch(config)), patch, batch, torch.device(device))
    counted = int(step.net.compute_conv_feature_map_size(patch))
    return {"counted_elements": counted, "step_memory_mib": peak_tensor_memory(step.step, torch.device(device))}


def main(argv=None) -> int:
    """Measure both networks and print the calibration factor as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["3d_fullres", "2d"], default="3d_fullres")
    parser.add_argument("--patch", type=int, nargs="+", default=None, help="default 64 64 64 (3D), 192 192 (2D)")
    parser.add_argument("--batch", type=int, default=None, help="default 2 (3D), 12 (2D)")
    parser.add_argument("-device", "--device", dest="device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    patch = args.patch or ([64, 64, 64] if args.config == "3d_fullres" else [192, 192])
    batch = args.batch or (2 if args.config == "3d_fullres" else 12)
    results = {name: measure(name, args.config, patch, batch, args.device) for name in ("plain", "msfen")}
    per_mib = {n: r["counted_elements"] / r["step_memory_mib"] for n, r in results.items()}
    results["msfen_estimate_per_plain_estimate"] = per_mib["msfen"] / per_mib["plain"]
    results["setting"] = {"config": args.config, "patch": patch, "batch": batch, "device": args.device}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
