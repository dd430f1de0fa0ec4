"""The trainers: ``nnUNetTrainerMSFEN`` and its variants. nnU-Net finds them by name through
``nnunet_msfen.discovery`` (nnU-Net's ``nnUNet_extTrainer`` mechanism)."""
from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.nnUNetTrainerMSFEN_Adam import nnUNetTrainerMSFEN_Adam
from nnunet_msfen.training.nnUNetTrainerMSFEN_EarlyStopping import nnUNetTrainerMSFEN_EarlyStopping
from nnunet_msfen.training.nnUNetTrainerMSFEN_PlannedDownsampling import nnUNetTrainerMSFEN_PlannedDownsampling
from nnunet_msfen.training.nnUNetTrainerMSFEN_v1 import nnUNetTrainerMSFEN_v1
from nnunet_msfen.training.modality_dropout import nnUNetTrainer_ModalityDropout, nnUNetTrainerMSFEN_ModalityDropout
from nnunet_msfen.training.fixed_iterations import (nnUNetTrainer_Iterations, nnUNetTrainer_ModalityDropout_Iterations,
                                                    nnUNetTrainerMSFEN_Iterations,
                                                    nnUNetTrainerMSFEN_ModalityDropout_Iterations,
                                                    nnUNetTrainerMSFEN_PlannedDownsampling_Iterations,
                                                    nnUNetTrainerMSFEN_v1_Iterations)
from nnunet_msfen.training.time_budget import nnUNetTrainer_TimeBudget, nnUNetTrainerMSFEN_TimeBudget
from nnunet_msfen.training.short_schedules import (nnUNetTrainer_Short, nnUNetTrainer_Smoke,
                                                   nnUNetTrainerMSFEN_50epochs, nnUNetTrainerMSFEN_5epochs,
                                                   nnUNetTrainerMSFEN_Short, nnUNetTrainerMSFEN_Smoke)

__all__ = ["nnUNetTrainerMSFEN", "nnUNetTrainerMSFEN_Adam", "nnUNetTrainerMSFEN_EarlyStopping",
           "nnUNetTrainerMSFEN_Smoke", "nnUNetTrainerMSFEN_5epochs", "nnUNetTrainerMSFEN_50epochs",
           "nnUNetTrainer_Smoke", "nnUNetTrainerMSFEN_Short", "nnUNetTrainer_Short", "nnUNetTrainerMSFEN_TimeBudget",
           "nnUNetTrainer_TimeBudget", "nnUNetTrainerMSFEN_v1", "nnUNetTrainer_Iterations",
           "nnUNetTrainerMSFEN_Iterations", "nnUNetTrainerMSFEN_v1_Iterations", "nnUNetTrainerMSFEN_ModalityDropout",
           "nnUNetTrainer_ModalityDropout", "nnUNetTrainer_ModalityDropout_Iterations",
           "nnUNetTrainerMSFEN_ModalityDropout_Iterations", "nnUNetTrainerMSFEN_PlannedDownsampling",
           "nnUNetTrainerMSFEN_PlannedDownsampling_Iterations"]
