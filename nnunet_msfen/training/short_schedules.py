"""Short schedules for smoke runs, demos and equal-budget comparisons; never for reported results.

``*_Smoke``: 2 epochs of 2 iterations, a checkpoint every epoch and no mirroring (neither as augmentation nor as
test-time augmentation, which is 8x the validation time in 3D): tests and CI. ``nnUNetTrainer_Smoke`` gives
nnU-Net's baseline the very same schedule, so that a comparison differs only in what each trainer is: the network,
and MSFEN's loss weights and initial learning rate.

``*_Short``: 8 epochs of 25 iterations (200 in all; nnU-Net's poly learning rate over them), mirroring and the
final validation as in nnU-Net: cross-validation comparisons on phantom data on a CPU, where a fixed number of
iterations (unlike a time budget) gives the same result however loaded the machine is.

A schedule is four named class attributes of ``ShortSchedule`` (``SCHEDULE_ATTRIBUTES``); ``None`` keeps nnU-Net's
value. A subclass that defines nnU-Net's own attribute names (``num_epochs``, ...) or a near-miss of ours
(``epoch``, ``checkpoints_every``) is refused when the class is created: nnU-Net's ``__init__`` would silently
overwrite the one, and nothing would ever read the other.
"""
import difflib
from typing import Optional

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoMirroring import \
    nnUNetTrainerNoMirroring

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN

# ours -> the nnU-Net trainer attribute it sets
SCHEDULE_ATTRIBUTES = {"epochs": "num_epochs", "iterations_per_epoch": "num_iterations_per_epoch",
                       "val_iterations_per_epoch": "num_val_iterations_per_epoch", "checkpoint_every": "save_every"}
NNUNET_NAMES = {nnunet: ours for ours, nnunet in SCHEDULE_ATTRIBUTES.items()}


def _meant(name: str) -> Optional[str]:
    """The schedule attribute a class attribute ``name`` looks like a mistake for, or ``None``: nnU-Net's own name
    for one (its ``__init__`` would overwrite the value), the former ``schedule`` dict, or a near-miss of ours."""
    if name in SCHEDULE_ATTRIBUTES or name.startswith("__"):
        return None
    if name == "schedule":
        return "one class attribute per value"
    close = difflib.get_close_matches(name, [*SCHEDULE_ATTRIBUTES, *NNUNET_NAMES], n=1, cutoff=0.8)
    return NNUNET_NAMES.get(close[0], close[0]) if close else None


def _check_schedule_names(cls: type) -> None:
    """``ValueError`` naming the first attribute defined by ``cls`` itself that ``_meant`` flags."""
    for name in vars(cls):
        meant = _meant(name)
        if meant is not None:
            raise ValueError(f"{cls.__name__}.{name} is not a schedule attribute (did you mean {meant}?); a short "
                             f"schedule is set with {', '.join(SCHEDULE_ATTRIBUTES)} (None keeps nnU-Net's value)")


class ShortSchedule(nnUNetTrainer):
    """Base of the short variants: after nnU-Net's ``__init__``, sets nnU-Net's schedule from the class attributes
    below (``None``: nnU-Net's value stays). Put it first among the bases so that its ``__init__`` runs around the
    trainer's own.

    Attributes:
        epochs: ``num_epochs``.
        iterations_per_epoch: ``num_iterations_per_epoch``.
        val_iterations_per_epoch: ``num_val_iterations_per_epoch``.
        checkpoint_every: ``save_every`` (epochs between checkpoints).
    """

    epochs: Optional[int] = None
    iterations_per_epoch: Optional[int] = None
    val_iterations_per_epoch: Optional[int] = None
    checkpoint_every: Optional[int] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check_schedule_names(cls)

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.epochs is not None:
            self.num_epochs = self.epochs
        if self.iterations_per_epoch is not None:
            self.num_iterations_per_epoch = self.iterations_per_epoch
        if self.val_iterations_per_epoch is not None:
            self.num_val_iterations_per_epoch = self.val_iterations_per_epoch
        if self.checkpoint_every is not None:
            self.save_every = self.checkpoint_every


class SmokeSchedule(ShortSchedule):
    """2 epochs of 2 iterations, 1 validation iteration, a checkpoint every epoch."""

    epochs, iterations_per_epoch, val_iterations_per_epoch, checkpoint_every = 2, 2, 1, 1


class ShortRunSchedule(ShortSchedule):
    """8 epochs of 25 iterations, 5 validation iterations, a checkpoint every 4 epochs."""

    epochs, iterations_per_epoch, val_iterations_per_epoch, checkpoint_every = 8, 25, 5, 4


class nnUNetTrainerMSFEN_Smoke(SmokeSchedule, nnUNetTrainerMSFEN, nnUNetTrainerNoMirroring):
    pass


class nnUNetTrainer_Smoke(SmokeSchedule, nnUNetTrainerNoMirroring):
    pass


class nnUNetTrainerMSFEN_5epochs(ShortSchedule, nnUNetTrainerMSFEN):
    epochs = 5


class nnUNetTrainerMSFEN_50epochs(ShortSchedule, nnUNetTrainerMSFEN):
    epochs = 50


class nnUNetTrainerMSFEN_Short(ShortRunSchedule, nnUNetTrainerMSFEN):
    pass


class nnUNetTrainer_Short(ShortRunSchedule, nnUNetTrainer):
    pass
