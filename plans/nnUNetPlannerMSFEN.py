"""nnUNetPlannerMSFEN: nnU-Net's default planner, sizing patch and batch with MSFENUNet's own memory estimate.

Writes plans ``nnUNetMSFENPlans`` whose configurations name ``MSFENUNet`` as the network. The topology
(stages, kernels, strides, features) is planned exactly like nnU-Net's U-Net; only the memory model differs, so
``2d`` and ``3d_fullres`` keep nnU-Net's target spacing and reuse the preprocessed data of ``nnUNetPlans``
(``3d_lowres`` gets its own, because its spacing follows from the planned patch size).

The reference value is calibrated the way nnU-Net calibrated PlainConvUNet's: nnU-Net's 560e6 is (a fine-tuned)
``compute_conv_feature_map_size`` of the U-Net configuration that filled its 8 GB target. MSFENUNet counts every map
its forward pass allocates, most of which its blocks recompute in the backward pass instead of keeping, so its
reference value is PlainConvUNet's scaled by the ratio of the two estimates at equal *measured* training memory
(per dimensionality); ``plans/calibrate_reference.py`` measures it and docs/planner_calibration.md records the
numbers.
"""
from typing import List, Tuple, Union

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

from nnunet_msfen.network.msfen_unet import MSFENUNet

PLANS_NAME = "nnUNetMSFENPlans"
# measured by plans/calibrate_reference.py (see docs/planner_calibration.md): feature-map elements counted by
# MSFENUNet per element counted by PlainConvUNet at equal peak training memory, 3D and 2D
MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D = 4.49
MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D = 4.12


class nnUNetPlannerMSFEN(ExperimentPlanner):
    """``ExperimentPlanner`` with ``MSFENUNet`` and its calibrated reference values; see the module docstring."""

    def __init__(self, dataset_name_or_id: Union[str, int], gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: str = PLANS_NAME,
                 overwrite_target_spacing: Union[List[float], Tuple[float, ...]] = None,
                 suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name, plans_name,
                         overwrite_target_spacing, suppress_transpose)
        self.UNet_class = MSFENUNet
        self.UNet_reference_val_3d = round(self.UNet_reference_val_3d * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_3D)
        self.UNet_reference_val_2d = round(self.UNet_reference_val_2d * MSFEN_ESTIMATE_PER_PLAIN_ESTIMATE_2D)

    def generate_data_identifier(self, configuration_name: str) -> str:
        if configuration_name in ("2d", "3d_fullres"):
            return "nnUNetPlans_" + configuration_name  # same spacing and preprocessing as nnU-Net's plans
        return self.plans_identifier + "_" + configuration_name
