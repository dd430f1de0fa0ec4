"""The branches of a multi-scale unit: receptive fields 3, 5, 7 (``kernel_sizes``), four ways to build them. Each
form owns its forward, its output width and its memory count; ``make_scale_branches`` picks one by name.

Method: MSFEN, Y. Wang, "Multimodal Brain Tumor Segmentation Based on Multi-Scale Feature Extraction Network",
sec. 2.2 (kernels 3, 5 and 7, depthwise-separable convolutions). The forms:

- ``"hierarchical"`` (default; Res2Net, S.-H. Gao et al., "Res2Net: A New Multi-scale Backbone Architecture",
  TPAMI 2019, https://arxiv.org/abs/1904.01169): the channels are split into 1 + n groups; the first passes
  through, group i gets a 3^d convolution of itself plus the previous group's output, so the outputs have receptive
  fields 3, 5, 7. Every scale is computed once, on a quarter of the channels.
- ``"cascade"``: full-width 3^d convolutions in sequence; output i has receptive field 1 + 2i.
- ``"dilated"``: one 3^d convolution per branch with dilation (k - 1) / 2.
- ``"parallel"``: one k^d convolution per branch (the paper's literal form; the slowest by far).

``group_width`` is the number of channels per convolution group, capped at the branch width: 1 is depthwise (the
paper's depthwise-separable form; the 0.1.0 default), a width >= the branch width is a dense convolution. Dense
and wide-group convolutions run at several times the FLOP rate of depthwise ones on CPUs (oneDNN) and GPUs
(cuDNN), so they cost less time although they do more arithmetic (docs/ablation.md).
"""
from typing import List, Sequence, Type

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_msfen.blocks.conv import convolve

BRANCH_MODES = ("hierarchical", "cascade", "dilated", "parallel")


class _ScaleBranches(nn.Module):
    """Common part: validation, the convolutions, ``out_channels``."""

    def __init__(self, conv_op: Type[_ConvNd], channels: int, branch_channels: int, kernels: Sequence[int],
                 dilations: Sequence[int], group_width: int, active_axes: Sequence[bool], conv_bias: bool):
        super().__init__()
        if group_width < 1:
            raise ValueError(f"group_width must be >= 1, got group_width={group_width}")
        width = min(group_width, branch_channels)
        if branch_channels % width:
            raise ValueError(f"group_width={group_width} must divide the {branch_channels} channels of a branch "
                             f"(or be at least that many)")
        self.channels, self.branch_channels = channels, branch_channels

        def conv(k: int, dilation: int) -> nn.Module:
            kernel = [k if a else 1 for a in active_axes]
            return conv_op(branch_channels, branch_channels, kernel, padding=[dilation * (i - 1) // 2 for i in kernel],
                           dilation=[dilation if a else 1 for a in active_axes], groups=branch_channels // width,
                           bias=conv_bias)

        self.convs = nn.ModuleList([conv(k, d) for k, d in zip(kernels, dilations)])


class HierarchicalBranches(_ScaleBranches):
    """Res2Net's split: output ``[x_0, y_1, ..., y_n]`` with ``y_i = conv_i(x_i + y_{i-1})``; ``channels`` wide."""

    def __init__(self, conv_op, channels: int, kernel_sizes: Sequence[int], group_width: int, active_axes,
                 conv_bias: bool):
        n_splits = len(kernel_sizes) + 1
        if channels % n_splits:
            raise ValueError(f"mode='hierarchical' splits the channels into {n_splits} equal groups; "
                             f"channels={channels} is not divisible by {n_splits}")
        super().__init__(conv_op, channels, channels // n_splits, [3] * len(kernel_sizes), [1] * len(kernel_sizes),
                         group_width, active_axes, conv_bias)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = x.chunk(len(self.convs) + 1, dim=1)
        scales, previous = [splits[0]], None
        for conv, split in zip(self.convs, splits[1:]):
            previous = convolve(conv, split if previous is None else split + previous)
            scales.append(previous)
        return torch.cat(scales, dim=1)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """n branch outputs and n - 1 sums of a branch's width, and the concatenation."""
        n = len(self.convs)
        return np.int64((2 * n - 1) * self.branch_channels * np.prod(input_size, dtype=np.int64)
                        + self.out_channels * np.prod(input_size, dtype=np.int64))


class _FullWidthBranches(_ScaleBranches):
    """Branches over all channels, concatenated: ``len(kernel_sizes) * channels`` wide."""

    def __init__(self, conv_op, channels, kernels, dilations, group_width, active_axes, conv_bias):
        super().__init__(conv_op, channels, channels, kernels, dilations, group_width, active_axes, conv_bias)
        self.out_channels = channels * len(kernels)

    def scales(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [convolve(conv, x) for conv in self.convs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.scales(x), dim=1)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Branch outputs and their concatenation."""
        return np.int64(2 * self.out_channels * np.prod(input_size, dtype=np.int64))


class CascadeBranches(_FullWidthBranches):
    """3^d convolutions in sequence; the i-th output has receptive field 1 + 2i."""

    def __init__(self, conv_op, channels, kernel_sizes, group_width, active_axes, conv_bias):
        super().__init__(conv_op, channels, [3] * len(kernel_sizes), [1] * len(kernel_sizes), group_width,
                         active_axes, conv_bias)

    def scales(self, x: torch.Tensor) -> List[torch.Tensor]:
        out = []
        for conv in self.convs:
            x = convolve(conv, x)
            out.append(x)
        return out


class DilatedBranches(_FullWidthBranches):
    """One 3^d convolution per branch with dilation (k - 1) / 2: 3^d taps whatever the receptive field."""

    def __init__(self, conv_op, channels, kernel_sizes, group_width, active_axes, conv_bias):
        super().__init__(conv_op, channels, [min(k, 3) for k in kernel_sizes],
                         [max(1, (k - 1) // 2) for k in kernel_sizes], group_width, active_axes, conv_bias)


class ParallelBranches(_FullWidthBranches):
    """One k^d convolution per branch, side by side (the paper's literal form)."""

    def __init__(self, conv_op, channels, kernel_sizes, group_width, active_axes, conv_bias):
        super().__init__(conv_op, channels, list(kernel_sizes), [1] * len(kernel_sizes), group_width, active_axes,
                         conv_bias)


_FORMS = {"hierarchical": HierarchicalBranches, "cascade": CascadeBranches, "dilated": DilatedBranches,
          "parallel": ParallelBranches}


def make_scale_branches(mode: str, conv_op: Type[_ConvNd], channels: int, kernel_sizes: Sequence[int] = (3, 5, 7),
                        group_width: int = 16, active_axes: Sequence[bool] = None,
                        conv_bias: bool = False) -> _ScaleBranches:
    """The branch form ``mode`` (``BRANCH_MODES``) with receptive fields ``kernel_sizes``.

    Raises:
        ValueError: for an unknown ``mode``, bad ``kernel_sizes``, ``channels``, ``group_width`` or ``active_axes``.
    """
    kernel_sizes = tuple(int(k) for k in kernel_sizes)
    if mode not in _FORMS:
        raise ValueError(f"mode must be one of {BRANCH_MODES}, got mode={mode!r}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got channels={channels}")
    if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes) or list(kernel_sizes) != sorted(set(kernel_sizes)):
        raise ValueError(f"kernel_sizes must be distinct ascending odd numbers, got kernel_sizes={kernel_sizes}")
    if mode in ("cascade", "hierarchical") and kernel_sizes != tuple(range(3, 3 + 2 * len(kernel_sizes), 2)):
        raise ValueError(f"mode={mode!r} builds receptive fields 3, 5, 7, ... in order; got kernel_sizes={kernel_sizes}")
    n_dims = convert_conv_op_to_dim(conv_op)
    active_axes = [True] * n_dims if active_axes is None else [bool(a) for a in active_axes]
    if len(active_axes) != n_dims or not any(active_axes):
        raise ValueError(f"active_axes must hold {n_dims} flags, at least one True, got active_axes={active_axes}")
    return _FORMS[mode](conv_op, channels, kernel_sizes, group_width, active_axes, conv_bias)
