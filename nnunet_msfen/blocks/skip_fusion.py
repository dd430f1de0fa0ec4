"""A decoder stage's entry: upsample the stage below and fuse it with the encoder's skip.

Two forms, both linear in what they combine before the norm:

- ``"add"`` (default): ``nonlin(norm(transpconv(below) + project(skip)))``. A 1x1 projection of the skip added to
  the upsampled map: FPN's lateral connection (T.-Y. Lin et al., "Feature Pyramid Networks for Object Detection",
  CVPR 2017, https://arxiv.org/abs/1612.03144).
- ``"concat"`` (the 0.1.0 form, U-Net's): ``nonlin(norm(fuse(cat(transpconv(below), skip))))`` with a 1x1 ``fuse``.

With a 1x1 fusion the two compute the same family of functions (``fuse`` restricted to the upsampled half is a
linear map after a linear ``transpconv``, so one transposed convolution can absorb it), but ``"add"`` never
materialises the concatenation nor the extra upsampled copy: two full-resolution maps fewer per decoder stage.
"""
from typing import Optional, Sequence, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.conv import convolve, upsample
from nnunet_msfen.blocks.norm import skip_cancelled_bias, normalize
from nnunet_msfen.blocks.recompute import recompute_mode, recomputed

SKIP_FUSIONS = ("add", "concat")


class SkipFusion(nn.Module):
    """``below`` (``below_channels``, coarse) and ``skip`` (``channels``, fine) -> ``channels`` maps at the skip's size.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        below_channels, channels: channels of the coarser input and of the skip (= output).
        stride: the encoder stride between the two (the transposed convolution's kernel and stride).
        mode: ``"add"`` or ``"concat"`` (module docstring).
        kernel_size: kernel of the skip projection (``"add"``) or of the fusion (``"concat"``); 1 by default.
        group_width: channels per group of the skip projection (``"add"`` only; ``None``: dense, 1: depthwise). A
            grouped 3x3 gives the fusion spatial context at a fraction of a dense one's time. ``"concat"`` stays
            dense: its groups would split the upsampled map from the skip.
        recompute: what the backward pass recomputes instead of storing (``blocks/recompute.py``).
        conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: as in
            dynamic_network_architectures (class + kwargs, ``None`` skips the layer).

    Raises:
        ValueError: for an unknown ``mode``, an even ``kernel_size``, or a ``group_width`` that does not divide
            ``channels`` or comes with ``"concat"``.
    """

    def __init__(self, conv_op: Type[_ConvNd], below_channels: int, channels: int, stride: Sequence[int],
                 mode: str = "add", kernel_size: Optional[Sequence[int]] = None, group_width: Optional[int] = None,
                 recompute: Union[bool, str] = False,
                 conv_bias: bool = False, norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None,
                 dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None, nonlin: Type[nn.Module] = None,
                 nonlin_kwargs: dict = None):
        super().__init__()
        if mode not in SKIP_FUSIONS:
            raise ValueError(f"mode must be one of {SKIP_FUSIONS}, got mode={mode!r}")
        kernel = [1] * len(stride) if kernel_size is None else [int(k) for k in kernel_size]
        if any(k < 1 or k % 2 == 0 for k in kernel):
            raise ValueError(f"kernel_size must be odd, got kernel_size={kernel_size}")
        padding = [(k - 1) // 2 for k in kernel]
        if group_width is not None and mode != "add":
            raise ValueError(f"group_width applies to mode='add' only, got group_width={group_width} with mode={mode!r}")
        width = channels if group_width is None else min(int(group_width), channels)
        if width < 1 or channels % width:
            raise ValueError(f"group_width must be >= 1 and divide channels={channels}, got group_width={group_width}")
        self.mode, self.channels, self.recompute = mode, channels, recompute_mode(recompute)
        self.upsample = get_matching_convtransp(conv_op=conv_op)(below_channels, channels, stride, stride, bias=conv_bias)
        in_channels = channels if mode == "add" else 2 * channels
        self.fuse = conv_op(in_channels, channels, kernel, padding=padding, groups=channels // width,
                            bias=conv_bias and mode == "concat")
        self.dropout = dropout_op(**(dropout_op_kwargs or {})) if dropout_op is not None else nn.Identity()
        self.norm = norm_op(channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()
        self.nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()

    def _fusion(self, below: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        with_bias = not skip_cancelled_bias(self.norm, self.dropout)
        if self.mode == "add":
            fused = upsample(self.upsample, below, add=convolve(self.fuse, skip, with_bias), with_bias=with_bias)
        else:
            fused = convolve(self.fuse, torch.cat((upsample(self.upsample, below), skip), dim=1), with_bias)
        return self.nonlin(normalize(self.norm, self.dropout(fused)))

    def forward(self, below: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return recomputed(self, self._fusion, below, skip)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """At the skip's ``input_size``: the upsampled map, the projected skip and their sum (``"add"``) or the
        concatenation (2 x) and the fusion output (``"concat"``), and the norm."""
        maps = 4 if self.mode == "add" else 5
        if isinstance(self.norm, nn.Identity):
            maps -= 1
        return np.prod([maps * self.channels, *input_size], dtype=np.int64)
