"""nnunet_msfen: MSFEN (Multi-Scale Feature Extraction Network) for multimodal brain tumour segmentation in nnU-Net v2.

The public names are imported lazily (PEP 562): Python imports this package at every start-up through the
discovery hook (see ``nnunet_msfen.discovery``), and that must not pull in torch.

    from nnunet_msfen import MSFENUNet, nnUNetTrainerMSFEN
"""
from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "MSFENUNet": "nnunet_msfen.network.msfen_unet",
    "nnUNetTrainerMSFEN": "nnunet_msfen.training.nnUNetTrainerMSFEN",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nnunet_msfen' has no attribute {name!r}")
