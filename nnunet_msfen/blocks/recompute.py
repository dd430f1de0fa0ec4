"""Activation recomputation for MSFEN's blocks (``torch.utils.checkpoint``, non-reentrant).

A block with ``recompute`` set keeps less than its intermediates for the backward pass and recomputes the rest
there. MSFEN's blocks are many cheap operations on full-resolution maps: storing their intermediates is what made
MSFEN need more training memory than nnU-Net's U-Net. Four modes (``RECOMPUTE_MODES``), from most to least memory:

- ``"none"`` (or ``False``): everything stored, nothing recomputed.
- ``"products"``: the outputs of every convolution and matrix product (the 1x1 convolutions run as matrix products
  on the CPU, ``blocks/conv.py``) are stored, the element-wise operations (norms, activations, attention gates,
  sums, concatenations) recomputed.
- ``"cheap"``: only the outputs of the spatial convolutions (kernel > 1) are stored, everything else recomputed
  (PyTorch's selective checkpointing). The backward pass then repeats only operations that cost little time but
  many full-resolution maps.
- ``"all"`` (or ``True``): only the block's inputs and output are stored, the whole block runs twice.

Measured on the BraTS 3d_fullres topology (64^3, batch 2; AVX-512 AMD EPYC, 2 cores, 2026-12-01), forward +
backward, median of 4 interleaved rounds: none 2.61 s, cheap 2.92 s, all 3.12 s; peak training memory 1520, 976
and 830 MiB (PlainConvUNet: 1115 MiB). In ``nnunet-msfen benchmark``'s interleaved rounds "cheap" was 3-12% faster
than "all" in every round, 3D and 2D (docs/ablation.md section 9).

``MSFENUNet`` chooses per resolution level (``recompute_levels``); its default ``"auto"`` is "cheap" at the full
resolution, where the maps are largest, and "products" at every level below, whose maps are 2^d times smaller per
level while recomputing their matrix products cost as much time as at full resolution: the 2d training step 8%
faster for 1146 instead of 976 MiB (12 x 192^2, 10 interleaved rounds, 2.75 against 2.98 s, faster in each;
PlainConvUNet 1281 MiB; AVX-512 AMD EPYC, 2026-12-03, docs/ablation.md section 26). The planner is calibrated for
the default (docs/planner_calibration.md). "all" is for the tightest memory.

Only in training with gradients enabled; prediction and ``torch.no_grad`` run the block once as usual.
"""
import functools
from typing import List, Sequence, Union

import torch
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

RECOMPUTE_MODES = ("none", "products", "cheap", "all")
# MSFENUNet's default: "cheap" at full resolution, "products" below (module docstring)
AUTO = "auto"
# the convolutions as selective checkpointing sees them: MSFEN calls oneDNN directly on the CPU (blocks/conv.py),
# every other device goes through aten.convolution
_CONVOLUTIONS = (torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default)
_PRODUCTS = (torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default, torch.ops.aten.mm.default,
             torch.ops.aten.addmm.default)


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


def recompute_levels(value: Union[bool, str, Sequence[Union[bool, str]]], n_levels: int) -> List[str]:
    """One of ``RECOMPUTE_MODES`` per resolution level (full resolution first): ``"auto"`` is "cheap" at full
    resolution and "products" below, a single mode applies to every level, a sequence gives one per level.

    Raises:
        ValueError: for an unknown mode or a sequence whose length is not ``n_levels``.
    """
    if value == AUTO:
        return ["cheap"] + ["products"] * (n_levels - 1)
    if isinstance(value, (bool, str)) or not isinstance(value, Sequence):
        return [recompute_mode(value)] * n_levels
    value = list(value)
    if len(value) != n_levels:
        raise ValueError(f"recompute must be a mode or one per resolution level ({n_levels}), got recompute={value}")
    return [recompute_mode(v) for v in value]


def _keep_spatial_convolutions(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Store what a convolution with a kernel larger than 1 computes; recompute everything else."""
    if op in _CONVOLUTIONS and args[1][0, 0].numel() > 1:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def _keep_convolutions_and_products(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Store what every convolution and matrix product computes; recompute the element-wise operations."""
    if op in _CONVOLUTIONS or op in _PRODUCTS:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


_POLICIES = {"cheap": _keep_spatial_convolutions, "products": _keep_convolutions_and_products}


def recomputed(module: nn.Module, function, *inputs: torch.Tensor) -> torch.Tensor:
    """``function(*inputs)``, with what ``module.recompute`` names recomputed in the backward pass instead of
    stored, when ``module`` trains with gradients."""
    mode = recompute_mode(module.recompute)
    if mode == "none" or not module.training or not torch.is_grad_enabled():
        return function(*inputs)
    if mode == "all":
        return checkpoint(function, *inputs, use_reentrant=False)
    return checkpoint(function, *inputs, use_reentrant=False,
                      context_fn=functools.partial(create_selective_checkpoint_contexts, _POLICIES[mode]))
