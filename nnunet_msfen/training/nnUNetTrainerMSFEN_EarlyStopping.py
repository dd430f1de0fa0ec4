"""nnUNetTrainerMSFEN_EarlyStopping: stops when nnU-Net's EMA pseudo-Dice has not improved for ``patience``
epochs (the paper trains with early stopping). It ends like a full run (see ``stopping``): checkpoint_final.pth
and the final validation are there for nnUNetv2_predict and find_best_configuration."""
import numpy as np

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.stopping import EndsEarly, StopTraining


class nnUNetTrainerMSFEN_EarlyStopping(EndsEarly, nnUNetTrainerMSFEN):
    """``patience`` epochs without a new best EMA pseudo-Dice end the training."""

    patience = 50

    def epochs_since_best(self) -> int:
        """Epochs since the best EMA pseudo-Dice, from the logged history (so ``--c`` resumes it correctly)."""
        ema = self.logger.get_value("ema_fg_dice", step=None)
        return len(ema) - 1 - int(np.nanargmax(ema)) if len(ema) else 0

    def on_epoch_end(self):
        super().on_epoch_end()
        if self.epochs_since_best() >= self.patience and self.current_epoch < self.num_epochs:
            best = np.nanmax(self.logger.get_value("ema_fg_dice", step=None))
            self.print_to_log_file(f"Early stopping: no better EMA pseudo Dice for {self.patience} epochs "
                                   f"(best {best:.4f})")
            raise StopTraining()
