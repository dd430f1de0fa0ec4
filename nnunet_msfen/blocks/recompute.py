"""Activation recomputation for MSFEN's blocks (``torch.utils.checkpoint``, non-reentrant).

A block with ``recompute`` set keeps only its inputs and output for the backward pass and recomputes the rest
there. MSFEN's blocks are many cheap operations on full-resolution maps: storing their intermediates is what made
MSFEN need more training memory than nnU-Net's U-Net, while recomputing them costs little time (docs/ablation.md).
Only in training with gradients enabled; prediction and ``torch.no_grad`` run the block once as usual.
"""
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def recomputed(module: nn.Module, function, *inputs: torch.Tensor) -> torch.Tensor:
    """``function(*inputs)``, recomputed in the backward pass instead of stored when ``module.recompute`` is set
    and ``module`` trains with gradients."""
    if module.recompute and module.training and torch.is_grad_enabled():
        return checkpoint(function, *inputs, use_reentrant=False)
    return function(*inputs)
