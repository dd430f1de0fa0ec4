"""Calibrates nnUNetPlannerMSFEN's reference value against PlainConvUNet's, from measured training memory.

nnU-Net sizes patch and batch by comparing ``compute_conv_feature_map_size`` of the planned network with a reference
value (560e6 for PlainConvUNet in 3D at 8 GB) that it calibrated by measuring GPU memory. MSFENUNet counts its maps
with its own (more complete) rule, so one of its counted elements stands for less memory than one of
PlainConvUNet's. This script trains one step of each network on the BraTS topology, in a fresh process each, and
reports the peak memory of the step and the counted elements; the ratio

    (MSFEN elements / MSFEN memory) / (Plain elements / Plain memory)

is the factor by which MSFEN's reference value exceeds PlainConvUNet's for the same memory.

    python -m nnunet_msfen.plans.calibrate_reference [--patch 64 64 64] [--batch 2] [--device cpu|cuda]
"""
import argparse
import json
import resource
import subprocess
import sys
from typing import Dict, List

ARCH = {
    "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320], "conv_op": "torch.nn.modules.conv.Conv3d",
    "kernel_sizes": [[3, 3, 3]] * 6, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5, "n_conv_per_stage": [2] * 6,
    "n_conv_per_stage_decoder": [2] * 5, "conv_bias": True, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
    "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
    "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True},
}
NETWORKS = {"PlainConvUNet": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "MSFENUNet": "nnunet_msfen.network.msfen_unet.MSFENUNet"}


def measure_one(class_name: str, patch: List[int], batch: int, device: str) -> Dict[str, float]:
    """Peak memory (bytes) of one training step of ``class_name`` above the memory held before it, and its count."""
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    net = get_network_from_plans(class_name, dict(ARCH), ("conv_op", "norm_op", "dropout_op", "nonlin"), 4, 3,
                                 deep_supervision=True).to(device)
    counted = int(net.compute_conv_feature_map_size(patch))
    x = torch.randn(batch, 4, *patch, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with torch.autocast(device, enabled=device == "cuda"):
        loss = sum(o.float().mean() for o in net(x))
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"counted_elements": counted, "step_memory_bytes": peak - before}


def main(argv=None) -> int:
    """Measure both networks in fresh subprocesses and print the calibration factor as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", type=int, nargs=3, default=[64, 64, 64])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(measure_one(NETWORKS[args._child], args.patch, args.batch, args.device)))
        return 0
    results = {}
    for name in NETWORKS:
        out = subprocess.run([sys.executable, "-m", "nnunet_msfen.plans.calibrate_reference", "--_child", name,
                              "--patch", *map(str, args.patch), "--batch", str(args.batch), "--device", args.device],
                             check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    per_byte = {n: r["counted_elements"] / r["step_memory_bytes"] for n, r in results.items()}
    results["msfen_estimate_per_plain_estimate"] = per_byte["MSFENUNet"] / per_byte["PlainConvUNet"]
    results["setting"] = {"patch": args.patch, "batch": args.batch, "device": args.device}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
