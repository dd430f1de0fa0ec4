"""The contenders of ``nnunet-msfen benchmark``, each the network its nnU-Net trainer builds from BraTS plans.

The topology is the one nnU-Net plans for BraTS (4 MRI sequences in, 3 regions out): 3d_fullres has 6 stages with
32, 64, 128, 256, 320, 320 features, 2d has 7 stages with 32 ... 512 features; kernel 3, stride 1 then 2, two
convolutions per stage, InstanceNorm (eps 1e-5, affine), LeakyReLU, conv bias, deep supervision. ``n_stages`` can
shrink it (the tests use 3 stages).

Contenders (``VARIANTS``):

- ``plain``: ``PlainConvUNet`` trained by ``nnUNetTrainer`` (the reference of every ratio);
- ``resenc-m``: ``ResidualEncoderUNet`` with the kwargs ``nnUNetPlannerResEncM`` writes (blocks 1, 3, 4, 6, 6, 6
  ..., one decoder conv per stage), trained by ``nnUNetTrainer``;
- ``msfen``: ``MSFENUNet`` as ``nnUNetTrainerMSFEN`` builds it; ``msfen-v1``: the 0.1.0 network
  (``nnUNetTrainerMSFEN_v1``); ``msfen-*``: one design choice or ablation switch changed.
"""
from types import MappingProxyType
from typing import Dict, List, NamedTuple, Optional, Type

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


class Contender(NamedTuple):
    trainer: str  # nnU-Net trainer class that trains it
    plans_network: str  # network class in the plans the trainer is given
    extra: dict  # MSFENUNet keyword arguments beyond the trainer's own
    description: str


def _msfen(extra: dict, description: str, trainer: str = "nnUNetTrainerMSFEN") -> Contender:
    return Contender(trainer, PLAIN, extra, description)


VARIANTS: Dict[str, Contender] = {
    "plain": Contender("nnUNetTrainer", PLAIN, {}, "PlainConvUNet (nnUNetTrainer)"),
    "resenc-m": Contender("nnUNetTrainer", RESENC, {}, "ResidualEncoderUNet as nnUNetPlannerResEncM plans it"),
    "msfen": _msfen({}, "MSFENUNet defaults (nnUNetTrainerMSFEN)"),
    "msfen-v1": _msfen({}, "the 0.1.0 network: depthwise branches, concatenating decoder, no recomputation "
                           "(nnUNetTrainerMSFEN_v1)", trainer="nnUNetTrainerMSFEN_v1"),
    "msfen-depthwise": _msfen({"group_width": 1}, "depthwise branch convolutions (group width 1)"),
    "msfen-gw8": _msfen({"group_width": 8}, "branch convolutions in groups of 8 channels"),
    "msfen-concat": _msfen({"skip_fusion": "concat"}, "decoder concatenates the skip (U-Net's form)"),
    "msfen-fuse3": _msfen({"decoder_fuse_kernel_size": None}, "decoder skip fusion with the planned kernel, not 1x1"),
    "msfen-fuse3-gw16": _msfen({"decoder_fuse_kernel_size": None, "decoder_fuse_group_width": 16},
                               "decoder skip fusion 3x3 in groups of 16 channels"),
    "msfen-fuse3-dw": _msfen({"decoder_fuse_kernel_size": None, "decoder_fuse_group_width": 1},
                             "decoder skip fusion 3x3 depthwise over the skip"),
    "msfen-light-decoder": _msfen({"decoder_units": False, "decoder_fuse_kernel_size": None,
                                   "decoder_fuse_group_width": 16},
                                  "decoder stages without multi-scale units, skip fusion 3x3 in groups of 16"),
    "msfen-max256": _msfen({"max_features": 256}, "no stage wider than 256 features (2d plans 512 in its deepest "
                           "stages): 2d prediction 0.40x, 0.012 Dice behind the default (docs/ablation.md section 25)"),
    "msfen-no-recompute": _msfen({"recompute": "none"}, "intermediates stored for backward, not recomputed"),
    "msfen-recompute-cheap": _msfen({"recompute": "cheap"}, "1x1 convolutions recomputed for backward at every level, "
                                    "not only at full resolution (the default before 2026-12-03)"),
    "msfen-recompute-all": _msfen({"recompute": "all"}, "for backward only each block's input and output stored, "
                                  "the whole block recomputed (the default before 2026-12-01)"),
    "msfen-down-planned": _msfen({"downsample_kernel": "planned"}, "strided convolutions with the planned 3x3 "
                                 "kernel, not kernel = stride (the default until 2026-12-02)"),
    "msfen-parallel": _msfen({"branch_mode": "parallel"}, "branches: parallel 3/5/7 convolutions (the paper's form)"),
    "msfen-cascade": _msfen({"branch_mode": "cascade"}, "branches: three 3s in sequence, full width"),
    "msfen-dilated": _msfen({"branch_mode": "dilated"}, "branches: 3 with dilation 1/2/3"),
    "msfen-sa3": _msfen({"spatial_attention_kernel": 3}, "spatial attention kernel 3"),
    "msfen-sa7": _msfen({"spatial_attention_kernel": 7}, "spatial attention kernel 7 (CBAM's)"),
    "msfen-no-multi-scale": _msfen({"multi_scale": False}, "plain conv instead of the multi-scale unit"),
    "msfen-no-channel-attention": _msfen({"channel_attention": False}, "no channel attention"),
    "msfen-no-spatial-attention": _msfen({"spatial_attention": False}, "no spatial attention"),
    "msfen-no-residual": _msfen({"residual": False}, "no identity skips"),
    "msfen-no-spp": _msfen({"spp": False}, "no spatial pyramid pooling"),
    "msfen-no-dropout": _msfen({"bottleneck_dropout": 0.0}, "no bottleneck dropout"),
    "msfen-no-modality-stem": _msfen({"modality_stem": False}, "plain first conv instead of the modality stem"),
    "msfen-no-cross-modal-attention": _msfen({"cross_modal_attention": False}, "stem without modality weights"),
}

# names accepted by --networks besides the variants themselves
GROUPS: Dict[str, List[str]] = {
    "default": ["plain", "resenc-m", "msfen"],
    "versions": ["msfen", "msfen-v1"],
    "design": ["msfen", "msfen-v1", "msfen-depthwise", "msfen-gw8", "msfen-concat", "msfen-fuse3", "msfen-fuse3-gw16",
               "msfen-fuse3-dw", "msfen-no-recompute", "msfen-recompute-cheap", "msfen-recompute-all",
               "msfen-down-planned"],
    "branches": ["msfen", "msfen-parallel", "msfen-cascade", "msfen-dilated"],
    "switches": ["msfen"] + [n for n in VARIANTS if n.startswith("msfen-no-") and n != "msfen-no-recompute"],
    "all": list(VARIANTS),
}

CONFIGS = {
    # features, default number of stages
    "3d_fullres": dict(dim=3, features=(32, 64, 128, 256, 320, 320), n_stages=6),
    "2d": dict(dim=2, features=(32, 64, 128, 256, 512, 512, 512), n_stages=7),
}


def resolve_names(names: List[str]) -> List[str]:
    """Expand group names, drop duplicates (keeping order) and put ``plain`` first: every ratio needs it.

    Raises:
        ValueError: for a name that is neither a variant nor a group (the message lists both).
    """
    out: List[str] = ["plain"]
    for name in names:
        if name in GROUPS:
            expanded = GROUPS[name]
        elif name in VARIANTS:
            expanded = [name]
        else:
            raise ValueError(f"unknown network {name!r}; choose from {sorted(VARIANTS)} or a group {sorted(GROUPS)}")
        out.extend(n for n in expanded if n not in out)
    return out


def brats_arch(config: str, n_stages: Optional[int] = None) -> dict:
    """nnU-Net's plans ``arch_kwargs`` for BraTS in ``config`` (``PlainConvUNet``'s names), dotted-string ops.

    Raises:
        ValueError: for an unknown ``config`` or ``n_stages`` outside 2 ... the configuration's stage count.
    """
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; choose from {sorted(CONFIGS)}")
    spec = CONFIGS[config]
    dim, n_max = spec["dim"], spec["n_stages"]
    n = n_max if n_stages is None else n_stages
    if not 2 <= n <= n_max:
        raise ValueError(f"n_stages must be in 2 ... {n_max} for {config}, got n_stages={n}")
    return {
        "n_stages": n, "features_per_stage": list(spec["features"][:n]),
        "conv_op": f"torch.nn.modules.conv.Conv{dim}d", "kernel_sizes": [[3] * dim] * n,
        "strides": [[1] * dim] + [[2] * dim] * (n - 1), "n_conv_per_stage": [2] * n,
        "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
        "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True},
    }


def plans_arch(name: str, arch: dict) -> dict:
    """The plans' ``arch_kwargs`` for contender ``name`` on the topology ``arch`` (from ``brats_arch``):
    ``nnUNetPlannerResEncM``'s for ``resenc-m``, ``arch`` itself for the others."""
    if name not in VARIANTS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(VARIANTS)}")
    kwargs = dict(arch)
    if VARIANTS[name].plans_network == RESENC:  # n_conv_per_stage -> n_blocks_per_stage, 1 decoder conv
        n = kwargs["n_stages"]
        del kwargs["n_conv_per_stage"]
        kwargs["n_blocks_per_stage"] = [1, 3, 4, 6, 6, 6, 6, 6, 6][:n]
        kwargs["n_conv_per_stage_decoder"] = [1] * (n - 1)
    return kwargs


def trainer_class(name: str) -> Type:
    """The trainer class of contender ``name``: the registered one, or for ``msfen-*`` switches a subclass of it
    with the switch added to its ``network_kwargs``."""
    import nnunet_msfen.training as training
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    contender = VARIANTS[name]
    base = nnUNetTrainer if contender.trainer == "nnUNetTrainer" else getattr(training, contender.trainer)
    if not contender.extra:
        return base
    extra = dict(contender.extra)
    attributes = {"network_kwargs": MappingProxyType({**base.network_kwargs, **extra})}
    if "bottleneck_dropout" in extra:  # the trainer passes its own attribute to the network
        attributes["bottleneck_dropout"] = extra.pop("bottleneck_dropout")
        attributes["network_kwargs"] = MappingProxyType({**base.network_kwargs, **extra})
    return type(f"{base.__name__}_{name.replace('-', '_')}", (base,), attributes)


def build_network(name: str, arch: dict, deep_supervision: bool = True):
    """Contender ``name`` built and initialised by its trainer's ``build_network_architecture`` (on the CPU)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_msfen.benchmark.nnunet_step import INPUT_CHANNELS, NUM_CLASSES, brats_plans

    config = "3d_fullres" if arch["conv_op"].endswith("3d") else "2d"
    patch = [64] * (3 if config == "3d_fullres" else 2)
    manager = PlansManager(brats_plans(config, VARIANTS[name].plans_network, plans_arch(name, arch), patch, 2))
    return trainer_class(name).build_network_architecture(manager, manager.get_configuration(config), INPUT_CHANNELS,
                                                          NUM_CLASSES, deep_supervision)
