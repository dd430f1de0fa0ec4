"""MSFENUNet: MSFEN as a drop-in replacement for dynamic_network_architectures' ``PlainConvUNet``.

Method: Y. Wang, "Multimodal Brain Tumor Segmentation Based on Multi-Scale Feature Extraction Network" (MSFEN): a
U-Net with residual connections whose stages extract features at receptive fields 3/5/7 with depthwise-separable
convolutions, fused by concatenation and sigmoid channel attention, spatial attention, spatial pyramid pooling
and dropout at the bottleneck, cross-modal attention over the MRI sequences, a transposed-convolution decoder
with skip connections.

The constructor takes every argument of ``PlainConvUNet`` under the same names, so nnU-Net's
``get_network_from_plans`` builds it from a plans ``architecture`` whose ``network_class_name`` is
``nnunet_msfen.network.msfen_unet.MSFENUNet``; MSFEN's own options are keyword arguments with defaults, each
part switchable off for ablations. Free of nnU-Net imports (MedNeXt's adapter idea): the trainer adapts it.

The defaults are chosen by measured time and memory on real hardware, not by FLOPs (docs/ablation.md): dense
convolutions in groups of up to 16 channels on each Res2Net split instead of depthwise ones, channel attention and
modality weights folded into the following pointwise convolution, spatial attention and skip in one pass, an
additive skip fusion in the decoder whose upsampling runs as a pointwise convolution and a pixel shuffle, every
convolution through oneDNN on the CPU, and the blocks' element-wise operations (at full resolution also their 1x1
convolutions) recomputed in the backward pass instead of stored; each stage downsamples with its stride as kernel
(2x2 patches, as ConvNeXt), not the planned 3x3, which holds most of the planned U-Net's parameters in the deep stages. The residual units start
with their branch norm at one, not as identities: at equal iterations the identity start left MSFEN 0.09 mean Dice
behind nnU-Net's U-Net on real BraTS cases, and starting at one closed the gap (docs/ablation.md section 6.2).
``group_width=1, skip_fusion="concat", recompute=False, zero_init_residual=True, downsample_kernel="planned"`` is
the 0.1.0 network; ``downsample_kernel="planned"`` alone the default of 2026-12-01
(``nnUNetTrainerMSFEN_PlannedDownsampling``).
"""
import zlib
from typing import List, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
from dynamic_network_architectures.architectures.abstract_arch import AbstractDynamicNetworkArchitectures
from dynamic_network_architectures.building_blocks.helper import convert_conv_op_to_dim
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from nnunet_msfen.blocks.multiscale import MultiScaleConv
from nnunet_msfen.blocks.recompute import recompute_levels
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.network.decoder import MSFENDecoder
from nnunet_msfen.network.encoder import MSFENEncoder, per_stage

IntOrSeq = Union[int, List[int], Tuple[int, ...]]
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def capped_features(features_per_stage: IntOrSeq, n_stages: int, max_features: Optional[int]) -> IntOrSeq:
    """``features_per_stage`` with every stage capped at ``max_features`` (``None``: unchanged).

    Raises:
        ValueError: for a ``max_features`` below 1 or a ``features_per_stage`` of the wrong length.
    """
    if max_features is None:
        return features_per_stage
    if int(max_features) < 1:
        raise ValueError(f"max_features must be >= 1 or None, got max_features={max_features}")
    return [min(int(f), int(max_features)) for f in per_stage(features_per_stage, n_stages, "features_per_stage")]


class MSFENUNet(AbstractDynamicNetworkArchitectures):
    """MSFEN U-Net. Arguments up to ``nonlin_first`` are ``PlainConvUNet``'s; the rest are MSFEN's.

    Args:
        multi_scale: multi-scale units (``False``: a plain residual conv unit per stage).
        channel_attention: sigmoid channel attention over the concatenated scales ("dynamic weight fusion").
        spatial_attention: spatial attention in every unit.
        residual: identity skips in every unit.
        spp: spatial pyramid pooling at the bottleneck.
        bottleneck_dropout: dropout probability at the bottleneck (the paper uses 0.5; 0 disables it).
        modality_stem: per-modality features and cross-modal attention as the first layer.
        cross_modal_attention: weigh the modalities in the stem (only with ``modality_stem``).
        scale_kernel_sizes: receptive fields of the multi-scale branches.
        branch_mode: ``"hierarchical"``, ``"cascade"``, ``"dilated"`` or ``"parallel"`` (``scale_branches``).
        group_width: channels per group of the branch convolutions, capped at the branch width (1 = depthwise).
        spatial_attention_kernel: kernel size of the spatial attention; ``None``: 7 in 2D (CBAM's), 3 in 3D (a
            2 -> 1 channel 7^3 convolution at full resolution cost 1.3 s of a 3.1 s unit on the CPU, see
            docs/history_0.1.0.md).
        decoder_fuse_kernel_size: kernel of each decoder stage's fusion convolution (``None``: the planned one).
        decoder_fuse_group_width: channels per group of that convolution (``None``: dense, 1: depthwise).
        skip_fusion: ``"add"`` (upsampled map + projected skip) or ``"concat"`` (U-Net's concatenation), see
            ``SkipFusion``.
        decoder_units: multi-scale units in the decoder stages (``False``: each decoder stage is its skip fusion
            alone: 2d prediction 0.40x of PlainConvUNet's, but 0.055 mean Dice behind over 12 cases, so an
            ablation, not the default; docs/ablation.md section 22; benchmark variant ``msfen-light-decoder``).
        recompute: what the stem, the units and the skip fusions recompute in the backward pass instead of storing
            (training only), one mode for every resolution level or one per level (full resolution first):
            ``"products"`` the element-wise operations, ``"cheap"`` also the 1x1 convolutions (everything but the
            outputs of the spatial convolutions), ``"all"`` (``True``) everything, ``"none"`` (``False``) nothing.
            The default ``"auto"`` is "cheap" at full resolution and "products" below (``blocks/recompute.py``).
        downsample_kernel: ``"stride"`` (default) or ``"planned"``: the kernel of each stage's strided convolution
            (``MSFENEncoder``); ``"stride"`` has 0.29x PlainConvUNet's parameters in 2d (0.39x planned), 0.18x in
            3D (0.31x), and was level with ``"planned"`` in Dice at equal iterations over 12 real cases
            (docs/ablation.md section 20), and with nnUNetTrainer in Dice and, after ``postprocess --lesion-wise``,
            in lesion-wise Dice (section 21; before it, MSFEN leaves more false-positive specks).
        max_features: the widest a stage may be (``None``, the default: as planned). nnU-Net plans 512 features for
            the 2d topology's deepest stages, whose small maps cost a large share of MSFEN's CPU prediction time:
            256 made the 2d prediction 0.40x of PlainConvUNet's (default 0.52x) and cost 0.012 mean Dice at equal
            iterations over 12 cases, so it is an option, not the default (docs/ablation.md section 25).
        zero_init_residual: start every residual unit as an identity (its branch's last norm at zero, Goyal et al.,
            2017; torchvision's ``zero_init_residual``). ``False`` (default) keeps that norm at one: the identity
            start made MSFEN learn far less per iteration (docs/ablation.md section 6.2).

    Raises:
        ValueError: for inconsistent stage counts or an invalid MSFEN option (the message names the value).
    """

    def __init__(self, input_channels: int, n_stages: int, features_per_stage: IntOrSeq, conv_op: Type[_ConvNd],
                 kernel_sizes: Union[IntOrSeq, Sequence[IntOrSeq]], strides: Union[IntOrSeq, Sequence[IntOrSeq]],
                 n_conv_per_stage: IntOrSeq, num_classes: int, n_conv_per_stage_decoder: IntOrSeq,
                 conv_bias: bool = False, norm_op: Type[nn.Module] = None, norm_op_kwargs: dict = None,
                 dropout_op: Type[_DropoutNd] = None, dropout_op_kwargs: dict = None,
                 nonlin: Type[nn.Module] = None, nonlin_kwargs: dict = None, deep_supervision: bool = False,
                 nonlin_first: bool = False, *, multi_scale: bool = True, channel_attention: bool = True,
                 spatial_attention: bool = True, residual: bool = True, spp: bool = True,
                 bottleneck_dropout: float = 0.5, modality_stem: bool = True, cross_modal_attention: bool = True,
                 scale_kernel_sizes: Sequence[int] = (3, 5, 7), branch_mode: str = "hierarchical", group_width: int = 16,
                 spatial_attention_kernel: Optional[int] = None, decoder_fuse_kernel_size: Optional[int] = 1,
                 decoder_fuse_group_width: Optional[int] = None, skip_fusion: str = "add",
                 recompute: Union[bool, str, Sequence[Union[bool, str]]] = "auto", downsample_kernel: str = "stride",
                 zero_init_residual: bool = False, decoder_units: bool = True, max_features: Optional[int] = None):
        super().__init__()
        # drawn before any module is built, so that switching a part off changes no other part's initial weights
        self._init_seed = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
        self.zero_init_residual = zero_init_residual
        if n_stages < 2:
            raise ValueError(f"n_stages must be >= 2 (an encoder and a decoder stage), got n_stages={n_stages}")
        if input_channels < 1 or num_classes < 1:
            raise ValueError(f"input_channels and num_classes must be >= 1, got input_channels={input_channels}, "
                             f"num_classes={num_classes}")
        recompute = recompute_levels(recompute, n_stages)
        features_per_stage = capped_features(features_per_stage, n_stages, max_features)
        if spatial_attention_kernel is None:
            spatial_attention_kernel = 7 if convert_conv_op_to_dim(conv_op) == 2 else 3
        block_kwargs = dict(multi_scale=multi_scale, channel_attention=channel_attention,
                            spatial_attention=spatial_attention, residual=residual,
                            scale_kernel_sizes=tuple(scale_kernel_sizes), branch_mode=branch_mode,
                            group_width=group_width, spatial_attention_kernel=spatial_attention_kernel)
        self.encoder = MSFENEncoder(
            input_channels=input_channels, n_stages=n_stages, features_per_stage=features_per_stage, conv_op=conv_op,
            kernel_sizes=kernel_sizes, strides=strides, n_conv_per_stage=n_conv_per_stage, conv_bias=conv_bias,
            norm_op=norm_op, norm_op_kwargs=norm_op_kwargs, dropout_op=dropout_op, dropout_op_kwargs=dropout_op_kwargs,
            nonlin=nonlin, nonlin_kwargs=nonlin_kwargs, return_skips=True, nonlin_first=nonlin_first,
            modality_stem=modality_stem, cross_modal_attention=cross_modal_attention, recompute=recompute,
            downsample_kernel=downsample_kernel, spp=spp,
            bottleneck_dropout=bottleneck_dropout, block_kwargs=block_kwargs)
        self.decoder = MSFENDecoder(
            encoder=self.encoder, num_classes=num_classes, n_conv_per_stage=n_conv_per_stage_decoder,
            deep_supervision=deep_supervision, skip_fusion=skip_fusion, fuse_kernel_size=decoder_fuse_kernel_size,
            fuse_group_width=decoder_fuse_group_width, recompute=recompute, units=decoder_units,
            block_kwargs=block_kwargs)
        # for nnU-Net's pretrained-weights utilities (AbstractDynamicNetworkArchitectures)
        self.key_to_encoder = "encoder.stages"
        self.key_to_stem = "encoder.stages.0"
        self.keys_to_in_proj = ("encoder.stages.0.0.per_modality",) if modality_stem else ("encoder.stages.0.0.conv",)

    def forward(self, x: torch.Tensor):
        skips = self.encoder(x)
        return self.decoder(skips)

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """Number of feature-map elements one sample allocates in a forward pass, for nnU-Net's planner."""
        if len(input_size) != convert_conv_op_to_dim(self.encoder.conv_op):
            raise ValueError(f"input_size must be the spatial size only, (x, y[, z]), got input_size={input_size}")
        return self.encoder.compute_conv_feature_map_size(input_size) + \
            self.decoder.compute_conv_feature_map_size(input_size)

    def initialize(self, module: nn.Module) -> None:
        """nnU-Net's ``network.apply(network.initialize)`` calls this for every module, the network itself last;
        the whole network is initialised in that last call, each module from a generator seeded by its name:

        - convolutions and transposed convolutions: He (``kaiming_normal_``, a = 1e-2), bias 0, as nnU-Net's
          ``InitWeights_He(1e-2)``; linear layers: PyTorch's default;
        - with ``zero_init_residual``, residual units start as identities: the last norm of a multi-scale branch
          (before the skip is added) starts at zero (Goyal et al., 2017).

        Seeding by name keeps every module's initial weights the same whichever other parts are switched off.
        """
        if module is not self:
            return
        for name, m in self.named_modules():
            generator = torch.Generator().manual_seed(self._init_seed ^ zlib.crc32(name.encode()))
            if isinstance(m, _CONVS):
                nn.init.kaiming_normal_(m.weight, a=1e-2, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=5 ** 0.5, generator=generator)
                if m.bias is not None:
                    bound = 1 / m.in_features ** 0.5
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            if self.zero_init_residual and isinstance(m, MultiScaleResidualBlock) and m.residual \
                    and isinstance(m.features, MultiScaleConv):
                if getattr(m.features.norm, "weight", None) is not None:
                    nn.init.zeros_(m.features.norm.weight)
