"""The contenders of ``nnunet-msfen benchmark``, all built by nnU-Net's ``get_network_from_plans`` from one topology.

The topology is the one nnU-Net plans for BraTS (4 MRI sequences in, 3 regions out): 3d_fullres has 6 stages with
32, 64, 128, 256, 320, 320 features, 2d has 7 stages with 32 ... 512 features; kernel 3, stride 1 then 2, two
convolutions per stage, InstanceNorm (eps 1e-5, affine), LeakyReLU, conv bias, deep supervision. ``n_stages`` can
shrink it (the smoke test uses 3 stages).

Contenders:

- ``plain``: ``PlainConvUNet`` as ``nnUNetTrainer`` builds it (the reference of every ratio);
- ``resenc-m``: ``ResidualEncoderUNet`` with the kwargs ``nnUNetPlannerResEncM`` writes (blocks 1, 3, 4, 6, 6, 6 ...,
  one decoder conv per stage);
- ``msfen``: ``MSFENUNet`` with its defaults, and ``msfen-*`` variants: one ablation switch off, another branch
  mode, another group width or spatial-attention kernel (``VARIANTS``).
"""
from typing import Dict, List, Optional, Tuple

from torch import nn

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
MSFEN = "nnunet_msfen.network.msfen_unet.MSFENUNet"
REQ_IMPORT = ("conv_op", "norm_op", "dropout_op", "nonlin")
INPUT_CHANNELS, NUM_CLASSES = 4, 3  # BraTS: T1, T1ce, T2, FLAIR -> whole tumour, tumour core, enhancing tumour

# name -> (network class, extra arch kwargs, what it is)
VARIANTS: Dict[str, Tuple[str, dict, str]] = {
    "plain": (PLAIN, {}, "PlainConvUNet (nnUNetTrainer)"),
    "resenc-m": (RESENC, {}, "ResidualEncoderUNet as nnUNetPlannerResEncM plans it"),
    "msfen": (MSFEN, {}, "MSFENUNet defaults (hierarchical, depthwise, SA kernel 3 in 3D / 7 in 2D)"),
    "msfen-parallel": (MSFEN, {"branch_mode": "parallel"}, "branches: parallel depthwise 3/5/7 (the paper's form)"),
    "msfen-cascade": (MSFEN, {"branch_mode": "cascade"}, "branches: three depthwise 3s in sequence, full width"),
    "msfen-dilated": (MSFEN, {"branch_mode": "dilated"}, "branches: depthwise 3 with dilation 1/2/3"),
    "msfen-gw8": (MSFEN, {"group_width": 8}, "grouped branch convolutions, 8 channels per group"),
    "msfen-sa3": (MSFEN, {"spatial_attention_kernel": 3}, "spatial attention kernel 3"),
    "msfen-sa7": (MSFEN, {"spatial_attention_kernel": 7}, "spatial attention kernel 7 (CBAM's)"),
    "msfen-no-multi-scale": (MSFEN, {"multi_scale": False}, "plain conv instead of the multi-scale unit"),
    "msfen-no-channel-attention": (MSFEN, {"channel_attention": False}, "no channel attention"),
    "msfen-no-spatial-attention": (MSFEN, {"spatial_attention": False}, "no spatial attention"),
    "msfen-no-residual": (MSFEN, {"residual": False}, "no identity skips"),
    "msfen-no-spp": (MSFEN, {"spp": False}, "no spatial pyramid pooling"),
    "msfen-no-dropout": (MSFEN, {"bottleneck_dropout": 0.0}, "no bottleneck dropout"),
    "msfen-no-modality-stem": (MSFEN, {"modality_stem": False}, "plain first conv instead of the modality stem"),
    "msfen-no-cross-modal-attention": (MSFEN, {"cross_modal_attention": False}, "stem without modality weights"),
}

# names accepted by --networks besides the variants themselves
GROUPS: Dict[str, List[str]] = {
    "default": ["plain", "resenc-m", "msfen"],
    "branches": ["msfen", "msfen-parallel", "msfen-cascade", "msfen-dilated"],
    "design": ["msfen", "msfen-gw8", "msfen-sa3", "msfen-sa7"],
    "switches": ["msfen"] + [n for n in VARIANTS if n.startswith("msfen-no-")],
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


def arch_for(name: str, arch: dict) -> Tuple[str, dict]:
    """Network class and ``arch_kwargs`` of contender ``name`` on the topology ``arch`` (from ``brats_arch``)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(VARIANTS)}")
    class_name, extra, _ = VARIANTS[name]
    kwargs = dict(arch)
    if class_name == RESENC:  # nnUNetPlannerResEncM: n_conv_per_stage -> n_blocks_per_stage, 1 decoder conv
        n = kwargs["n_stages"]
        del kwargs["n_conv_per_stage"]
        kwargs["n_blocks_per_stage"] = [1, 3, 4, 6, 6, 6, 6, 6, 6][:n]
        kwargs["n_conv_per_stage_decoder"] = [1] * (n - 1)
    if class_name == MSFEN:
        kwargs["bottleneck_dropout"] = 0.5  # nnUNetTrainerMSFEN.bottleneck_dropout
    kwargs.update(extra)
    return class_name, kwargs


def build_network(name: str, arch: dict, deep_supervision: bool = True) -> nn.Module:
    """Contender ``name`` built and initialised by nnU-Net's ``get_network_from_plans`` (as the trainers do)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    class_name, kwargs = arch_for(name, arch)
    return get_network_from_plans(class_name, kwargs, REQ_IMPORT, INPUT_CHANNELS, NUM_CLASSES, allow_init=True,
                                  deep_supervision=deep_supervision)


def loss_weights(name: str) -> Tuple[float, float]:
    """(CE weight, Dice weight) of the trainer that trains ``name``: nnUNetTrainer's 1/1, nnUNetTrainerMSFEN's."""
    if VARIANTS[name][0] == MSFEN:
        from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
        return nnUNetTrainerMSFEN.ce_weight, nnUNetTrainerMSFEN.dice_weight
    return 1.0, 1.0
