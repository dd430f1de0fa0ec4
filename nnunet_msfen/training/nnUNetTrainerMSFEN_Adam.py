"""nnUNetTrainerMSFEN_Adam: the optimiser the paper's body describes (Adam, lr 1e-3, linear warm-up, cosine
annealing) instead of nnU-Net's SGD + poly schedule."""
import torch

from nnunet_msfen.training.lr_schedulers import WarmupCosineLRScheduler
from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN


class nnUNetTrainerMSFEN_Adam(nnUNetTrainerMSFEN):
    """Adam (lr 1e-3, nnU-Net's weight decay), ``warmup_fraction`` of the epochs of linear warm-up, then cosine."""

    adam_lr = 1e-3
    warmup_fraction = 0.05

    def configure_optimizers(self):
        self.initial_lr = self.adam_lr
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay)
        warmup = min(self.num_epochs - 1, max(1, round(self.warmup_fraction * self.num_epochs)))
        return optimizer, WarmupCosineLRScheduler(optimizer, self.initial_lr, self.num_epochs, warmup)
