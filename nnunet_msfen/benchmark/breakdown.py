"""Where a training step's time goes: each block of a network timed alone (forward + backward on its real input
shape), grouped by block type, with the FLOPs it does and the rate it achieves (``nnunet-msfen benchmark
--breakdown``).

A block is the outermost module of one of ``BLOCK_TYPES`` (MSFEN's stem, multi-scale units, skip fusions, SPP,
strided convolutions; dynamic_network_architectures' convolution blocks, residual blocks and transposed
convolutions; the segmentation heads). Operations outside every block (the decoder's concatenation in
``PlainConvUNet``, the loss, the optimizer) are not in the table, so its times add up to less than the step.
"""
import statistics
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nnunet_msfen.benchmark.measure import timed


def block_types() -> Tuple[type, ...]:
    """The module classes counted as blocks, outermost first."""
    from dynamic_network_architectures.building_blocks.residual import BasicBlockD, BottleneckD
    from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU

    from nnunet_msfen.blocks.conv import ConvNormAct
    from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
    from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
    from nnunet_msfen.blocks.skip_fusion import SkipFusion
    from nnunet_msfen.blocks.spp import SpatialPyramidPooling

    return (ModalityAwareStem, MultiScaleResidualBlock, SkipFusion, SpatialPyramidPooling, ConvNormAct,
            ConvDropoutNormReLU, BasicBlockD, BottleneckD, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Conv2d,
            nn.Conv3d)


def label(module: nn.Module) -> str:
    """The block type's name in the table (bare convolutions are the segmentation heads or the stem's)."""
    name = type(module).__name__
    if isinstance(module, (nn.Conv2d, nn.Conv3d)) and not isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return "segmentation head" if module.kernel_size == (1,) * len(module.kernel_size) else f"{name} (bare)"
    return name


def find_blocks(net: nn.Module, data: torch.Tensor) -> List[Tuple[str, nn.Module, List[torch.Size]]]:
    """(name, block, input shapes) of every outermost block that runs in a forward pass of ``data``."""
    types = block_types()
    outermost, inside = [], set()
    for name, module in net.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        if isinstance(module, types):
            outermost.append((name, module))
            inside.add(name)
    seen: Dict[str, List[torch.Size]] = OrderedDict()

    def record(name: str):
        def hook(module, args) -> None:  # a pre-hook that returned a value would replace the inputs
            seen.setdefault(name, [a.shape for a in args if torch.is_tensor(a)])
        return hook

    hooks = [m.register_forward_pre_hook(record(n)) for n, m in outermost]
    try:
        with torch.no_grad():
            net(data)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(outermost)
    return [(n, modules[n], shapes) for n, shapes in seen.items()]


def time_block(module: nn.Module, shapes: Sequence[torch.Size], device: torch.device, repeats: int) -> Tuple[float, int]:
    """Median seconds of forward + backward of ``module`` on random inputs of ``shapes`` (gradients for the inputs
    too, as inside a network), and its FLOPs."""
    inputs = [torch.randn(s, device=device, requires_grad=True) for s in shapes]

    def run() -> None:
        out = module(*inputs)
        out.backward(torch.ones_like(out))

    with FlopCounterMode(display=False) as counter:
        run()
    seconds = [timed(run, device) for _ in range(repeats)]
    module.zero_grad(set_to_none=True)
    return statistics.median(seconds), int(counter.get_total_flops())


def breakdown(net: nn.Module, data: torch.Tensor, repeats: int = 2) -> List[Dict[str, object]]:
    """Rows per block type, slowest first: ``type``, ``count``, ``seconds`` (forward + backward, summed over the
    blocks), ``gflop``, ``gflop_per_s``, ``share`` (of the summed block time)."""
    net.train()
    groups: Dict[str, Dict[str, float]] = OrderedDict()
    for _, module, shapes in find_blocks(net, data):
        seconds, flops = time_block(module, shapes, data.device, repeats)
        g = groups.setdefault(label(module), {"count": 0, "seconds": 0.0, "flops": 0})
        g["count"] += 1
        g["seconds"] += seconds
        g["flops"] += flops
    total = sum(g["seconds"] for g in groups.values()) or 1.0
    rows = [{"type": t, "count": int(g["count"]), "seconds": g["seconds"], "gflop": g["flops"] / 1e9,
             "gflop_per_s": g["flops"] / 1e9 / g["seconds"] if g["seconds"] else None, "share": g["seconds"] / total}
            for t, g in groups.items()]
    return sorted(rows, key=lambda r: -r["seconds"])
