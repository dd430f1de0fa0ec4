"""Convolution helpers every MSFEN block uses: one dispatch rule for the CPU, a channel-gated pointwise
convolution that never materialises the gated tensor, and the decoder's upsampling as a pointwise convolution and
a pixel shuffle (``upsample``).

Why a dispatch rule: PyTorch (2.x) sends a float32 CPU convolution to oneDNN only if the batch is larger than 1 or
``N * C * D * H > 20480`` (a heuristic tuned for 2D images). nnU-Net predicts with batch 1, so every 3D convolution
with few channels or a small volume (MSFEN's 16-channel branches at 32^3, the spatial attention's 2 -> 1 map, the
deep stages) ran in ``slow_conv3d``, 5-13x slower than oneDNN (measured: 16 -> 16 channels, 3^3, 32^3: 59 ms vs
4.4 ms, 2-core AMD EPYC, torch 2.14). ``convolve`` calls oneDNN directly for those; on every other device and
dtype it is the module's own forward. In training, an ungrouped convolution with fewer than 16 input channels (the
multi-scale branches at full resolution, the spatial attention's 2 -> 1 map) runs on a channels-last copy of its
input: oneDNN's backward pass of such a convolution on NC(D)HW data is 2-5x slower (8 -> 8 channels, 3^3, on
2 x 64^3, forward and backward: 128 against 60 ms with both copies; 2 -> 1: 51 against 11 ms; 2-core Xeon with
AVX-512, torch 2.14), and the whole 3D training step gets 18% faster.

Why 1x1 convolutions as matrix products: on the CPU oneDNN runs a pointwise convolution of an NC(D)HW tensor at a
fraction of what a batched matrix product ``W @ x.view(N, C, -1)`` reaches (forward and backward of 32 -> 32
channels on 2 x 64^3: 180 ms against 65; 12 x 192^2: 150 against 53; 2-core Xeon with AVX-512, torch 2.14), and
every MSFEN block ends in one. ``pointwise_conv`` takes the product for contiguous CPU tensors, the convolution
elsewhere.

Channels-last maps (MSFEN's high-resolution levels in prediction, ``blocks/layout.py``) keep their layout through
every helper here: a 1x1 convolution is then one ``(voxels, C_in) @ (C_in, C_out)`` product over the whole batch
(192^2, 32 -> 32 channels, batch 1: 0.55 against 1.9 ms for the NC(D)HW product, which runs on one thread), oneDNN
convolves without reordering (32 -> 32, 3x3, 192^2: 3.2 against 10.1 ms), and the upsampling's pixel shuffle
interleaves channel vectors (2-core AMD EPYC with AVX-512, torch 2.14, docs/ablation.md section 24).

Why a gated pointwise convolution: ``fuse(x * g)`` with a per-sample channel gate ``g`` equals a 1x1 convolution
with per-sample weights ``W * g``, one batched matrix product; it saves writing, storing for backward and reading
back the full-resolution product ``x * g``, the single most expensive element-wise pass of the multi-scale unit.
"""
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from dynamic_network_architectures.building_blocks.helper import maybe_convert_scalar_to_list
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from nnunet_msfen.blocks.layout import channels_last_format, is_channels_last
from nnunet_msfen.blocks.norm import normalize
from nnunet_msfen.blocks.tracing import tracing

_FUNCTIONAL = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
# ungrouped convolutions with fewer input channels than this run through oneDNN on a channels-last copy in training
CHANNELS_LAST_BACKWARD_BELOW = 16


def _onednn_applies(x: torch.Tensor) -> bool:
    # tracing() first: torch.compile must not reach mkldnn.is_available(), which it refuses to trace (a graph
    # break in every convolution, and a recompilation per module after that)
    return not tracing() and x.device.type == "cpu" and x.dtype == torch.float32 \
        and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and x.ndim in (4, 5)


def conv_nd(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride=1, padding=0, dilation=1,
            groups: int = 1) -> torch.Tensor:
    """``F.convNd`` with integer or per-axis ``stride``/``padding``/``dilation``; oneDNN on the CPU for every shape."""
    n = x.ndim - 2
    if _onednn_applies(x):
        as_list = lambda v: [int(v)] * n if isinstance(v, int) else [int(i) for i in v]  # noqa: E731
        trains = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        arguments = (as_list(padding), as_list(stride), as_list(dilation), groups)
        # few input channels in training: oneDNN's backward pass is 2-5x faster on a channels-last copy (module
        # docstring), which goes back to NC(D)HW after; a channels-last map stays channels-last
        copy_for_backward = groups == 1 and x.shape[1] < CHANNELS_LAST_BACKWARD_BELOW and trains
        if is_channels_last(x) or copy_for_backward:
            out = torch.ops.aten.mkldnn_convolution(x.contiguous(memory_format=channels_last_format(x.ndim)), weight,
                                                    bias, *arguments)
            return out if is_channels_last(x) else out.contiguous()
        return torch.ops.aten.mkldnn_convolution(x.contiguous(), weight, bias, *arguments)
    return _FUNCTIONAL[n](x, weight, bias, stride, padding, dilation, groups)


def _matmul_applies(x: torch.Tensor) -> bool:
    return not tracing() and x.device.type == "cpu" and x.ndim in (4, 5) and (
        x.is_contiguous() or x.is_contiguous(memory_format=channels_last_format(x.ndim)))


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A 1x1 convolution of ``x`` (batch, C_in, *spatial) with ``weight`` (C_out, C_in) or per-sample weights
    (batch, C_out, C_in), and an optional ``bias`` (C_out,): on the CPU one batched matrix product (module
    docstring), elsewhere a convolution.

    Raises:
        ValueError: if ``weight`` does not match ``x``'s channels (and batch, for per-sample weights).
    """
    batch, channels, spatial = x.shape[0], x.shape[1], list(x.shape[2:])
    if weight.ndim not in (2, 3) or weight.shape[-1] != channels or (weight.ndim == 3 and weight.shape[0] != batch):
        raise ValueError(f"weight must have shape (C_out, {channels}) or ({batch}, C_out, {channels}) for an input "
                         f"of shape {tuple(x.shape)}, got {tuple(weight.shape)}")
    out_channels = weight.shape[-2]
    if _matmul_applies(x) and not x.is_contiguous():
        return _channels_last_pointwise_conv(x, weight, bias)
    if _matmul_applies(x):
        weight = weight.expand(batch, out_channels, channels)
        flat = x.reshape(batch, channels, -1)
        out = torch.bmm(weight, flat) if bias is None else torch.baddbmm(bias.view(1, out_channels, 1), weight, flat)
        return out.view(batch, out_channels, *spatial)
    ones = [1] * len(spatial)
    if weight.ndim == 2:
        return conv_nd(x, weight.reshape(out_channels, channels, *ones), bias)
    if tracing():  # a static graph must not take the batch size as its group count
        out = torch.einsum("boc,bc...->bo...", weight, x)
        return out if bias is None else out + bias.view(1, out_channels, *ones)
    out = conv_nd(x.reshape(1, batch * channels, *spatial), weight.reshape(batch * out_channels, channels, *ones),
                  None if bias is None else bias.repeat(batch), groups=batch)
    return out.view(batch, out_channels, *spatial)


def _channels_last_pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``pointwise_conv`` of a channels-last ``x``: (batch, voxels, C_in) @ (C_in, C_out), the output channels-last."""
    batch, channels, out_channels = x.shape[0], x.shape[1], weight.shape[-2]
    flat = x.permute(0, *range(2, x.ndim), 1).reshape(batch, -1, channels)
    if weight.ndim == 2:
        rows = flat.reshape(-1, channels)
        out = rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())
    else:
        out = torch.bmm(flat, weight.transpose(1, 2)) if bias is None else \
            torch.baddbmm(bias.view(1, 1, out_channels), flat, weight.transpose(1, 2))
    return out.view(batch, *x.shape[2:], out_channels).permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def _is_pointwise(conv: _ConvNd) -> bool:
    return all(k == 1 for k in conv.kernel_size) and all(s == 1 for s in conv.stride) and conv.groups == 1 \
        and not any(conv.padding) and conv.padding_mode == "zeros"


def convolve(conv: _ConvNd, x: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
    """``conv(x)`` for a zero-padded ``nn.ConvNd``: 1x1 convolutions as matrix products and the others through
    oneDNN on the CPU whatever the shape (module docstring). ``with_bias=False`` leaves out the module's bias (for
    a bias that a following norm cancels, ``blocks/norm.py``)."""
    bias = conv.bias if with_bias else None
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return conv._conv_forward(x, conv.weight, bias)  # the module's forward without it (see FastConv3d)
    if _is_pointwise(conv) and _matmul_applies(x):
        return pointwise_conv(x, conv.weight.flatten(1), bias)
    if not _onednn_applies(x):
        return conv._conv_forward(x, conv.weight, bias)
    return conv_nd(x, conv.weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose forward is ``convolve``: for the convolutions a network calls as modules (the
    segmentation heads), so that hooks still fire; same parameters and state-dict keys as ``nn.Conv2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return convolve(self, x)


class FastConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose forward is ``convolve`` (``FastConv2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return convolve(self, x)


def fast_conv_op(conv_op: type) -> type:
    """``FastConv2d``/``FastConv3d`` for ``nn.Conv2d``/``nn.Conv3d``; any other ``conv_op`` as it is."""
    return {nn.Conv2d: FastConv2d, nn.Conv3d: FastConv3d}.get(conv_op, conv_op)


def gated_pointwise_conv(x: torch.Tensor, conv: _ConvNd, gate: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
    """``conv(x * gate[..., None, ...])`` for a 1x1 ``conv`` and a ``(batch, in_channels)`` gate, computed as one
    1x1 convolution with per-sample weights (``pointwise_conv``) instead of materialising ``x * gate``;
    ``with_bias=False`` leaves out ``conv``'s bias.

    Raises:
        ValueError: if ``conv`` is not a plain 1x1 convolution or ``gate`` does not have shape (batch, in_channels).
    """
    if any(k != 1 for k in conv.kernel_size) or any(s != 1 for s in conv.stride) or conv.groups != 1:
        raise ValueError(f"gated_pointwise_conv needs a 1x1, stride-1, ungrouped convolution, got kernel_size="
                         f"{conv.kernel_size}, stride={conv.stride}, groups={conv.groups}")
    batch, channels = x.shape[:2]
    if tuple(gate.shape) != (batch, channels):
        raise ValueError(f"gate must have shape (batch, in_channels) = {(batch, channels)}, got {tuple(gate.shape)}")
    if tracing():  # the same function with a static graph: the batch size must not become the group count
        return convolve(conv, x * gate.view(batch, channels, *([1] * (x.ndim - 2))), with_bias)
    weight = conv.weight.reshape(1, conv.out_channels, channels) * gate.unsqueeze(1)
    return pointwise_conv(x, weight, conv.bias if with_bias else None)


class ConvNormAct(nn.Module):
    """``conv -> dropout -> norm -> nonlin`` (or ``nonlin`` before ``norm`` with ``nonlin_first``): the layers of
    dynamic_network_architectures' ``ConvDropoutNormReLU`` under the same attribute names, with the convolution run
    through ``convolve``.

    Args:
        conv_op, input_channels, output_channels, kernel_size, stride, conv_bias, norm_op, norm_op_kwargs,
        dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs, nonlin_first: as ``ConvDropoutNormReLU``'s (class +
        kwargs, ``None`` skips the layer).
    """

    def __init__(self, conv_op, input_channels: int, output_channels: int, kernel_size, stride=1,
                 conv_bias: bool = False, norm_op=None, norm_op_kwargs: dict = None, dropout_op=None,
                 dropout_op_kwargs: dict = None, nonlin=None, nonlin_kwargs: dict = None, nonlin_first: bool = False):
        super().__init__()
        kernel_size = maybe_convert_scalar_to_list(conv_op, kernel_size)
        self.stride = maybe_convert_scalar_to_list(conv_op, stride)
        self.output_channels = output_channels
        self.conv = conv_op(input_channels, output_channels, kernel_size, self.stride,
                            padding=[(k - 1) // 2 for k in kernel_size], bias=conv_bias)
        self.dropout = dropout_op(**(dropout_op_kwargs or {})) if dropout_op is not None else nn.Identity()
        self.norm = norm_op(output_channels, **(norm_op_kwargs or {})) if norm_op is not None else nn.Identity()
        self.nonlin = nonlin(**(nonlin_kwargs or {})) if nonlin is not None else nn.Identity()
        self.nonlin_first = nonlin_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(convolve(self.conv, x))
        if self.nonlin_first:
            return normalize(self.norm, self.nonlin(x))
        return self.nonlin(normalize(self.norm, x))

    def compute_conv_feature_map_size(self, input_size) -> np.int64:
        """The convolution's output, as ``ConvDropoutNormReLU`` counts it."""
        if len(input_size) != len(self.stride):
            raise ValueError(f"input_size must be the spatial size only, got input_size={input_size}")
        return np.prod([self.output_channels, *[i // s for i, s in zip(input_size, self.stride)]], dtype=np.int64)


def upsample(conv: _ConvTransposeNd, x: torch.Tensor, add: Optional[torch.Tensor] = None,
             with_bias: bool = True) -> torch.Tensor:
    """``conv(x)`` (``+ add``) for nnU-Net's upsampling, a transposed convolution whose kernel equals its stride.

    Such a convolution writes each input voxel's ``C_out x prod(stride)`` outputs into its own block of the output,
    so it is a pointwise convolution to ``C_out * prod(stride)`` channels at the coarse resolution followed by a
    pixel shuffle. On the CPU PyTorch runs the transposed convolution in oneDNN's channels-last layout and then
    copies the result back (46 ms of a 2 x 32 x 64^3 upsampling, 40 of them the copy; AVX-512 EPYC, torch 2.14);
    the pointwise form takes 20 ms, and the shuffle and the addition of ``add`` are one pass. Elsewhere, and for any
    other transposed convolution, it is ``conv(x) + add``. ``with_bias=False`` leaves out ``conv``'s bias.

    Raises:
        ValueError: if ``add`` does not have the output's shape.
    """
    kernel, stride = list(conv.kernel_size), list(conv.stride)
    factor_form = kernel == stride and not any(conv.padding) and not any(conv.output_padding) and conv.groups == 1 \
        and all(d == 1 for d in conv.dilation) and conv.padding_mode == "zeros"
    if not (factor_form and _onednn_applies(x)):
        out = conv(x) if with_bias or conv.bias is None else _TRANSPOSED[x.ndim - 2](
            x, conv.weight, None, conv.stride, conv.padding, conv.output_padding, conv.groups, conv.dilation)
        if add is not None and add.shape != out.shape:
            raise ValueError(f"add must have the upsampled shape {tuple(out.shape)}, got {tuple(add.shape)}")
        return out if add is None else out + add
    batch, n = x.shape[0], x.ndim - 2
    coarse, out_channels, blocks = list(x.shape[2:]), conv.out_channels, int(np.prod(stride))
    fine = [c * s for c, s in zip(coarse, stride)]
    if add is not None and tuple(add.shape) != (batch, out_channels, *fine):
        raise ValueError(f"add must have the upsampled shape {(batch, out_channels, *fine)}, got {tuple(add.shape)}")
    bias = None if conv.bias is None or not with_bias else conv.bias
    if is_channels_last(x):
        # weight (C_in, C_out, *k) -> (prod(k) * C_out, C_in): output channel offset * C_out + c, so that each block
        # offset's C_out values stay one contiguous run when they are interleaved into the fine map
        weight = conv.weight.permute(*range(2, n + 2), 1, 0).reshape(blocks * out_channels, conv.in_channels)
        y = pointwise_conv(x, weight, None if bias is None else bias.repeat(blocks))
        # (B, c_1..c_n, s_1..s_n, C) -> (B, c_1, s_1, ..., c_n, s_n, C), channels innermost
        y = y.permute(0, *range(2, n + 2), 1).view(batch, *coarse, *stride, out_channels)
        shuffled = y.permute(0, *[i for a in range(n) for i in (1 + a, 1 + n + a)], 1 + 2 * n)
        interleaved = [i for c, s in zip(coarse, stride) for i in (c, s)]
        if add is None:
            out = shuffled.reshape(batch, *fine, out_channels)
        else:
            add = add.contiguous(memory_format=channels_last_format(add.ndim)).permute(0, *range(2, n + 2), 1)
            out = (add.reshape(batch, *interleaved, out_channels) + shuffled).view(batch, *fine, out_channels)
        return out.permute(0, n + 1, *range(1, n + 1))
    # weight (C_in, C_out, *k) -> (C_out * prod(k), C_in): output channel c * prod(k) + offset in the block
    weight = conv.weight.movedim(0, -1).reshape(out_channels * blocks, conv.in_channels)
    y = pointwise_conv(x, weight, None if bias is None else bias.repeat_interleave(blocks))
    y = y.view(batch, out_channels, *stride, *coarse)
    # (B, C, s_1..s_n, c_1..c_n) -> (B, C, c_1, s_1, ..., c_n, s_n), the memory order of the fine map
    shuffled = y.permute(0, 1, *[i for a in range(n) for i in (2 + n + a, 2 + a)])
    if add is None:
        return shuffled.reshape(batch, out_channels, *fine)
    interleaved = [i for c, s in zip(coarse, stride) for i in (c, s)]
    return (add.reshape(batch, out_channels, *interleaved) + shuffled).view(batch, out_channels, *fine)
