"""The module nnU-Net imports (as a top-level module) when it scans our ``nnUNet_extTrainer`` folder.

It only re-exports: the classes are defined once, in ``nnunet_msfen.training``, so a class nnU-Net finds here is
the very class users subclass with ``from nnunet_msfen import nnUNetTrainerMSFEN``.
"""
from nnunet_msfen.training import *  # noqa: F401,F403
from nnunet_msfen.training import __all__  # noqa: F401
