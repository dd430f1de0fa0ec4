"""Training with randomly missing MRI sequences, so that the model segments with any subset of them.

    nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerMSFEN_ModalityDropout

In every training step each sequence of each sample is set to zero with probability
``modality_dropout_probability`` (never all of a sample's sequences), after nnU-Net's normalisation and
augmentation: exactly what a missing sequence filled with zeros looks like at prediction time (z-score
normalisation keeps zeros zero). The draw happens in ``train_step`` on the batch, so DDP, ``--c``, ``--val``,
deep supervision and validation (which sees every sequence) work unchanged. MSFEN's stem gives absent sequences
zero weight (``ModalityAwareStem``); ``nnUNetTrainer_ModalityDropout`` applies the same recipe to nnU-Net's U-Net,
which separates what the recipe gives from what the stem adds.

Recipe: whole-sequence dropout during training, as in "Robust nnU-Net for missing MRI modalities"
(arXiv 2602.20218) and the missing-modality literature before it (HeMIS, U-HVED).
"""
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN


def drop_modalities(data: torch.Tensor, probability: float, generator: torch.Generator = None) -> torch.Tensor:
    """``data`` (batch, channels, ...) with each channel of each sample zeroed with ``probability``; a sample that
    would lose every channel keeps one, chosen at random.

    Raises:
        ValueError: for a ``probability`` outside [0, 1).
    """
    if not 0 <= probability < 1:
        raise ValueError(f"modality dropout probability must be in [0, 1), got {probability!r}")
    batch, channels = data.shape[:2]
    drop = torch.rand(batch, channels, generator=generator) < probability
    lost_all = drop.all(dim=1)
    if lost_all.any():
        rows = lost_all.nonzero()[:, 0]
        drop[rows, torch.randint(channels, (len(rows),), generator=generator)] = False
    keep = (~drop).to(device=data.device, dtype=data.dtype)
    return data * keep.view(batch, channels, *([1] * (data.ndim - 2)))


class ModalityDropout(nnUNetTrainer):
    """Mixin: drops sequences in every training step. Put it first among the bases."""

    modality_dropout_probability = 0.25

    def train_step(self, batch: dict) -> dict:
        batch = dict(batch, data=drop_modalities(batch["data"], self.modality_dropout_probability))
        return super().train_step(batch)


class nnUNetTrainerMSFEN_ModalityDropout(ModalityDropout, nnUNetTrainerMSFEN):
    """MSFEN trained with randomly missing sequences."""


class nnUNetTrainer_ModalityDropout(ModalityDropout, nnUNetTrainer):
    """nnU-Net's U-Net trained with randomly missing sequences (the recipe without MSFEN's stem)."""
