"""nnUNetTrainerMSFEN_v1: MSFEN as version 0.1.0 built it, for comparisons with today's default.

    nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerMSFEN_v1

Depthwise branch convolutions (``group_width=1``), U-Net's concatenation in the decoder (``skip_fusion="concat"``),
no recomputation, residual units that start as identities (``zero_init_residual=True``) and nnU-Net's planned
kernel in the strided convolutions (``downsample_kernel="planned"``). The channel attention
and modality weights are folded into their pointwise convolutions as in the default network, which computes the
same function as 0.1.0 did; checkpoints of 0.1.0 do not load (module names changed).
"""
from types import MappingProxyType

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN

V1_NETWORK = MappingProxyType({"group_width": 1, "skip_fusion": "concat", "recompute": False,
                               "zero_init_residual": True, "downsample_kernel": "planned"})


class nnUNetTrainerMSFEN_v1(nnUNetTrainerMSFEN):
    network_kwargs = V1_NETWORK
