"""Trainers that train for an exact number of iterations: comparisons of networks at equal iterations
(``nnunet-msfen benchmark-accuracy --iterations N``).

On a GPU nnU-Net trains a fixed number of iterations (1000 epochs of 250), so what decides between two networks
there is how much each learns per iteration; a wall-clock budget would hide that behind the speed of the machine.
The count comes from ``NNUNET_MSFEN_TRAIN_ITERATIONS`` (nnUNetv2_train has no flag for it): epochs of 25
iterations, the last one cut where the count is reached, nnU-Net's poly schedule over all of them. Unlike a time
budget, the result does not depend on how loaded the machine is.
"""
import math
from time import time

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.modality_dropout import ModalityDropout
from nnunet_msfen.training.nnUNetTrainerMSFEN_PlannedDownsampling import nnUNetTrainerMSFEN_PlannedDownsampling
from nnunet_msfen.training.nnUNetTrainerMSFEN_v1 import nnUNetTrainerMSFEN_v1
from nnunet_msfen.training.stopping import EndsEarly, StopTraining, positive_from_environment

ITERATIONS_VARIABLE = "NNUNET_MSFEN_TRAIN_ITERATIONS"


def training_iterations_from_environment() -> int:
    """The count from ``NNUNET_MSFEN_TRAIN_ITERATIONS``; ``ValueError`` naming the value if it is missing or bad."""
    return positive_from_environment(ITERATIONS_VARIABLE, int, "whole number of iterations", "250")


class FixedIterations(EndsEarly):
    """Base of the fixed-iteration trainers; put it first among the bases."""

    iterations_per_epoch = 25
    val_iterations_per_epoch = 5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.total_iterations = training_iterations_from_environment()
        self.num_iterations_per_epoch = self.iterations_per_epoch
        self.num_val_iterations_per_epoch = self.val_iterations_per_epoch
        self.num_epochs = math.ceil(self.total_iterations / self.iterations_per_epoch)
        self.save_every = 1  # a killed run resumes with --c from its last epoch

    def on_epoch_start(self):
        super().on_epoch_start()
        self.iterations_this_epoch = 0

    def on_epoch_end(self):
        super().on_epoch_end()  # counts the epoch as done (current_epoch + 1): its iterations are in it now
        self.iterations_this_epoch = 0

    def train_step(self, batch: dict) -> dict:
        if self.iterations_trained() >= self.total_iterations:  # only within a cut-off last epoch
            self.partial_epoch_iterations = self.iterations_this_epoch
            self.logger.log("epoch_end_timestamps", time(), self.current_epoch)
            self.current_epoch += 1
            raise StopTraining()
        outputs = super().train_step(batch)
        self.iterations_this_epoch += 1
        return outputs

    def iterations_trained(self) -> int:
        """Iterations of the finished epochs and of the running one."""
        if getattr(self, "partial_epoch_iterations", None) is not None:
            return self.total_iterations
        return self.current_epoch * self.num_iterations_per_epoch + getattr(self, "iterations_this_epoch", 0)


class nnUNetTrainer_Iterations(FixedIterations, nnUNetTrainer):
    """nnU-Net's baseline for ``NNUNET_MSFEN_TRAIN_ITERATIONS`` iterations."""


class nnUNetTrainerMSFEN_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """MSFEN for ``NNUNET_MSFEN_TRAIN_ITERATIONS`` iterations."""


class nnUNetTrainerMSFEN_v1_Iterations(FixedIterations, nnUNetTrainerMSFEN_v1):
    """The 0.1.0 MSFEN for ``NNUNET_MSFEN_TRAIN_ITERATIONS`` iterations."""


class nnUNetTrainerMSFEN_PlannedDownsampling_Iterations(FixedIterations, nnUNetTrainerMSFEN_PlannedDownsampling):
    """MSFEN with the planned downsampling kernel (the default until 2026-12-02) for ``NNUNET_MSFEN_TRAIN_ITERATIONS``
    iterations."""


class nnUNetTrainer_ModalityDropout_Iterations(FixedIterations, ModalityDropout, nnUNetTrainer):
    """nnU-Net's U-Net with randomly missing sequences, for ``NNUNET_MSFEN_TRAIN_ITERATIONS`` iterations."""


class nnUNetTrainerMSFEN_ModalityDropout_Iterations(FixedIterations, ModalityDropout, nnUNetTrainerMSFEN):
    """MSFEN with randomly missing sequences, for ``NNUNET_MSFEN_TRAIN_ITERATIONS`` iterations."""
