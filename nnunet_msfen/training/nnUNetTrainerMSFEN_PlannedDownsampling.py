"""nnUNetTrainerMSFEN_PlannedDownsampling: MSFEN with nnU-Net's planned kernel in every strided convolution.

    nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerMSFEN_PlannedDownsampling

The default network until 2026-12-02, before each stage's downsampling took its stride as kernel (2x2 patches):
checkpoints trained with ``nnUNetTrainerMSFEN`` before that change load and predict with this trainer
(``nnUNetv2_predict ... -tr nnUNetTrainerMSFEN_PlannedDownsampling``), and it is the ablation of that choice
(docs/ablation.md section 20).
"""
from types import MappingProxyType

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN


class nnUNetTrainerMSFEN_PlannedDownsampling(nnUNetTrainerMSFEN):
    network_kwargs = MappingProxyType({"downsample_kernel": "planned"})
