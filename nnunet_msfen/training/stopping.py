"""Ending a training before ``num_epochs`` the way a full run ends.

nnU-Net's ``run_training`` loops over a range fixed at its start, so a hook cannot shorten it. A variant that
stops early raises ``StopTraining`` from ``on_epoch_end`` (after the epoch is logged and checkpointed);
``EndsEarly.run_training`` catches it and runs ``on_train_end``, which writes ``checkpoint_final.pth``.
``nnUNetv2_train`` then runs the final validation as after any training, so ``nnUNetv2_predict`` and
``nnUNetv2_find_best_configuration`` work on the result.
"""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class StopTraining(Exception):
    """Raised from ``on_epoch_end`` to end the training after the current epoch."""


class EndsEarly(nnUNetTrainer):
    """Mixin-style base: catches ``StopTraining`` and finishes the run normally."""

    def run_training(self):
        try:
            super().run_training()
        except StopTraining:
            self.on_train_end()
