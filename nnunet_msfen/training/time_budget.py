"""Trainers that train for a wall-clock budget instead of a number of epochs: the demo, and comparisons of two
networks at equal training time (``nnunet-msfen benchmark-accuracy``).

The budget is read from ``NNUNET_MSFEN_TRAIN_MINUTES`` (nnUNetv2_train has no flag for it). It is checked before
every training iteration, not once per epoch: on 2 CPU cores one 2d iteration of a BraTS-sized network takes
10-30 s, so a 25-iteration epoch is several minutes, and stopping only between epochs overshot (or, when the
estimate said the next epoch would not fit, undershot) the budget by that much. After each epoch the number of
epochs that fit is re-estimated from the epochs so far, and ``num_epochs`` and the poly schedule's horizon follow
it, so the learning rate anneals to ~0 when the budget runs out, as in a full nnU-Net run. The time already spent
is summed from the logged epoch timestamps, so ``--c`` continues the same budget.
"""
import math
from time import time
from typing import Dict

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.stopping import EndsEarly, StopTraining, positive_from_environment

BUDGET_VARIABLE = "NNUNET_MSFEN_TRAIN_MINUTES"


def training_minutes_from_environment() -> float:
    """The budget in minutes from ``NNUNET_MSFEN_TRAIN_MINUTES``; ``ValueError`` naming the value if it is bad."""
    return positive_from_environment(BUDGET_VARIABLE, float, "number of minutes", "10")


class TimeBudget(EndsEarly):
    """Base for the time-budget trainers: nnU-Net's training, stopped before the first iteration past the budget.
    Short epochs (25 iterations) let the learning-rate horizon follow the measured speed closely."""

    iterations_per_epoch = 25
    val_iterations_per_epoch = 5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.budget_seconds = 60 * training_minutes_from_environment()
        self.num_iterations_per_epoch = self.iterations_per_epoch
        self.num_val_iterations_per_epoch = self.val_iterations_per_epoch
        self.save_every = 1  # a killed run resumes with --c from its last epoch

    def seconds_trained(self, include_current_epoch: bool = False) -> float:
        """Training seconds so far: the logged epochs, and with ``include_current_epoch`` the running one."""
        starts = self.logger.get_value("epoch_start_timestamps", step=None)
        ends = self.logger.get_value("epoch_end_timestamps", step=None)
        spent = float(sum(e - s for s, e in zip(starts, ends)))
        if include_current_epoch and len(starts) > len(ends):
            spent += time() - starts[-1]
        return spent

    def on_epoch_start(self):
        super().on_epoch_start()
        self.iterations_this_epoch = 0

    def train_step(self, batch: dict) -> dict:
        if self.seconds_trained(include_current_epoch=True) >= self.budget_seconds:
            self._stop_within_epoch()
        outputs = super().train_step(batch)
        self.iterations_this_epoch += 1
        return outputs

    def _stop_within_epoch(self) -> None:
        """End the running epoch where it stands: its time is logged, and it counts as done in the final
        checkpoint if it trained at all (its updates are in the weights)."""
        done = self.iterations_this_epoch
        self.logger.log("epoch_end_timestamps", time(), self.current_epoch)
        if done:
            self.current_epoch += 1
        self.partial_epoch_iterations = done
        self.print_to_log_file(f"Time budget of {self.budget_seconds / 60:.1f} min reached after "
                               f"{self.iterations_trained()} training iterations "
                               f"({self.seconds_trained() / 60:.1f} min of training)")
        raise StopTraining()

    def iterations_trained(self) -> int:
        """Training iterations of the finished epochs plus those of the running one."""
        epochs_done = len(self.logger.get_value("epoch_end_timestamps", step=None))
        partial = getattr(self, "partial_epoch_iterations", None)
        if partial is None:  # the training has not stopped: the running epoch has no end timestamp yet
            return epochs_done * self.num_iterations_per_epoch + getattr(self, "iterations_this_epoch", 0)
        return (epochs_done - 1) * self.num_iterations_per_epoch + partial

    def budget_summary(self) -> Dict[str, float]:
        """What the budget bought, for reports: iterations and seconds, the cut-off last epoch included."""
        return {"iterations": self.iterations_trained(), "seconds": round(self.seconds_trained(), 3),
                "budget_seconds": self.budget_seconds}

    def on_epoch_end(self):
        super().on_epoch_end()
        spent, done = self.seconds_trained(), self.current_epoch
        fitting = max(done + 1, math.ceil(self.budget_seconds / (spent / done))) if done else self.num_epochs
        self.num_epochs = fitting
        self.lr_scheduler.max_steps = fitting


class nnUNetTrainerMSFEN_TimeBudget(TimeBudget, nnUNetTrainerMSFEN):
    """MSFEN for ``NNUNET_MSFEN_TRAIN_MINUTES`` minutes."""


class nnUNetTrainer_TimeBudget(TimeBudget, nnUNetTrainer):
    """nnU-Net's baseline for ``NNUNET_MSFEN_TRAIN_MINUTES`` minutes (same schedule as the MSFEN variant)."""
