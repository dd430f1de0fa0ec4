"""The residual multi-scale unit every MSFEN stage is built from.

Method: MSFEN (Y. Wang), sec. 2.1-2.2: multi-scale extraction, channel attention, spatial attention and "the deep
residual framework"; the residual form is ResNet's, "Deep Residual Learning for Image Recognition", K. He et al.,
CVPR 2016, https://arxiv.org/abs/1512.03385.

    x -> MultiScaleConv (or a plain conv when multi_scale=False) -> f;  out = nonlin(x + f * SpatialAttn.gate(f))

The gating and the skip run as one pass (``SpatialAttn.apply_gate``). With ``recompute`` the unit keeps only its
input and output for the backward pass and recomputes its inside there (``torch.utils.checkpoint``): a unit's
intermediates are several full-resolution maps, which made the 0.1.0 MSFEN need 1.7x the training memory of nnU-Net's
U-Net, and its cheap convolutions make the recomputation cost little time (docs/ablation.md).
"""
from typing import Sequence, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.conv import ConvNormAct
from nnunet_msfen.blocks.multiscale import MultiScaleConv
from nnunet_msfen.blocks.recompute import recompute_mode, recomputed
from nnunet_msfen.blocks.spatial_attention import SpatialAttn


class MultiScaleResidualBlock(nn.Module):
    """One residual unit: multi-scale features, spatial attention, identity skip, nonlinearity.

    Input and output have ``channels`` channels and the same spatial size.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        channels: input and output channels.
        kernel_size: the stage's planned kernel; its axes of size 1 stay unconvolved in the multi-scale branches and
            the spatial attention, and it is the kernel of the plain convolution that replaces them when
            ``multi_scale=False``.
        multi_scale: use ``MultiScaleConv``; ``False`` gives a plain conv + norm (ablation).
        scale_kernel_sizes, branch_mode, group_width, channel_attention: passed to ``MultiScaleConv``.
        spatial_attention: gate the unit's features with ``SpatialAttn`` before the skip is added.
        spatial_attention_kernel: kernel size of the spatial attention.
        residual: add the identity skip (``False``: ablation without residual connections).
        recompute: what the backward pass recomputes instead of storing: ``"none"``, ``"cheap"`` or ``"all"``
            (``blocks/recompute.py``).
        conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: as in
            dynamic_network_architectures (class + kwargs, ``None`` skips the layer).
    """

    def __init__(self, conv_op: Type[_ConvNd], channels: int, kernel_size: Sequence[int] = None,
                 multi_scale: bool = True, scale_kernel_sizes: Sequence[int] = (3, 5, 7), branch_mode: str = "hierarchical",
                 group_width: int = 16, channel_attention: bool = True, spatial_attention: bool = True,
                 spatial_attention_kernel: int = 7, residual: bool = True, recompute: Union[bool, str] = False,
                 conv_bias: bool = False, norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None,
                 dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None, nonlin: Type[nn.Module] = None,
                 nonlin_kwargs: dict = None):
        super().__init__()
        ops = dict(conv_bias=conv_bias, norm_op=norm_op, norm_op_kwargs=norm_op_kwargs, dropout_op=dropout_op,
                   dropout_op_kwargs=dropout_op_kwargs)
        if kernel_size is None:
            kernel_size = [3] * convert_conv_op_to_dim(conv_op)
        active_axes = [k > 1 for k in kernel_size]
        if multi_scale:
            self.features = MultiScaleConv(conv_op, channels, scale_kernel_sizes, mode=branch_mode,
                                           group_width=group_width, active_axes=active_axes,
                                           channel_attention=channel_attention, **ops)
        else:
            self.features = ConvNormAct(conv_op, channels, channels, kernel_size, 1, **ops)
        self.spatial_attention = SpatialAttn(conv_op, channels, [spatial_attention_kernel if a else 1 for a in active_axes]) \
            if spatial_attention else None
        self.residual = residual
        self.recompute = recompute_mode(recompute)
        self.nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()
        self.channels = channels

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        if self.spatial_attention is not None:
            out = self.spatial_attention.apply_gate(out, x if self.residual else None)
        elif self.residual:
            out = out + x
        return self.nonlin(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return recomputed(self, self._unit, x)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """The features' own maps, the spatial attention's, and the sum of the skip (what a forward pass
        allocates; ``recompute`` frees most of it before the backward pass, which the planner's calibration
        accounts for)."""
        total = self.features.compute_conv_feature_map_size(input_size)
        if self.spatial_attention is not None:
            total += self.spatial_attention.compute_conv_feature_map_size(input_size)
        if self.residual:
            total += np.prod([self.channels, *input_size], dtype=np.int64)
        return np.int64(total)
