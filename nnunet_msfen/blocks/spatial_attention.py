"""Spatial attention with a sigmoid gate, 2D or 3D through ``conv_op``.

Paper: "CBAM: Convolutional Block Attention Module", S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, ECCV 2018,
https://arxiv.org/abs/1807.06521 (its spatial branch).

In MSFEN it "adjusts the spatial distribution of feature maps by calculating the attention of each position": the
channel-wise mean and max of the features are convolved into one map, gated by a sigmoid, and multiply every
channel. The gate is cheap in parameters (2 * k^d weights) but a k^3 convolution at full resolution is not free in
time, hence the configurable kernel.
"""
from typing import Type

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


class SpatialAttn(nn.Module):
    """``x * sigmoid(conv([mean_c(x), max_c(x)]))``.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``; decides the dimensionality.
        channels: channels of the input (for the memory estimate only).
        kernel_size: odd kernel size of the attention convolution.
        gate_layer: the gate; ``nn.Sigmoid`` as in MSFEN.

    Raises:
        ValueError: for an even or non-positive ``kernel_size`` or a non-positive ``channels``.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, kernel_size: int = 7,
                 gate_layer: Type[nn.Module] = nn.Sigmoid):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got kernel_size={kernel_size}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got channels={channels}")
        self.channels = channels
        self.conv = conv_op(2, 1, kernel_size, padding=kernel_size // 2, bias=True)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(pooled))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Mean/max maps (2), the attention map (1) and the gated output (channels)."""
        return np.prod([self.channels + 3, *input_size], dtype=np.int64)
