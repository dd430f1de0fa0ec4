"""MSFEN decoder: per stage a ``SkipFusion`` (upsample the stage below, fuse the encoder's skip) and residual
multi-scale units; segmentation heads for deep supervision exactly like dynamic_network_architectures'
``UNetDecoder`` (a list, full resolution first, one output per decoder stage; heads always built, so weights
trained with deep supervision load without it).
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from nnunet_msfen.blocks.conv import fast_conv_op
from nnunet_msfen.blocks.layout import as_layout_of
from nnunet_msfen.blocks.recompute import recompute_levels
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.blocks.skip_fusion import SkipFusion
from nnunet_msfen.network.encoder import MSFENEncoder, per_stage


class MSFENDecoder(nn.Module):
    """Decoder stage ``s``: ``SkipFusion(below, skip) -> units``.

    Args:
        encoder: the ``MSFENEncoder`` whose skips this decoder consumes.
        num_classes: output channels of the segmentation heads.
        n_conv_per_stage: convolutions per decoder stage as nnU-Net plans them; a stage gets the skip fusion and
            ``max(1, n - 1)`` multi-scale units.
        deep_supervision: return every stage's segmentation (full resolution first) or only the last one.
        skip_fusion: ``"add"`` or ``"concat"`` (``SkipFusion``).
        fuse_kernel_size: kernel of the skip fusion's convolution; 1 (default) lets the multi-scale units do the
            spatial work, ``None`` uses the planned kernel like ``UNetDecoder``.
        fuse_group_width: channels per group of the skip fusion's convolution (``None``: dense).
        recompute: what the skip fusions and the units recompute in the backward pass: a mode of
            ``blocks/recompute.py`` or one per encoder stage, full resolution first (``recompute_levels``).
        units: multi-scale units in every decoder stage (``False``: a stage is its skip fusion alone, whose
            convolution then is the stage's only spatial operation; pair it with ``fuse_kernel_size=None``).
        block_kwargs: passed to every ``MultiScaleResidualBlock``.
    """

    def __init__(self, encoder: MSFENEncoder, num_classes: int, n_conv_per_stage: Union[int, List[int], Tuple[int, ...]],
                 deep_supervision: bool, skip_fusion: str = "add", fuse_kernel_size: Optional[int] = 1,
                 fuse_group_width: Optional[int] = None,
                 recompute: Union[bool, str, Sequence[Union[bool, str]]] = False, units: bool = True,
                 block_kwargs: dict = None):
        super().__init__()
        self.deep_supervision = deep_supervision
        self.encoder = encoder
        self.num_classes = num_classes
        n_stages_encoder = len(encoder.output_channels)
        n_conv_per_stage = per_stage(n_conv_per_stage, n_stages_encoder - 1, "n_conv_per_stage_decoder")
        recompute = recompute_levels(recompute, n_stages_encoder)
        conv_op = encoder.conv_op
        ops = dict(conv_bias=encoder.conv_bias, norm_op=encoder.norm_op, norm_op_kwargs=encoder.norm_op_kwargs,
                   dropout_op=encoder.dropout_op, dropout_op_kwargs=encoder.dropout_op_kwargs,
                   nonlin=encoder.nonlin, nonlin_kwargs=encoder.nonlin_kwargs)

        fusions, stages, seg_layers = [], [], []
        for s in range(1, n_stages_encoder):
            below, skip = encoder.output_channels[-s], encoder.output_channels[-(s + 1)]
            kernel = encoder.kernel_sizes[-(s + 1)]
            fuse_kernel = kernel if fuse_kernel_size is None else [fuse_kernel_size] * len(kernel)
            fusions.append(SkipFusion(conv_op, below, skip, encoder.strides[-s], mode=skip_fusion,
                                      kernel_size=fuse_kernel, group_width=fuse_group_width,
                                      recompute=recompute[-(s + 1)], **ops))
            unit_kwargs = {**(block_kwargs or {}), "recompute": recompute[-(s + 1)]}
            stages.append(nn.Sequential(*[MultiScaleResidualBlock(conv_op, skip, kernel, **unit_kwargs, **ops)
                                          for _ in range(max(1, n_conv_per_stage[s - 1] - 1) if units else 0)]))
            seg_layers.append(fast_conv_op(conv_op)(skip, num_classes, 1, 1, 0, bias=True))
        self.fusions = nn.ModuleList(fusions)
        self.stages = nn.ModuleList(stages)
        self.seg_layers = nn.ModuleList(seg_layers)

    def forward(self, skips: List[torch.Tensor]):
        lres_input = skips[-1]
        seg_outputs = []
        for s, (fusion, stage) in enumerate(zip(self.fusions, self.stages)):
            skip = skips[-(s + 2)]
            x = stage(fusion(as_layout_of(lres_input, skip), skip))
            if self.deep_supervision:
                seg_outputs.append(self.seg_layers[s](x).contiguous())
            elif s == len(self.stages) - 1:
                seg_outputs.append(self.seg_layers[-1](x).contiguous())
            lres_input = x
        seg_outputs = seg_outputs[::-1]
        return seg_outputs if self.deep_supervision else seg_outputs[0]

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> np.int64:
        """Per stage: the skip fusion's maps, the units' maps and the segmentation head(s). ``input_size`` is the
        encoder's input size."""
        skip_sizes = []
        for stride in self.encoder.strides[:-1]:
            input_size = [i // s for i, s in zip(input_size, stride)]
            skip_sizes.append(input_size)
        output = np.int64(0)
        for s, (fusion, stage) in enumerate(zip(self.fusions, self.stages)):
            size = skip_sizes[-(s + 1)]
            output += fusion.compute_conv_feature_map_size(size)
            for unit in stage:
                output += unit.compute_conv_feature_map_size(size)
            if self.deep_supervision or s == len(self.stages) - 1:
                output += np.prod([self.num_classes, *size], dtype=np.int64)
        return output
