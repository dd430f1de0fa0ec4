"""MSFEN decoder: transposed-convolution upsampling, skip concatenation, a fusion convolution and residual
multi-scale units per stage; segmentation heads for deep supervision exactly like dynamic_network_architectures'
``UNetDecoder`` (a list, full resolution first, one output per decoder stage; heads always built, so weights
trained with deep supervision load without it).
"""
from typing import List, Tuple, Union

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import get_matching_convtransp
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from torch import nn

from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.network.encoder import MSFENEncoder, _per_stage


class MSFENDecoder(nn.Module):
    """Decoder stage ``s``: ``transpconv(below) ++ skip -> ConvDropoutNormReLU(fuse_kernel_size) -> units``.

    Args:
        encoder: the ``MSFENEncoder`` whose skips this decoder consumes.
        num_classes: output channels of the segmentation heads.
        n_conv_per_stage: convolutions per decoder stage as nnU-Net plans them; a stage gets the fusion
            convolution and ``max(1, n - 1)`` multi-scale units.
        deep_supervision: return every stage's segmentation (full resolution first) or only the last one.
        fuse_kernel_size: kernel of the fusion convolution; 1 (default) lets the multi-scale unit do the spatial
            work, ``None`` uses the planned kernel like ``UNetDecoder``.
        nonlin_first: passed to the fusion convolution.
        block_kwargs: passed to every ``MultiScaleResidualBlock``.
    """

    def __init__(self, encoder: MSFENEncoder, num_classes: int, n_conv_per_stage: Union[int, List[int], Tuple[int, ...]],
                 deep_supervision: bool, fuse_kernel_size: int = 1, nonlin_first: bool = False,
                 block_kwargs: dict = None):
        super().__init__()
        self.deep_supervision = deep_supervision
        self.encoder = encoder
        self.num_classes = num_classes
        n_stages_encoder = len(encoder.output_channels)
        n_conv_per_stage = _per_stage(n_conv_per_stage, n_stages_encoder - 1, "n_conv_per_stage_decoder")
        conv_op = encoder.conv_op
        transpconv_op = get_matching_convtransp(conv_op=conv_op)
        ops = dict(conv_bias=encoder.conv_bias, norm_op=encoder.norm_op, norm_op_kwargs=encoder.norm_op_kwargs,
                   dropout_op=encoder.dropout_op, dropout_op_kwargs=encoder.dropout_op_kwargs,
                   nonlin=encoder.nonlin, nonlin_kwargs=encoder.nonlin_kwargs)

        stages, transpconvs, seg_layers = [], [], []
        for s in range(1, n_stages_encoder):
            below, skip = encoder.output_channels[-s], encoder.output_channels[-(s + 1)]
            stride = encoder.strides[-s]
            kernel = encoder.kernel_sizes[-(s + 1)]
            transpconvs.append(transpconv_op(below, skip, stride, stride, bias=encoder.conv_bias))
            fuse = ConvDropoutNormReLU(conv_op, 2 * skip, skip, kernel if fuse_kernel_size is None else fuse_kernel_size,
                                       1, nonlin_first=nonlin_first, **ops)
            units = [MultiScaleResidualBlock(conv_op, skip, kernel, **(block_kwargs or {}), **ops)
                     for _ in range(max(1, n_conv_per_stage[s - 1] - 1))]
            stages.append(nn.Sequential(fuse, *units))
            seg_layers.append(conv_op(skip, num_classes, 1, 1, 0, bias=True))
        self.stages = nn.ModuleList(stages)
        self.transpconvs = nn.ModuleList(transpconvs)
        self.seg_layers = nn.ModuleList(seg_layers)

    def forward(self, skips: List[torch.Tensor]):
        lres_input = skips[-1]
        seg_outputs = []
        for s, stage in enumerate(self.stages):
            x = stage(torch.cat((self.transpconvs[s](lres_input), skips[-(s + 2)]), 1))
            if self.deep_supervision:
                seg_outputs.append(self.seg_layers[s](x))
            elif s == len(self.stages) - 1:
                seg_outputs.append(self.seg_layers[-1](x))
            lres_input = x
        seg_outputs = seg_outputs[::-1]
        return seg_outputs if self.deep_supervision else seg_outputs[0]

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Per stage: the transposed conv output, the concatenation, the stage's maps and the segmentation head(s).
        ``input_size`` is the encoder's input size."""
        skip_sizes = []
        for stride in self.encoder.strides[:-1]:
            input_size = [i // s for i, s in zip(input_size, stride)]
            skip_sizes.append(input_size)
        output = np.int64(0)
        for s, stage in enumerate(self.stages):
            size = skip_sizes[-(s + 1)]
            channels = self.encoder.output_channels[-(s + 2)]
            output += 3 * np.prod([channels, *size], dtype=np.int64)  # transpconv output + concat (2x)
            for module in stage:
                output += module.compute_conv_feature_map_size(size)
            if self.deep_supervision or s == len(self.stages) - 1:
                output += np.prod([self.num_classes, *size], dtype=np.int64)
        return output
