"""Trainers that train for a wall-clock budget instead of a number of epochs: the demo, and comparisons of two
networks at equal training time (``nnunet-msfen benchmark-accuracy``).

The budget is read from ``NNUNET_MSFEN_TRAIN_MINUTES`` (nnUNetv2_train has no flag for it). After each epoch the
number of epochs that fit the budget is re-estimated from the epochs so far, and ``num_epochs`` and the poly
schedule's horizon follow it, so the learning rate anneals to ~0 when the budget runs out, as in a full nnU-Net
run. The time already spent is summed from the logged epoch timestamps, so ``--c`` continues the same budget.
"""
import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.stopping import EndsEarly, StopTraining

BUDGET_VARIABLE = "NNUNET_MSFEN_TRAIN_MINUTES"


def training_minutes_from_environment() -> float:
    """The budget in minutes from ``NNUNET_MSFEN_TRAIN_MINUTES``; ``ValueError`` naming the value if it is bad."""
    raw = os.environ.get(BUDGET_VARIABLE)
    if raw is None:
        raise ValueError(f"{BUDGET_VARIABLE} is not set: time-budget trainers need it (minutes of training, e.g. 10)")
    try:
        minutes = float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_VARIABLE} must be a number of minutes, got {raw!r}") from None
    if not minutes > 0:
        raise ValueError(f"{BUDGET_VARIABLE} must be > 0, got {raw!r}")
    return minutes


class TimeBudget(EndsEarly):
    """Base for the time-budget trainers; short epochs keep the overshoot of the budget small."""

    iterations_per_epoch = 25
    val_iterations_per_epoch = 5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.budget_seconds = 60 * training_minutes_from_environment()
        self.num_iterations_per_epoch = self.iterations_per_epoch
        self.num_val_iterations_per_epoch = self.val_iterations_per_epoch
        self.save_every = 1  # a killed run resumes with --c from its last epoch

    def seconds_trained(self) -> float:
        starts = self.logger.get_value("epoch_start_timestamps", step=None)
        ends = self.logger.get_value("epoch_end_timestamps", step=None)
        return float(sum(e - s for s, e in zip(starts, ends)))

    def on_epoch_end(self):
        super().on_epoch_end()
        spent, done = self.seconds_trained(), self.current_epoch
        fitting = max(done, int(self.budget_seconds / (spent / done))) if done else self.num_epochs
        self.num_epochs = fitting
        self.lr_scheduler.max_steps = fitting
        if done >= fitting:
            self.print_to_log_file(f"Time budget of {self.budget_seconds / 60:.1f} min reached after {done} epochs "
                                   f"({spent / 60:.1f} min of training)")
            raise StopTraining()


class nnUNetTrainerMSFEN_TimeBudget(TimeBudget, nnUNetTrainerMSFEN):
    """MSFEN for ``NNUNET_MSFEN_TRAIN_MINUTES`` minutes."""


class nnUNetTrainer_TimeBudget(TimeBudget, nnUNetTrainer):
    """nnU-Net's baseline for ``NNUNET_MSFEN_TRAIN_MINUTES`` minutes (same schedule as the MSFEN variant)."""
