"""Modality-aware input stem: features per MRI sequence first, then cross-modal attention that learns how much each
sequence contributes, then a pointwise fusion. 2D or 3D through ``conv_op``.

Method: MSFEN (Y. Wang), sec. 1: "cross-modal attention mechanism and dynamic weight fusion" to exploit the
complementarity of T1, T1ce, T2 and FLAIR instead of "simple feature stitching". The attention is
squeeze-and-excitation (Hu et al., CVPR 2018) applied to whole sequences rather than to channels.

A plain first convolution mixes the sequences in its very first multiply-add. Here each sequence gets its own
``features_per_modality`` maps (a grouped convolution, one group per sequence); a small MLP on the pooled
features of all sequences gives one softmax weight per sequence and case (scaled so that equal weights are 1),
which scales that sequence's maps before the 1x1 fusion. The weights are a readable by-product:
``last_modality_weights`` holds them after every forward pass.

Missing sequences: an input channel that is zero over the whole patch counts as absent (a missing sequence filled
with zeros stays zero through nnU-Net's z-score normalisation). Its weight is zero and the softmax runs over the
present sequences only (a masked softmax, still summing to ``input_channels``), so an absent sequence contributes
nothing, not the constant its per-sequence norm would turn zeros into. Each case of a batch has its own set; a case
with no channel at all (a patch of pure background) counts every channel present. Without the cross-modal
attention the absent sequences' maps are still masked out before the fusion.

The weighting and the fusion run as one convolution with per-sample weights (``gated_pointwise_conv``), and with
``recompute`` the stem keeps only its input and output for the backward pass: it works at full resolution with
more maps than the first stage has channels, so its intermediates were among the largest tensors of a step.
"""
from typing import Type, Union, List, Tuple

import numpy as np
import torch
from dynamic_network_architectures.building_blocks.helper import maybe_convert_scalar_to_list
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.conv import convolve, gated_pointwise_conv
from nnunet_msfen.blocks.norm import skip_cancelled_bias, normalize
from nnunet_msfen.blocks.recompute import recompute_mode, recomputed


class ModalityAwareStem(nn.Module):
    """Per-modality convolution -> cross-modal attention -> 1x1 fusion -> norm -> nonlin.

    Args:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        input_channels: number of MRI sequences (image channels).
        output_channels: channels of the stem output.
        kernel_size, stride: of the per-modality convolution (the stage's planned kernel and stride).
        features_per_modality: maps per sequence; default ``ceil(output_channels / input_channels)``.
        cross_modal_attention: weigh the sequences (``False``: fuse them unweighted, for ablations).
        rd_channels: hidden width of the attention MLP.
        recompute: what the backward pass recomputes instead of storing (``blocks/recompute.py``).
        conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: as in
            dynamic_network_architectures (class + kwargs, ``None`` skips the layer).

    Raises:
        ValueError: for non-positive channel counts or ``features_per_modality``.
    """

    def __init__(self, conv_op: Type[_ConvNd], input_channels: int, output_channels: int,
                 kernel_size: Union[int, List[int], Tuple[int, ...]] = 3,
                 stride: Union[int, List[int], Tuple[int, ...]] = 1, features_per_modality: int = None,
                 cross_modal_attention: bool = True, rd_channels: int = 16, recompute: Union[bool, str] = False,
                 conv_bias: bool = False,
                 norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None,
                 dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None,
                 nonlin: Type[nn.Module] = None, nonlin_kwargs: dict = None):
        super().__init__()
        if input_channels < 1 or output_channels < 1:
            raise ValueError(f"input_channels and output_channels must be >= 1, got input_channels="
                             f"{input_channels}, output_channels={output_channels}")
        if features_per_modality is None:
            features_per_modality = -(-output_channels // input_channels)
        if features_per_modality < 1:
            raise ValueError(f"features_per_modality must be >= 1, got features_per_modality={features_per_modality}")
        kernel_size = maybe_convert_scalar_to_list(conv_op, kernel_size)
        self.stride = maybe_convert_scalar_to_list(conv_op, stride)
        self.input_channels, self.output_channels = input_channels, output_channels
        self.features_per_modality = features_per_modality
        hidden = input_channels * features_per_modality

        self.per_modality = conv_op(input_channels, hidden, kernel_size, self.stride,
                                    padding=[(k - 1) // 2 for k in kernel_size], groups=input_channels, bias=conv_bias)
        self.per_modality_norm = norm_op(hidden, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()
        self.per_modality_nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()
        self.attention = nn.Sequential(nn.Linear(hidden, rd_channels), nn.ReLU(),
                                       nn.Linear(rd_channels, input_channels)) if cross_modal_attention else None
        self.fuse = conv_op(hidden, output_channels, 1, bias=conv_bias)
        self.dropout = dropout_op(**(dropout_op_kwargs or {})) if dropout_op is not None else nn.Identity()
        self.norm = norm_op(output_channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()
        self.nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()
        self.last_modality_weights = None
        self.recompute = recompute_mode(recompute)

    @staticmethod
    def present_modalities(x: torch.Tensor) -> torch.Tensor:
        """(batch, channels) booleans: the channel is not zero everywhere in the patch. A case without any
        non-zero channel counts all as present."""
        present = x.detach().flatten(2).abs().amax(dim=2) > 0
        return present | ~present.any(dim=1, keepdim=True)

    def modality_weights(self, features: torch.Tensor, present: torch.Tensor = None) -> torch.Tensor:
        """(batch, input_channels) weights that sum to ``input_channels`` per case, 0 for absent sequences
        (``present``: from ``present_modalities``; ``None``: all present)."""
        context = features.mean(dim=tuple(range(2, features.ndim)))
        if present is not None:  # an absent sequence's maps (constants after its norm) must not sway the others
            context = context * present.repeat_interleave(self.features_per_modality, dim=1).to(context.dtype)
        logits = self.attention(context)
        if present is not None:
            logits = logits.masked_fill(~present, float("-inf"))
        return torch.softmax(logits, dim=1) * self.input_channels

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        present = self.present_modalities(x)
        features = self.per_modality_nonlin(normalize(self.per_modality_norm, convolve(self.per_modality, x)))
        if self.attention is None:
            weights = present.to(features.dtype)
        else:
            weights = self.modality_weights(features, present)
            self.last_modality_weights = weights.detach()
        fused = gated_pointwise_conv(features, self.fuse, weights.repeat_interleave(self.features_per_modality, dim=1),
                                     with_bias=not skip_cancelled_bias(self.norm, self.dropout))
        return self.nonlin(normalize(self.norm, self.dropout(fused)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return recomputed(self, self._stem, x)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Per-modality maps and their norm, the fusion output and its norm."""
        voxels = np.prod([i // s for i, s in zip(input_size, self.stride)], dtype=np.int64)
        hidden = self.input_channels * self.features_per_modality
        n_hidden = 1 + (not isinstance(self.per_modality_norm, nn.Identity))
        n_out = 1 + (not isinstance(self.norm, nn.Identity))
        return np.int64(voxels * (n_hidden * hidden + n_out * self.output_channels))
