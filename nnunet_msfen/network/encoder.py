"""MSFEN encoder: per stage a (strided) convolution followed by residual multi-scale units; a modality-aware stem
in stage 0; spatial pyramid pooling and dropout at the bottleneck.

Exposes the attributes dynamic_network_architectures' encoders have (``output_channels``, ``strides``,
``kernel_sizes``, ``conv_op``, the norm/dropout/nonlin ops), so decoders and nnU-Net utilities can read them.
"""
from typing import List, Sequence, Tuple, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import (convert_conv_op_to_dim, get_matching_dropout,
                                                                  maybe_convert_scalar_to_list)
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.conv import ConvNormAct
from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
from nnunet_msfen.blocks.recompute import recompute_levels
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.blocks.layout import layout_for
from nnunet_msfen.blocks.spp import SpatialPyramidPooling

IntOrSeq = Union[int, List[int], Tuple[int, ...]]


class MSFENEncoder(nn.Module):
    """Returns the skips of every stage (the last one after SPP and dropout) when ``return_skips``, else the
    bottleneck only.

    Stage ``s`` is ``[first, unit * max(1, n_conv_per_stage[s] - 1)]``: ``first`` is a
    ``ConvNormAct`` with the planned kernel and stride (the ``ModalityAwareStem`` in stage 0), each unit a
    ``MultiScaleResidualBlock``. So a plan with 2 convolutions per stage gets one downsampling convolution and one
    multi-scale residual unit per stage, the same depth as nnU-Net's U-Net.

    Args:
        input_channels ... nonlin_kwargs: as ``PlainConvEncoder``'s.
        return_skips: return every stage's output (for a decoder) or only the bottleneck.
        modality_stem: build stage 0's first layer as a ``ModalityAwareStem``.
        cross_modal_attention: weigh the sequences in the stem (only with ``modality_stem``).
        recompute: what the stem and the units recompute in the backward pass: a mode of ``blocks/recompute.py``
            or one per stage (``recompute_levels``).
        downsample_kernel: kernel of each stage's strided convolution: ``"stride"`` (default: the stride itself,
            non-overlapping 2x2(x2) patches, as ConvNeXt and Swin downsample; 4/9 of the planned 3x3 convolution's
            weights and work in 2D, 8/27 in 3D) or ``"planned"`` (nnU-Net's kernel). Stage 0 (stride 1) keeps the
            planned kernel either way.
        spp, spp_bins: spatial pyramid pooling at the bottleneck and its bin sizes.
        bottleneck_dropout: dropout probability at the bottleneck (0 disables it).
        block_kwargs: passed to every ``MultiScaleResidualBlock`` (ablation switches, branch mode, ...).
    """

    def __init__(self, input_channels: int, n_stages: int, features_per_stage: IntOrSeq, conv_op: Type[_ConvNd],
                 kernel_sizes: Union[IntOrSeq, Sequence[IntOrSeq]], strides: Union[IntOrSeq, Sequence[IntOrSeq]],
                 n_conv_per_stage: IntOrSeq, conv_bias: bool = False, norm_op: Type[nn.Module] = None,
                 norm_op_kwargs: dict = None, dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None,
                 nonlin: Type[nn.Module] = None, nonlin_kwargs: dict = None, return_skips: bool = True,
                 nonlin_first: bool = False, modality_stem: bool = True, cross_modal_attention: bool = True,
                 recompute: Union[bool, str, Sequence[Union[bool, str]]] = False, downsample_kernel: str = "stride",
                 spp: bool = True,
                 spp_bins: Sequence[int] = (1, 2, 4), bottleneck_dropout: float = 0.5, block_kwargs: dict = None):
        super().__init__()
        if not 0 <= bottleneck_dropout < 1:
            raise ValueError(f"bottleneck_dropout must be in [0, 1), got bottleneck_dropout={bottleneck_dropout}")
        self.features_per_stage = per_stage(features_per_stage, n_stages, "features_per_stage")
        self.kernel_sizes = [maybe_convert_scalar_to_list(conv_op, k) for k in per_stage(kernel_sizes, n_stages, "kernel_sizes")]
        self.strides = [maybe_convert_scalar_to_list(conv_op, s) for s in per_stage(strides, n_stages, "strides")]
        n_conv_per_stage = per_stage(n_conv_per_stage, n_stages, "n_conv_per_stage")
        first_kernels = downsampling_kernels(self.kernel_sizes, self.strides, downsample_kernel)
        ops = dict(conv_bias=conv_bias, norm_op=norm_op, norm_op_kwargs=norm_op_kwargs, dropout_op=dropout_op,
                   dropout_op_kwargs=dropout_op_kwargs, nonlin=nonlin, nonlin_kwargs=nonlin_kwargs)
        block_kwargs = block_kwargs or {}
        recompute = recompute_levels(recompute, n_stages)

        stages = []
        in_channels = input_channels
        for s, out_channels in enumerate(self.features_per_stage):
            if s == 0 and modality_stem:
                first = ModalityAwareStem(conv_op, in_channels, out_channels, self.kernel_sizes[s], self.strides[s],
                                          cross_modal_attention=cross_modal_attention, recompute=recompute[s], **ops)
            else:
                first = ConvNormAct(conv_op, in_channels, out_channels, first_kernels[s], self.strides[s],
                                            nonlin_first=nonlin_first, **ops)
            units = [MultiScaleResidualBlock(conv_op, out_channels, self.kernel_sizes[s],
                                             **{**block_kwargs, "recompute": recompute[s]}, **ops)
                     for _ in range(max(1, n_conv_per_stage[s] - 1))]
            stages.append(nn.Sequential(first, *units))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)

        bottleneck = []
        if spp:
            bottleneck.append(SpatialPyramidPooling(conv_op, in_channels, spp_bins, norm_op, norm_op_kwargs, nonlin, nonlin_kwargs))
        if bottleneck_dropout > 0:
            # get_matching_dropout(conv_op=...) asserts on the dimension before converting conv_op: pass the dimension
            bottleneck.append(get_matching_dropout(dimension=convert_conv_op_to_dim(conv_op))(p=bottleneck_dropout))
        self.bottleneck = nn.Sequential(*bottleneck)

        self.output_channels = self.features_per_stage
        self.return_skips = return_skips
        self.conv_op, self.conv_bias = conv_op, conv_bias
        self.norm_op, self.norm_op_kwargs = norm_op, norm_op_kwargs
        self.dropout_op, self.dropout_op_kwargs = dropout_op, dropout_op_kwargs
        self.nonlin, self.nonlin_kwargs = nonlin, nonlin_kwargs

    def forward(self, x: torch.Tensor):
        skips = []
        for stage, stride in zip(self.stages, self.strides):
            x = stage(layout_for(x, stride))
            skips.append(x)
        skips[-1] = self.bottleneck(skips[-1])
        return skips if self.return_skips else skips[-1]

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Every stage's maps, then the bottleneck's (SPP and the dropout output)."""
        output = np.int64(0)
        for stage, stride in zip(self.stages, self.strides):
            output += stage[0].compute_conv_feature_map_size(input_size)
            input_size = [i // s for i, s in zip(input_size, stride)]
            for unit in stage[1:]:
                output += unit.compute_conv_feature_map_size(input_size)
        for module in self.bottleneck:
            if isinstance(module, SpatialPyramidPooling):
                output += module.compute_conv_feature_map_size(input_size)
            else:
                output += np.prod([self.output_channels[-1], *input_size], dtype=np.int64)
        return output


DOWNSAMPLE_KERNELS = ("stride", "planned")


def downsampling_kernels(kernel_sizes: Sequence[List[int]], strides: Sequence[List[int]], mode: str) -> List[List[int]]:
    """The kernel of each stage's first convolution: the planned one, or with ``mode="stride"`` the stride itself in
    every stage that downsamples (``ValueError`` naming an unknown ``mode``)."""
    if mode not in DOWNSAMPLE_KERNELS:
        raise ValueError(f"downsample_kernel must be one of {DOWNSAMPLE_KERNELS}, got downsample_kernel={mode!r}")
    if mode == "planned":
        return [list(k) for k in kernel_sizes]
    return [list(s) if max(s) > 1 else list(k) for k, s in zip(kernel_sizes, strides)]


def per_stage(value, n_stages: int, name: str) -> list:
    """Expand a scalar to one entry per stage; check the length of a sequence (``ValueError`` naming ``name``)."""
    if isinstance(value, int):
        return [value] * n_stages
    value = list(value)
    if len(value) != n_stages:
        raise ValueError(f"{name} must have one entry per stage (n_stages={n_stages}), got {name}={value}")
    return value
