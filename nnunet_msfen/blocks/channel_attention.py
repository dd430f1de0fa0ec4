"""Channel attention with a sigmoid gate (squeeze-and-excitation), for any number of spatial dimensions.

Paper: "Squeeze-and-Excitation Networks", J. Hu, L. Shen, G. Sun, CVPR 2018, https://arxiv.org/abs/1709.01507

In MSFEN this is the "dynamic weight fusion" of the scales: the branches of a multi-scale block are concatenated
and every channel of every scale gets a gate in (0, 1) computed from the global context of all scales together,
so the network learns per case how much each receptive field contributes.

Pools over ``range(2, x.ndim)``: the same module is global pooling in 2D and 3D (a ``mean((2, 3))`` would not be).
"""
from typing import Optional, Type

import numpy as np
import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor`` (timm's rule: never more than 10% below ``value``)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


class ChannelAttn(nn.Module):
    """Squeeze-and-excitation channel gate: ``x * sigmoid(fc2(act(fc1(mean(x)))))``.

    Args:
        channels: number of input (= output) channels.
        rd_ratio: bottleneck width of the gate's MLP relative to ``channels``.
        rd_channels: bottleneck width; overrides ``rd_ratio`` when given.
        rd_divisor: the bottleneck width is rounded to a multiple of this.
        act_layer: activation between the two layers of the gate's MLP.
        gate_layer: the gate; ``nn.Sigmoid`` as in MSFEN.

    Raises:
        ValueError: for a non-positive ``channels``, ``rd_channels`` or ``rd_divisor`` or ``rd_ratio`` outside (0, 1].
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 4, rd_channels: Optional[int] = None,
                 rd_divisor: int = 8, act_layer: Type[nn.Module] = nn.ReLU, gate_layer: Type[nn.Module] = nn.Sigmoid):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got channels={channels}")
        if not 0 < rd_ratio <= 1:
            raise ValueError(f"rd_ratio must be in (0, 1], got rd_ratio={rd_ratio}")
        if rd_divisor < 1:
            raise ValueError(f"rd_divisor must be >= 1, got rd_divisor={rd_divisor}")
        if rd_channels is None:
            rd_channels = min(channels, make_divisible(channels * rd_ratio, rd_divisor))
        if rd_channels < 1:
            raise ValueError(f"rd_channels must be >= 1, got rd_channels={rd_channels}")
        self.channels = channels
        self.fc1 = nn.Linear(channels, rd_channels)
        self.act = act_layer()
        self.fc2 = nn.Linear(rd_channels, channels)
        self.gate = gate_layer()

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (batch, channels) gates in (0, 1), from the global context of ``x``. A following pointwise
        convolution can take them as per-sample weights instead of ``x`` being multiplied (``gated_pointwise_conv``)."""
        context = x.mean(dim=tuple(range(2, x.ndim)))
        return self.gate(self.fc2(self.act(self.fc1(context))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate_weights(x)
        return x * weights.view(*weights.shape, *([1] * (x.ndim - 2)))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Elements of the gated output (the pooled vectors are negligible)."""
        return np.prod([self.channels, *input_size], dtype=np.int64)
