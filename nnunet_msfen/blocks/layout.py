"""Where MSFEN's feature maps keep their channels in CPU prediction: innermost (channels-last) at high resolution,
after the spatial axes (PyTorch's default NC(D)HW) at low resolution and whenever gradients are recorded.

Why: MSFEN's high-resolution levels are 1x1 convolutions, small grouped convolutions and per-voxel reductions over
the channels (the spatial attention). With the channels innermost a 1x1 convolution is one ``(voxels, C_in) @
(C_in, C_out)`` matrix product over every voxel of the batch, oneDNN convolves without reordering its input and
output, and the channel mean and maximum read contiguous memory. At low resolution (few voxels, many channels) the
default layout is the faster one: PyTorch's channels-last group norm and the small matrix products there are
slower. In training the layout stays NC(D)HW: a 2d training step measured 1.2x slower with channels-last maps (the
backward passes of the grouped convolutions and norms). Measured in docs/ablation.md section 24; the network computes
the same function either way, up to the order of floating-point sums (tests/test_layout.py).
"""
import math
from typing import Sequence, Union

import torch

from nnunet_msfen.blocks.tracing import tracing

# maps with at least this many voxels per channel run channels-last on the CPU (48^2 and 16^3 do, 24^2 and 8^3 not)
CHANNELS_LAST_FROM_VOXELS = 2048


def channels_last_format(ndim: int) -> torch.memory_format:
    """``torch.channels_last`` for a 4-d tensor, ``torch.channels_last_3d`` for a 5-d one."""
    if ndim not in (4, 5):
        raise ValueError(f"channels-last needs a 4-d or 5-d tensor, got ndim={ndim}")
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` keeps its channels innermost (NHWC / NDHWC strides; also a channel slice of such a map)."""
    return x.ndim in (4, 5) and x.shape[1] > 1 and x.stride(1) == 1


def _acts_on(x: torch.Tensor) -> bool:
    # prediction (no gradients) of float32 maps on the CPU, outside any graph capture
    return not torch.is_grad_enabled() and not tracing() and x.device.type == "cpu" and x.dtype == torch.float32 \
        and x.ndim in (4, 5)


def _in_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=channels_last_format(x.ndim) if channels_last else torch.contiguous_format)


def layout_for(x: torch.Tensor, stride: Union[int, Sequence[int]] = 1) -> torch.Tensor:
    """``x`` in the prediction layout of the maps it becomes after a convolution with ``stride`` (one int or one per
    axis): channels-last from ``CHANNELS_LAST_FROM_VOXELS`` voxels per channel on, NC(D)HW below. Unchanged while
    gradients are recorded, off the CPU, for other dtypes than float32 and while tracing (ONNX, TorchScript,
    ``torch.compile`` keep PyTorch's default layout and see no shape arithmetic here)."""
    if not _acts_on(x):
        return x
    strides = [int(stride)] * (x.ndim - 2) if isinstance(stride, int) else [int(s) for s in stride]
    if len(strides) != x.ndim - 2:
        raise ValueError(f"stride must be one int or one per spatial axis of x {tuple(x.shape)}, got stride={stride}")
    return _in_layout(x, math.prod(size // s for size, s in zip(x.shape[2:], strides)) >= CHANNELS_LAST_FROM_VOXELS)


def as_layout_of(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` in ``reference``'s layout (channels-last or NC(D)HW): the decoder brings the coarser map to its skip's.
    Unchanged where ``layout_for`` leaves maps unchanged."""
    return _in_layout(x, is_channels_last(reference)) if _acts_on(x) else x
