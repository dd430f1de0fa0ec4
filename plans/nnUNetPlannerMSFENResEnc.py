"""MSFEN planned on nnU-Net's residual-encoder presets (``nnUNetPlannerResEnc{M,L,XL}``).

nnU-Net recommends its ResEnc presets and asks new networks to be compared against ResEnc-M. These planners run the
preset unchanged (target spacing, stages, kernels, strides, features, its blocks per stage and its GPU memory
target: 8, 24 or 40 GB) and change two things:

- the network written into the plans is ``MSFENUNet``, with the preset's blocks per stage as multi-scale units
  (``network.from_plans.msfen_arch_kwargs``: what the trainer does with ResEnc plans, so both agree);
- patch and batch are sized by MSFENUNet's own memory estimate against MSFEN's calibrated reference value
  (``nnUNetPlannerMSFEN``'s, scaled to the preset's GPU memory as nnU-Net scales its own), not ResEnc's.

The calibration (docs/planner_calibration.md) was measured with two convolutions per stage; deeper encoders store
about as much per counted element (MSFEN's units recompute their intermediates), which the calibration assumes.

Plans: ``nnUNetMSFENResEncUNet{M,L,XL}Plans``; ``2d`` and ``3d_fullres`` reuse nnU-Net's preprocessed data.
"""
from typing import List, Optional, Tuple, Union

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
    nnUNetPlannerResEncL, nnUNetPlannerResEncM, nnUNetPlannerResEncXL)

from nnunet_msfen.network.from_plans import MSFEN_CLASS_NAME, msfen_arch_kwargs
from nnunet_msfen.plans.nnUNetPlannerMSFEN import (MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D,
                                                   MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D)

# nnU-Net's ExperimentPlanner reference values for PlainConvUNet at 8 GB (set in its __init__, not class attributes)
PLAIN_REFERENCE_VAL_3D = 560_000_000
PLAIN_REFERENCE_VAL_2D = 85_000_000
PLAIN_REFERENCE_GB = 8


class _MSFENOnResEncPreset:
    """Mixin placed before a ResEnc planner in the bases (module docstring); a subclass names the preset's GPU
    memory and its plans, the defaults of the planner's arguments of the same meaning."""

    preset_gpu_memory_gb: float
    preset_plans_name: str

    def __init__(self, dataset_name_or_id: Union[str, int], gpu_memory_target_in_gb: Optional[float] = None,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: Optional[str] = None,
                 overwrite_target_spacing: Union[List[float], Tuple[float, ...]] = None,
                 suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id,
                         self.preset_gpu_memory_gb if gpu_memory_target_in_gb is None else gpu_memory_target_in_gb,
                         preprocessor_name, plans_name or self.preset_plans_name, overwrite_target_spacing,
                         suppress_transpose)
        scale = self.UNet_reference_val_corresp_GB / PLAIN_REFERENCE_GB  # the preset's GPU memory
        self.UNet_reference_val_3d = round(PLAIN_REFERENCE_VAL_3D * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D * scale)
        self.UNet_reference_val_2d = round(PLAIN_REFERENCE_VAL_2D * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D * scale)

    @staticmethod
    def static_estimate_VRAM_usage(patch_size: Tuple[int, ...], input_channels: int, output_channels: int,
                                   arch_class_name: str, arch_kwargs: dict, arch_kwargs_req_import: Tuple[str, ...]):
        """MSFENUNet's feature-map count for the architecture the preset plans (ResidualEncoderUNet's kwargs)."""
        return ExperimentPlanner.static_estimate_VRAM_usage(
            patch_size, input_channels, output_channels, MSFEN_CLASS_NAME,
            msfen_arch_kwargs(arch_class_name, arch_kwargs), arch_kwargs_req_import)

    def get_plans_for_configuration(self, *args, **kwargs) -> dict:
        plan = super().get_plans_for_configuration(*args, **kwargs)
        arch = plan["architecture"]
        arch["arch_kwargs"] = msfen_arch_kwargs(arch["network_class_name"], arch["arch_kwargs"])
        arch["network_class_name"] = MSFEN_CLASS_NAME
        return plan


class nnUNetPlannerMSFENResEncM(_MSFENOnResEncPreset, nnUNetPlannerResEncM):
    """MSFEN on the ResEnc-M preset (8 GB): plans ``nnUNetMSFENResEncUNetMPlans``."""

    preset_gpu_memory_gb = 8
    preset_plans_name = "nnUNetMSFENResEncUNetMPlans"


class nnUNetPlannerMSFENResEncL(_MSFENOnResEncPreset, nnUNetPlannerResEncL):
    """MSFEN on the ResEnc-L preset (24 GB): plans ``nnUNetMSFENResEncUNetLPlans``."""

    preset_gpu_memory_gb = 24
    preset_plans_name = "nnUNetMSFENResEncUNetLPlans"


class nnUNetPlannerMSFENResEncXL(_MSFENOnResEncPreset, nnUNetPlannerResEncXL):
    """MSFEN on the ResEnc-XL preset (40 GB): plans ``nnUNetMSFENResEncUNetXLPlans``."""

    preset_gpu_memory_gb = 40
    preset_plans_name = "nnUNetMSFENResEncUNetXLPlans"
