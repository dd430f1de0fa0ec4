"""Activation recomputation for MSFEN's blocks (``torch.utils.checkpoint``, non-reentrant).

A block with ``recompute`` set keeps less than its intermediates for the backward pass and recomputes the rest
there. MSFEN's blocks are many cheap operations on full-resolution maps: storing their intermediates is what made
MSFEN need more training memory than nnU-Net's U-Net. Three modes (``RECOMPUTE_MODES``):

- ``"none"`` (or ``False``): everything stored, nothing recomputed.
- ``"cheap"`` (``MSFENUNet``'s default): the outputs of the spatial convolutions (kernel > 1) are stored, every
  other operation (norms, activations, attention gates, pointwise convolutions, sums, concatenations) is
  recomputed (PyTorch's selective checkpointing). The backward pass then repeats only operations that cost
  little time but many full-resolution maps.
- ``"all"`` (or ``True``): only the block's inputs and output are stored, the whole block
  runs twice.

Measured on the BraTS 3d_fullres topology (64^3, batch 2; AVX-512 AMD EPYC, 2 cores, 2026-12-01), forward +
backward, median of 4 interleaved rounds: none 2.61 s, cheap 2.92 s, all 3.12 s; peak training memory 1520, 976
and 830 MiB (PlainConvUNet: 1115 MiB). In ``nnunet-msfen benchmark``'s interleaved rounds "cheap" was 3-12% faster
than "all" in every round, 3D and 2D (docs/ablation.md section 9), and stays below PlainConvUNet's memory (0.88x),
so it is the default since 2026-12-01; the planner is calibrated for it (docs/planner_calibration.md). "all" is for
the tightest memory.

Only in training with gradients enabled; prediction and ``torch.no_grad`` run the block once as usual.
"""
import functools
from typing import Union

import torch
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

RECOMPUTE_MODES = ("none", "cheap", "all")
# the convolutions as selective checkpointing sees them: MSFEN calls oneDNN directly on the CPU (blocks/conv.py),
# every other device goes through aten.convolution
_CONVOLUTIONS = (torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default)


def recompute_mode(value: Union[bool, str]) -> str:
    """``value`` as one of ``RECOMPUTE_MODES`` (``False`` is ``"none"``, ``True`` is ``"all"``).

    Raises:
        ValueError: for any other value.
    """
    if value is False or value is True:
        return "all" if value else "none"
    if value not in RECOMPUTE_MODES:
        raise ValueError(f"recompute must be one of {RECOMPUTE_MODES} (or a bool), got recompute={value!r}")
    return value


def _keep_spatial_convolutions(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Store what a convolution with a kernel larger than 1 computes; recompute everything else."""
    if op in _CONVOLUTIONS and args[1][0, 0].numel() > 1:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def recomputed(module: nn.Module, function, *inputs: torch.Tensor) -> torch.Tensor:
    """``function(*inputs)``, with what ``module.recompute`` names recomputed in the backward pass instead of
    stored, when ``module`` trains with gradients."""
    mode = recompute_mode(module.recompute)
    if mode == "none" or not module.training or not torch.is_grad_enabled():
        return function(*inputs)
    if mode == "all":
        return checkpoint(function, *inputs, use_reentrant=False)
    return checkpoint(function, *inputs, use_reentrant=False,
                      context_fn=functools.partial(create_selective_checkpoint_contexts, _keep_spatial_convolutions))
