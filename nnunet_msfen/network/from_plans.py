"""MSFENUNet's keyword arguments from the architecture a set of nnU-Net plans holds.

MSFEN takes the planned topology (stages, features, kernels, strides, convolutions per stage) of:

- ``PlainConvUNet`` (``nnUNetPlans``, ``nnUNetv2_plan_and_preprocess``): the arguments as they are;
- ``ResidualEncoderUNet`` (``nnUNetResEncUNet{M,L,XL}Plans``, nnU-Net's recommended presets): a stage's
  ``n_blocks_per_stage`` residual blocks become as many multi-scale residual units after the stage's first
  convolution (``n_conv_per_stage = n_blocks + 1``); the residual-block options (``block``,
  ``bottleneck_channels``, ``stem_channels``) have no MSFEN counterpart and are dropped;
- ``MSFENUNet`` (``nnUNetMSFENPlans``, ``nnunet-msfen plan``).

Any other network class raises ``UnsupportedPlansError`` naming it and the plans that work.
"""
from typing import Dict

PLAIN_CLASS_NAME = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC_CLASS_NAME = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
MSFEN_CLASS_NAME = "nnunet_msfen.network.msfen_unet.MSFENUNet"
SUPPORTED = (PLAIN_CLASS_NAME, RESENC_CLASS_NAME, MSFEN_CLASS_NAME)
WORKING_PLANS = "nnUNetPlans, nnUNetResEncUNetMPlans/LPlans/XLPlans or nnUNetMSFENPlans"
_RESENC_ONLY = ("block", "bottleneck_channels", "stem_channels", "n_blocks_per_stage")


class UnsupportedPlansError(ValueError):
    """The plans hold a network MSFEN cannot take the topology of."""


def msfen_arch_kwargs(network_class_name: str, arch_kwargs: Dict[str, object]) -> Dict[str, object]:
    """``MSFENUNet`` keyword arguments for plans whose ``network_class_name`` and ``arch_kwargs`` are given.

    Raises:
        UnsupportedPlansError: for a network class other than ``SUPPORTED`` (the message names it).
    """
    if network_class_name not in SUPPORTED:
        raise UnsupportedPlansError(f"they plan {network_class_name.rsplit('.', 1)[-1]} ({network_class_name}); "
                                    f"MSFEN takes the topology of PlainConvUNet, ResidualEncoderUNet or MSFENUNet "
                                    f"plans: {WORKING_PLANS}")
    kwargs = dict(arch_kwargs)
    if network_class_name == RESENC_CLASS_NAME:
        blocks = kwargs["n_blocks_per_stage"]
        blocks = [blocks] * int(kwargs["n_stages"]) if isinstance(blocks, int) else list(blocks)
        kwargs["n_conv_per_stage"] = [int(b) + 1 for b in blocks]
        for key in _RESENC_ONLY:
            kwargs.pop(key, None)
    return kwargs
