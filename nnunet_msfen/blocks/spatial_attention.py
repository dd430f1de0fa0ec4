"""Spatial attention with a sigmoid gate, 2D or 3D through ``conv_op``.

Paper: "CBAM: Convolutional Block Attention Module", S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, ECCV 2018,
https://arxiv.org/abs/1807.06521 (its spatial branch).

In MSFEN it "adjusts the spatial distribution of feature maps by calculating the attention of each position": the
channel-wise mean and max of the features are convolved into one map, gated by a sigmoid, and multiply every
channel. The gate is cheap in parameters (2 * k^d weights) but a k^3 convolution at full resolution is not free in
time, hence the configurable kernel; a kernel of 1 along an axis keeps the attention in-plane there (nnU-Net plans
kernels of 1 along the coarse axis of anisotropic data).

``apply_gate(features, skip)`` computes ``skip + features * gate`` (a residual unit's output) in one pass. In CPU
training it is one autograd function with its own backward pass (``_GateAndSkip``): autograd's graph of the same
ops writes five full-resolution maps in the backward pass (the gradients of the product, of the channel mean and of
the channel maximum, and two sums of them), the function two, and its forward pass takes the channel maximum
without indices (``amax``: 3.5 against 30 ms for 12 x 32 x 192^2 on the CPU; with indices, PyTorch's reduction
over the channel axis of an NC(D)HW tensor is the slowest op of the block). Forward and backward of the gate and
skip on 12 x 32 x 192^2: 93 against 63 ms; the 2d training step 6% faster (2-core AMD EPYC with AVX-512, torch 2.14,
docs/ablation.md section 26). The gradients are autograd's of ``amax``: a tie shares the gradient equally.
"""
from typing import Optional, Sequence, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_msfen.blocks.conv import conv_nd, convolve
from nnunet_msfen.blocks.layout import channels_last_format
from nnunet_msfen.blocks.tracing import tracing


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
        """The (batch, 1, *spatial) gate. With gradients the channel maximum is ``max`` with indices, whose
        backward pass scatters into the stored indices instead of comparing the whole input with the maximum again
        (2 x 32 x 64^3, forward and backward: 43 against 100 ms on the CPU; the two differ only in how a tie shares
        its gradient); without, ``amax``, whose forward is the faster one (1 x 32 x 64^3: 0.9 against 8.8 ms)."""
        trains = torch.is_grad_enabled() and x.requires_grad
        maximum = x.max(dim=1, keepdim=True).values if trains else x.amax(dim=1, keepdim=True)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), maximum], dim=1)
        return self.gate(convolve(self.conv, pooled))

    def apply_gate(self, features: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``skip + features * gate_map(features)`` (without ``skip``: the gated features); in CPU training one
        autograd function (module docstring)."""
        if _fused_applies(self, features):
            return _GateAndSkip.apply(features, skip, self.conv.weight, self.conv.bias, self.conv.padding)
        gate = self.gate_map(features)
        return features * gate if skip is None else torch.addcmul(skip, features, gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply_gate(x)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Mean/max maps (2), the attention map (1) and the gated output (channels)."""
        return np.prod([self.channels + 3, *input_size], dtype=np.int64)


def _fused_applies(attn: SpatialAttn, features: torch.Tensor) -> bool:
    """CPU training of the sigmoid gate, not under autocast or a compiler: where ``_GateAndSkip`` was measured."""
    return torch.is_grad_enabled() and features.requires_grad and features.device.type == "cpu" \
        and type(attn.gate) is nn.Sigmoid and not tracing() and not torch.is_autocast_enabled("cpu")


def _conv_layout(x: torch.Tensor) -> torch.Tensor:
    # oneDNN's backward pass of a convolution with few input channels is 2-5x faster on channels-last data
    # (blocks/conv.py); the pooled map has two
    return x.contiguous(memory_format=channels_last_format(x.ndim))


class _GateAndSkip(torch.autograd.Function):
    """``skip + f * sigmoid(conv([mean_c f, amax_c f]))`` with a backward pass that writes two full-size maps."""

    @staticmethod
    def forward(ctx, features, skip, weight, bias, padding):
        maximum = features.amax(dim=1, keepdim=True)
        pooled = _conv_layout(torch.cat([features.mean(dim=1, keepdim=True), maximum], dim=1))
        gate = torch.sigmoid(conv_nd(pooled, weight, bias, 1, padding)).contiguous()
        ctx.save_for_backward(features, gate, maximum, pooled, weight)
        ctx.padding, ctx.has_skip, ctx.has_bias = list(padding), skip is not None, bias is not None
        return features * gate if skip is None else torch.addcmul(skip, features, gate)

    @staticmethod
    def backward(ctx, grad):
        features, gate, maximum, pooled, weight = ctx.saved_tensors
        ones, zeros = [1] * (features.ndim - 2), [0] * (features.ndim - 2)
        # through the product: the gate's gradient is the per-position dot product of grad and features
        grad_logits = torch.linalg.vecdot(grad, features, dim=1).unsqueeze(1).mul_(gate * (1 - gate))
        grad_pooled, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            _conv_layout(grad_logits), pooled, weight, [weight.shape[0]], ones, ctx.padding, ones, False, zeros, 1,
            [True, True, ctx.has_bias])
        grad_pooled = grad_pooled.contiguous()
        grad_mean, grad_max = grad_pooled[:, :1] / features.shape[1], grad_pooled[:, 1:]
        is_max = features == maximum
        if is_max.count_nonzero() != maximum.numel():  # a tie: share its gradient equally, as amax's backward does
            grad_max = grad_max / is_max.sum(dim=1, keepdim=True, dtype=grad_max.dtype)
        grad_features = torch.where(is_max, grad_mean + grad_max, grad_mean).addcmul_(grad, gate)
        return grad_features, grad if ctx.has_skip else None, grad_weight, grad_bias, None
