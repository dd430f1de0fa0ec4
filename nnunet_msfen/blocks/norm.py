"""Instance normalisation through PyTorch's group-norm kernel on the CPU, and when it makes a bias redundant.

nnU-Net plans ``InstanceNormNd`` (no running statistics) for every network. On the CPU PyTorch computes it as a
batch norm over a ``(1, batch * channels, ...)`` view, a kernel that is 1.2-1.6x slower forward and backward
together than ``F.group_norm`` with one group per channel, which is the same normalisation (measured on
2 x 32 x 64^3: 73 against 57 ms; 12 x 64 x 96^2: 15.5 against 9.4 ms; 2-core Xeon with AVX-512, torch 2.14).
``normalize`` takes that kernel for such norms and calls any other module as it is; the module and its
parameters stay the planned ``InstanceNormNd``, so checkpoints and exports see no difference.

An instance norm subtracts each channel's mean, so a per-channel constant added before it (the bias of the 1x1
convolution that ends every MSFEN block) leaves its output unchanged and gets no gradient through it. nnU-Net plans
``conv_bias=True``; ``skip_cancelled_bias`` lets a block skip adding that bias in prediction, where adding it costs
a full pass over the block's output on the CPU (the matrix product's output is first filled with the bias): 2-4% of
a 3D sliding-window prediction (docs/ablation.md section 10).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.instancenorm import _InstanceNorm

from nnunet_msfen.blocks.tracing import tracing


def skip_cancelled_bias(norm: nn.Module, dropout: nn.Module = None) -> bool:
    """Whether a block may leave out the per-channel bias ``b`` in ``norm(dropout(x + b))``: ``norm`` is an instance
    norm without running statistics, ``dropout`` (if any) does nothing in the current mode, so the output is the
    same without ``b``, and no gradients are recorded (in training every parameter keeps its part in the graph:
    DistributedDataParallel fails on parameters that get no gradient)."""
    inactive = dropout is None or isinstance(dropout, nn.Identity) or not dropout.training \
        or getattr(dropout, "p", 1) == 0
    return not torch.is_grad_enabled() and inactive and isinstance(norm, _InstanceNorm) \
        and not norm.track_running_stats


def normalize(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)``; for an ``InstanceNormNd`` without running statistics on the CPU, ``F.group_norm`` with one
    group per channel."""
    if not isinstance(norm, _InstanceNorm) or norm.track_running_stats or x.device.type != "cpu" or tracing() \
            or x.ndim != norm._get_no_batch_dim() + 1 or x.shape[1] != norm.num_features:
        return norm(x)
    return F.group_norm(x, norm.num_features, norm.weight, norm.bias, norm.eps)
