"""What single operations cost on this CPU: the measurements behind MSFEN's hardware-efficient formulation
(docs/ablation.md, "Where the time went").

    python -m nnunet_msfen.experiments.studies.cpu_kernels [--repeats 5]

Times (median of ``--repeats``, after one warm-up) on tensors of the BraTS 3d_fullres topology's first stage
(batch 2, 32 channels, 64^3), each line forward or forward + backward:

1. a new full-resolution tensor vs the same arithmetic into an existing one (page faults of glibc's fresh mmap),
   with glibc's default and with freed memory retained (``nnunet_msfen.runtime.cpu_allocator``);
2. a batch-1 3D convolution with 16 channels at 32^3 through PyTorch's dispatch (``slow_conv3d``) and through oneDNN
   directly (``nnunet_msfen.blocks.conv.convolve``);
3. a quarter-width branch convolution: depthwise vs dense, forward + backward;
4. a full-width dense 3^3 convolution, forward + backward (what nnU-Net's U-Net spends its time on).

Run it alone on the machine; it prints the CPU model with the figures.
"""
import argparse
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch
from torch import nn


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _fwd_bwd(module: nn.Module, shape, repeats: int) -> float:
    def run():
        x = torch.randn(shape, requires_grad=True)
        out = module(x)
        out.backward(torch.ones_like(out))
    return _time(run, repeats)


def allocation(repeats: int) -> None:
    """Line 1, in this process (the caller decides the allocator)."""
    x = torch.randn(2, 32, 64, 64, 64)
    y, out = torch.randn_like(x), torch.empty_like(x)
    print(f"  x * y, new tensor:      {_time(lambda: x * y, repeats):7.1f} ms", flush=True)
    print(f"  x * y into an existing: {_time(lambda: torch.mul(x, y, out=out), repeats):7.1f} ms", flush=True)


def main(argv=None) -> int:
    """Print the four measurements of the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--allocation-only", choices=("system", "retain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.allocation_only:
        from nnunet_msfen.runtime.cpu_allocator import retain_freed_memory

        retain_freed_memory(args.allocation_only)
        allocation(args.repeats)
        return 0
    from nnunet_msfen.benchmark.machine import describe, one_line
    from nnunet_msfen.blocks.conv import convolve

    print(f"machine: {one_line(describe(torch.device('cpu')))}")
    for mode in ("system", "retain"):  # a fresh process each: the allocator setting cannot be undone
        print(f"1. element-wise multiply, 2 x 32 x 64^3 float32, CPU allocator {mode}:", flush=True)
        subprocess.run([sys.executable, "-m", "nnunet_msfen.experiments.studies.cpu_kernels", "--repeats",
                        str(args.repeats), "--allocation-only", mode], check=True)
    torch.manual_seed(0)
    conv = nn.Conv3d(16, 16, 3, padding=1)
    x = torch.randn(1, 16, 32, 32, 32)
    with torch.inference_mode():
        print("2. batch-1 conv 16 -> 16, 3^3, 32^3 (prediction):", flush=True)
        print(f"  PyTorch's dispatch:     {_time(lambda: conv(x), args.repeats):7.1f} ms", flush=True)
        print(f"  oneDNN (convolve):      {_time(lambda: convolve(conv, x), args.repeats):7.1f} ms", flush=True)
    print("3. branch conv 8 -> 8 channels, 3^3, 2 x 64^3, forward + backward:", flush=True)
    print(f"  depthwise (groups 8):   {_fwd_bwd(nn.Conv3d(8, 8, 3, padding=1, groups=8), (2, 8, 64, 64, 64), args.repeats):7.1f} ms", flush=True)
    print(f"  dense (groups 1):       {_fwd_bwd(nn.Conv3d(8, 8, 3, padding=1), (2, 8, 64, 64, 64), args.repeats):7.1f} ms", flush=True)
    print("4. U-Net conv 32 -> 32, 3^3, 2 x 64^3, forward + backward:", flush=True)
    print(f"  dense:                  {_fwd_bwd(nn.Conv3d(32, 32, 3, padding=1), (2, 32, 64, 64, 64), args.repeats):7.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
