"""Ending a training before ``num_epochs`` the way a full run ends.

nnU-Net's ``run_training`` loops over a range fixed at its start, so a hook cannot shorten it. A variant that
stops early raises ``StopTraining`` from ``on_epoch_end`` (after the epoch is logged and checkpointed);
``EndsEarly.run_training`` catches it and runs ``on_train_end``, which writes ``checkpoint_final.pth``.
``nnUNetv2_train`` then runs the final validation as after any training, so ``nnUNetv2_predict`` and
``nnUNetv2_find_best_configuration`` work on the result.
"""
import os
from typing import Callable, TypeVar

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

Number = TypeVar("Number", int, float)


class StopTraining(Exception):
    """Raised from ``on_epoch_end`` to end the training after the current epoch."""


class EndsEarly(nnUNetTrainer):
    """Mixin-style base: catches ``StopTraining`` and finishes the run normally."""

    def run_training(self):
        try:
            super().run_training()
        except StopTraining:
            self.on_train_end()


def positive_from_environment(variable: str, parse: Callable[[str], Number], what: str, example: str) -> Number:
    """The positive number in environment variable ``variable`` (nnUNetv2_train has no flag for a budget);
    ``ValueError`` naming the variable and the value when it is unset, not a ``what`` or not positive."""
    raw = os.environ.get(variable)
    if raw is None:
        raise ValueError(f"{variable} is not set: these trainers need it ({what}, e.g. {example})")
    try:
        value = parse(raw)
    except ValueError:
        raise ValueError(f"{variable} must be a {what}, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{variable} must be > 0, got {raw!r}")
    return value
