"""Multi-scale feature extraction: branches with receptive fields 3, 5 and 7, concatenated, weighted by sigmoid
channel attention and fused by a pointwise convolution.

Method: MSFEN, Y. Wang, "Multimodal Brain Tumor Segmentation Based on Multi-Scale Feature Extraction Network"
(sec. 2.2: kernels of 3, 5 and 7, concatenation and channel attention with a sigmoid). Related: Inception (Szegedy
et al., 2015), MixConv (Tan & Le, 2019), Res2Net (Gao et al., 2019). The branch forms are in ``scale_branches``.

The channel attention gates the concatenated scales ("dynamic weight fusion") and the 1x1 fusion follows; the two
run as one convolution with per-sample weights (``gated_pointwise_conv``), which computes ``fuse(gate * concat)``
exactly without writing the gated concatenation to memory.
"""
from typing import Sequence, Type

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.channel_attention import ChannelAttn
from nnunet_msfen.blocks.conv import convolve, gated_pointwise_conv
from nnunet_msfen.blocks.norm import skip_cancelled_bias, normalize
from nnunet_msfen.blocks.scale_branches import BRANCH_MODES, make_scale_branches

__all__ = ["MultiScaleConv", "BRANCH_MODES"]


class MultiScaleConv(nn.Module):
    """Multi-scale branches -> concat -> channel attention -> pointwise fusion -> dropout -> norm.

    The output has ``channels`` channels and the input's spatial size. No nonlinearity at the end: the residual
    unit adds its skip first (``MultiScaleResidualBlock``).

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        channels: input and output channels.
        kernel_sizes: receptive field of each branch, odd, ascending, e.g. (3, 5, 7).
        mode: ``"hierarchical"``, ``"cascade"``, ``"dilated"`` or ``"parallel"`` (``scale_branches``).
        group_width: channels per group of the branch convolutions, capped at the branch width (1: depthwise).
        active_axes: per spatial axis, whether the branches convolve along it (``None``: all). nnU-Net plans a
            kernel of 1 along the coarse axis of anisotropic data; the scales then stay in-plane there too.
        channel_attention: gate the concatenated scales with ``ChannelAttn`` before fusing them.
        rd_ratio: bottleneck ratio of the channel attention.
        conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs: as in dynamic_network_architectures
            (class + kwargs, ``None`` skips the layer); dropout and norm follow the fusion convolution.

    Raises:
        ValueError: for a bad ``mode``, ``kernel_sizes``, ``channels``, ``group_width`` or ``active_axes``.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, kernel_sizes: Sequence[int] = (3, 5, 7),
                 mode: str = "hierarchical", group_width: int = 16, active_axes: Sequence[bool] = None,
                 channel_attention: bool = True, rd_ratio: float = 1 / 4, conv_bias: bool = False,
                 norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None, dropout_op: Type[_DropoutNd] = None,
                 dropout_op_kwargs: dict = None):
        super().__init__()
        self.branches = make_scale_branches(mode, conv_op, channels, kernel_sizes, group_width, active_axes, conv_bias)
        self.channels, self.kernel_sizes, self.mode = channels, tuple(int(k) for k in kernel_sizes), mode
        concat = self.branches.out_channels
        self.attention = ChannelAttn(concat, rd_ratio=rd_ratio) if channel_attention else None
        self.fuse = conv_op(concat, channels, 1, bias=conv_bias)
        self.dropout = dropout_op(**(dropout_op_kwargs or {})) if dropout_op is not None else nn.Identity()
        self.norm = norm_op(channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = self.branches(x)
        with_bias = not skip_cancelled_bias(self.norm, self.dropout)
        if self.attention is None:
            fused = convolve(self.fuse, scales, with_bias)
        else:
            fused = gated_pointwise_conv(scales, self.fuse, self.attention.gate_weights(scales), with_bias)
        return normalize(self.norm, self.dropout(fused))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """The branches' maps (outputs, sums, concatenation), the fused output and its norm."""
        voxels = np.prod(input_size, dtype=np.int64)
        total = self.branches.compute_conv_feature_map_size(input_size) + self.channels * voxels
        if not isinstance(self.norm, nn.Identity):
            total += self.channels * voxels
        return np.int64(total)
