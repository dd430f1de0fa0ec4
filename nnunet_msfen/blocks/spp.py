"""Spatial pyramid pooling for the bottleneck, 2D or 3D through ``conv_op``.

Papers: "Spatial Pyramid Pooling in Deep Convolutional Networks for Visual Recognition", K. He et al., ECCV 2014,
https://arxiv.org/abs/1406.4729; the segmentation form (pool, project, upsample, concatenate) is PSPNet's:
"Pyramid Scene Parsing Network", H. Zhao et al., CVPR 2017, https://arxiv.org/abs/1612.01105.

MSFEN puts it at the bottleneck, where it gives every position the context of the whole patch (bin 1) and of its
quadrants/octants (bins 2, 4) at a cost of a few small 1x1 convolutions.

Under ONNX export (and ``torch.compile``) the adaptive average pooling runs as products with pooling matrices
(``adaptive_pool_matrix``) and the nearest upsampling as gathers (``nearest_upsample``): the same windows, weights
and source voxels, but operators that ONNX has for any size (ONNX's export of ``adaptive_avg_pool`` needs the bin to
divide the input, and its Resize picks other source voxels, for sizes nnU-Net's plans do produce: a 2d BraTS plan
ends on a 6 x 5 bottleneck).
"""
from typing import Sequence, Type

import numpy as np
import torch
import torch.nn.functional as F
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd

from nnunet_msfen.blocks.norm import normalize
from nnunet_msfen.blocks.tracing import tracing


def adaptive_pool_matrix(length: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, length) matrix whose row i averages the window ``floor(i L / b) ... ceil((i + 1) L / b)`` of
    PyTorch's adaptive average pooling."""
    rows = np.zeros((bins, length), np.float32)  # built in NumPy: a constant for a tracer, not in-place ops
    for i in range(bins):
        start, stop = (i * length) // bins, -((-(i + 1) * length) // bins)
        rows[i, start:stop] = 1.0 / (stop - start)
    return torch.from_numpy(rows).to(dtype=like.dtype, device=like.device)


def nearest_upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="nearest")`` as one gather per spatial axis (source index
    ``floor(i * in / out)``, PyTorch's rule; ONNX's Resize rounds differently for sizes that do not divide)."""
    for axis, out in zip(range(2, x.ndim), size):
        index = torch.arange(int(out), device=x.device) * x.shape[axis] // int(out)
        x = x.index_select(axis, index)
    return x


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_poolNd(x, bins)`` as one matrix product per spatial axis (ONNX-exportable for any size)."""
    last = x.ndim - 1  # positive axes only: ONNX's Transpose takes no negative permutation
    for axis in range(2, x.ndim):
        pooled = torch.movedim(x, axis, last) @ adaptive_pool_matrix(x.shape[axis], bins, x).T
        x = torch.movedim(pooled, last, axis)
    return x


class SpatialPyramidPooling(nn.Module):
    """``fuse([x, up(proj(avgpool_b(x))) for b in bins])``: adaptive average pooling to each bin size, a 1x1
    projection, upsampling back to the input size, concatenation with the input and a 1x1 fusion (+ norm, nonlin).

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        channels: input and output channels.
        bins: output sizes of the adaptive pools (per axis).
        norm_op, norm_op_kwargs, nonlin, nonlin_kwargs: applied after the fusion (class + kwargs, ``None`` skips).

    Raises:
        ValueError: for empty or non-positive ``bins`` or a non-positive ``channels``.
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, bins: Sequence[int] = (1, 2, 4),
                 norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None,
                 nonlin: Type[nn.Module] = None, nonlin_kwargs: dict = None):
        super().__init__()
        bins = tuple(int(b) for b in bins)
        if not bins or min(bins) < 1:
            raise ValueError(f"bins must be a non-empty sequence of positive sizes, got bins={bins}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got channels={channels}")
        self.channels, self.bins = channels, bins
        self.branch_channels = max(1, channels // len(bins))
        self.pool_fn = {2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[convert_conv_op_to_dim(conv_op)]
        self.projections = nn.ModuleList([conv_op(channels, self.branch_channels, 1, bias=True) for _ in bins])
        self.fuse = conv_op(channels + len(bins) * self.branch_channels, channels, 1, bias=False)
        self.norm = norm_op(channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()
        self.nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        if tracing():
            pyramid = [x] + [nearest_upsample(proj(adaptive_avg_pool(x, b)), size)
                             for b, proj in zip(self.bins, self.projections)]
        else:
            pyramid = [x] + [F.interpolate(proj(self.pool_fn(x, b)), size=size, mode="nearest")
                             for b, proj in zip(self.bins, self.projections)]
        return self.nonlin(normalize(self.norm, self.fuse(torch.cat(pyramid, dim=1))))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Upsampled branches, the concatenation, the fusion output and its norm (pooled maps are tiny)."""
        voxels = np.prod(input_size, dtype=np.int64)
        upsampled = len(self.bins) * self.branch_channels * voxels
        concat = (self.channels + len(self.bins) * self.branch_channels) * voxels
        fused = self.channels * voxels * (1 if isinstance(self.norm, nn.Identity) else 2)
        return np.int64(upsampled + concat + fused)
