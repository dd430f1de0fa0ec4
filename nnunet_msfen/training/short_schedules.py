"""Short schedules for smoke runs, demos and equal-budget comparisons; never for reported results.

``*_Smoke``: 2 epochs of 2 iterations, a checkpoint every epoch and no mirroring (neither as augmentation nor as
test-time augmentation, which is 8x the validation time in 3D): tests and CI. ``nnUNetTrainer_Smoke`` gives
nnU-Net's baseline the very same schedule, so that a comparison differs only in what each trainer is: the network,
and MSFEN's loss weights and initial learning rate.

``*_Short``: 8 epochs of 25 iterations (200 in all; nnU-Net's poly learning rate over them), mirroring and the
final validation as in nnU-Net: cross-validation comparisons on phantom data on a CPU, where a fixed number of
iterations (unlike a time budget) gives the same result however loaded the machine is.
"""
from typing import Dict

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoMirroring import \
    nnUNetTrainerNoMirroring

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN


class ShortSchedule(nnUNetTrainer):
    """Base of the short variants: after nnU-Net's ``__init__``, sets the trainer attributes in ``schedule``.
    Put it first among the bases so that its ``__init__`` runs around the trainer's own."""

    schedule: Dict[str, int] = {}

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        for name, value in self.schedule.items():
            setattr(self, name, value)


SMOKE = dict(num_epochs=2, num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, save_every=1)
SHORT = dict(num_epochs=8, num_iterations_per_epoch=25, num_val_iterations_per_epoch=5, save_every=4)


class nnUNetTrainerMSFEN_Smoke(ShortSchedule, nnUNetTrainerMSFEN, nnUNetTrainerNoMirroring):
    schedule = SMOKE


class nnUNetTrainer_Smoke(ShortSchedule, nnUNetTrainerNoMirroring):
    schedule = SMOKE


class nnUNetTrainerMSFEN_5epochs(ShortSchedule, nnUNetTrainerMSFEN):
    schedule = dict(num_epochs=5)


class nnUNetTrainerMSFEN_50epochs(ShortSchedule, nnUNetTrainerMSFEN):
    schedule = dict(num_epochs=50)


class nnUNetTrainerMSFEN_Short(ShortSchedule, nnUNetTrainerMSFEN):
    schedule = SHORT


class nnUNetTrainer_Short(ShortSchedule, nnUNetTrainer):
    schedule = SHORT
