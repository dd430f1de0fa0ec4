"""Multi-scale feature extraction: branches with receptive fields 3, 5 and 7 built from depthwise-separable
convolutions, concatenated, weighted by sigmoid channel attention and fused by a pointwise convolution.

Method: MSFEN, Y. Wang, "Multimodal Brain Tumor Segmentation Based on Multi-Scale Feature Extraction Network"
(sec. 2.2: kernels of 3, 5 and 7, concatenation and channel attention with a sigmoid, depthwise-separable
convolutions). Related: Inception (Szegedy et al., 2015), MixConv (Tan & Le, 2019), Res2Net (Gao et al., 2019).

The depthwise (spatial) part of the branches can be built four ways, all with the same receptive fields:

- ``"parallel"``: one depthwise k^d convolution per branch (the paper's literal form). Costly in time: the
  backward pass of a depthwise 7^3 convolution on a CPU is an order of magnitude slower than a dense 3^3 one.
- ``"dilated"``: one depthwise 3^d convolution per branch with dilation (k - 1) / 2, i.e. 27 taps per branch in 3D
  instead of 27 / 125 / 343.
- ``"cascade"``: depthwise 3^d convolutions applied in sequence; the i-th output has receptive field 1 + 2i, so
  the three scales cost three 3^d convolutions together (Res2Net-like reuse of the smaller scale).

- ``"hierarchical"`` (Res2Net's split, "Res2Net: A New Multi-scale Backbone Architecture", S.-H. Gao et al.,
  TPAMI 2019, https://arxiv.org/abs/1904.01169): the channels are split into 1 + len(kernel_sizes) groups; the
  first passes through (receptive field 1), group i gets a depthwise 3^d convolution of itself plus the previous
  group's output, so the outputs have receptive fields 3, 5, 7. Every scale is computed once, on a quarter of the
  channels: the spatial work of a single depthwise convolution for all three scales, and a C -> C fusion
  instead of 3C -> C.

``group_width`` widens the depthwise groups (1 = depthwise; 8 = grouped convolutions of 8 channels each, which a
CPU or GPU runs far more efficiently per tap). docs/ablation.md records what each choice costs.
"""
from typing import Sequence, Type

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim

from nnunet_msfen.blocks.channel_attention import ChannelAttn

BRANCH_MODES = ("hierarchical", "cascade", "dilated", "parallel")


class MultiScaleConv(nn.Module):
    """Depthwise multi-scale branches -> concat -> channel attention -> pointwise fusion -> norm.

    The output has ``channels`` channels and the input's spatial size. No nonlinearity at the end: the residual
    stage adds its skip first (``MSFENBlock``).

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        channels: input and output channels.
        kernel_sizes: receptive field of each branch, odd, ascending, e.g. (3, 5, 7).
        mode: ``"hierarchical"``, ``"cascade"``, ``"dilated"`` or ``"parallel"`` (see the module docstring).
        group_width: channels per group of the spatial convolutions; 1 is depthwise. Must divide the channels of
            a branch (``channels``, or ``channels / (1 + len(kernel_sizes))`` in hierarchical mode).
        active_axes: per spatial axis, whether the branches convolve along it (``None``: all). nnU-Net plans a
            kernel of 1 along the coarse axis of anisotropic data; the scales then stay in-plane there too.
        channel_attention: gate the concatenated scales with ``ChannelAttn`` before fusing them.
        rd_ratio: bottleneck ratio of the channel attention.
        conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs: as in dynamic_network_architectures
            (class + kwargs, ``None`` skips the layer); dropout and norm follow the fusion convolution.

    Raises:
        ValueError: for a bad ``mode``, ``kernel_sizes``, ``channels`` or ``group_width``.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, kernel_sizes: Sequence[int] = (3, 5, 7),
                 mode: str = "hierarchical", group_width: int = 1, active_axes: Sequence[bool] = None,
                 channel_attention: bool = True,
                 rd_ratio: float = 1 / 4, conv_bias: bool = False, norm_op: Type[nn.Module] = None,
                 norm_op_kwargs: dict = None, dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None):
        super().__init__()
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if mode not in BRANCH_MODES:
            raise ValueError(f"mode must be one of {BRANCH_MODES}, got mode={mode!r}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got channels={channels}")
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes) or list(kernel_sizes) != sorted(set(kernel_sizes)):
            raise ValueError(f"kernel_sizes must be distinct ascending odd numbers, got kernel_sizes={kernel_sizes}")
        if mode in ("cascade", "hierarchical") and kernel_sizes != tuple(range(3, 3 + 2 * len(kernel_sizes), 2)):
            raise ValueError(f"mode={mode!r} builds receptive fields 3, 5, 7, ... in order; "
                             f"got kernel_sizes={kernel_sizes}")
        n_splits = len(kernel_sizes) + 1
        if mode == "hierarchical" and channels % n_splits:
            raise ValueError(f"mode='hierarchical' splits the channels into {n_splits} equal groups; "
                             f"channels={channels} is not divisible by {n_splits}")
        branch_channels = channels // n_splits if mode == "hierarchical" else channels
        if group_width < 1 or branch_channels % group_width:
            raise ValueError(f"group_width must be >= 1 and divide the {branch_channels} channels of a branch, "
                             f"got group_width={group_width}")
        n_dims = convert_conv_op_to_dim(conv_op)
        active_axes = [True] * n_dims if active_axes is None else [bool(a) for a in active_axes]
        if len(active_axes) != n_dims or not any(active_axes):
            raise ValueError(f"active_axes must hold {n_dims} flags, at least one True, got active_axes={active_axes}")
        self.channels, self.kernel_sizes, self.mode = channels, kernel_sizes, mode
        self.branch_channels = branch_channels
        groups = branch_channels // group_width

        def spatial(k: int, dilation: int = 1) -> nn.Module:
            kernel = [k if a else 1 for a in active_axes]
            return conv_op(branch_channels, branch_channels, kernel, padding=[dilation * (i - 1) // 2 for i in kernel],
                           dilation=[dilation if a else 1 for a in active_axes], groups=groups, bias=conv_bias)

        if mode == "parallel":
            self.branches = nn.ModuleList([spatial(k) for k in kernel_sizes])
        elif mode == "dilated":
            self.branches = nn.ModuleList([spatial(min(k, 3), dilation=max(1, (k - 1) // 2)) for k in kernel_sizes])
        else:
            self.branches = nn.ModuleList([spatial(3) for _ in kernel_sizes])

        concat_channels = channels if mode == "hierarchical" else channels * len(kernel_sizes)
        self.attention = ChannelAttn(concat_channels, rd_ratio=rd_ratio) if channel_attention else nn.Identity()
        self.fuse = conv_op(concat_channels, channels, 1, bias=conv_bias)
        self.dropout = dropout_op(**(dropout_op_kwargs or {})) if dropout_op is not None else nn.Identity()
        self.norm = norm_op(channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "hierarchical":
            splits = x.chunk(len(self.branches) + 1, dim=1)
            scales, previous = [splits[0]], None
            for branch, split in zip(self.branches, splits[1:]):
                previous = branch(split if previous is None else split + previous)
                scales.append(previous)
        elif self.mode == "cascade":
            scales = []
            for branch in self.branches:
                x = branch(x)
                scales.append(x)
        else:
            scales = [branch(x) for branch in self.branches]
        fused = self.fuse(self.attention(torch.cat(scales, dim=1)))
        return self.norm(self.dropout(fused))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Branch outputs (and the sums feeding them), their concatenation, the gated concatenation, the fused
        output and its norm."""
        n_scales = len(self.kernel_sizes)
        voxels = np.prod(input_size, dtype=np.int64)
        if self.mode == "hierarchical":
            total = (2 * n_scales - 1) * self.branch_channels * voxels + self.channels * voxels
        else:
            total = 2 * n_scales * self.channels * voxels  # branch outputs + torch.cat copy
        if isinstance(self.attention, ChannelAttn):
            total += self.attention.compute_conv_feature_map_size(input_size)
        total += self.channels * voxels  # fusion conv
        if not isinstance(self.norm, nn.Identity):
            total += self.channels * voxels
        return np.int64(total)
