"""Short schedules for smoke runs, demos and equal-budget comparisons; never for reported results.

``*_Smoke``: 2 epochs of 2 iterations, a checkpoint every epoch and no mirroring (neither as augmentation nor as
test-time augmentation, which is 8x the validation time in 3D): tests and CI. ``nnUNetTrainer_Smoke`` gives
nnU-Net's baseline the very same schedule, so that a comparison differs only in the network.

``*_Short``: 8 epochs of 25 iterations (200 in all; nnU-Net's poly learning rate over them), mirroring and the
final validation as in nnU-Net: cross-validation comparisons on phantom data on a CPU, where a fixed number of
iterations (unlike a time budget) gives the same result however loaded the machine is.
"""
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoMirroring import \
    nnUNetTrainerNoMirroring

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN


def _shorten(trainer: nnUNetTrainer, epochs: int, iterations: int, val_iterations: int, save_every: int) -> None:
    trainer.num_epochs = epochs
    trainer.num_iterations_per_epoch = iterations
    trainer.num_val_iterations_per_epoch = val_iterations
    trainer.save_every = save_every


class nnUNetTrainerMSFEN_Smoke(nnUNetTrainerMSFEN, nnUNetTrainerNoMirroring):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self, epochs=2, iterations=2, val_iterations=1, save_every=1)


class nnUNetTrainer_Smoke(nnUNetTrainerNoMirroring):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self, epochs=2, iterations=2, val_iterations=1, save_every=1)


class nnUNetTrainerMSFEN_5epochs(nnUNetTrainerMSFEN):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 5


class nnUNetTrainerMSFEN_50epochs(nnUNetTrainerMSFEN):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 50


class nnUNetTrainerMSFEN_Short(nnUNetTrainerMSFEN):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self, epochs=8, iterations=25, val_iterations=5, save_every=4)


class nnUNetTrainer_Short(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _shorten(self, epochs=8, iterations=25, val_iterations=5, save_every=4)
