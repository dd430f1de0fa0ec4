"""What ``nnunet-msfen benchmark`` measures for one network besides its training step (``nnunet_step``) and its
memory (``memory``): parameters, FLOPs, and a prediction: ``nnUNetPredictor``'s sliding window (tile step 0.5,
Gaussian weighting, mirroring optional) over one case of random intensities.
"""
import contextlib
import io
import time
from types import SimpleNamespace
from typing import Callable, Sequence, Tuple

import torch
from torch import nn


def count_parameters(net: nn.Module) -> int:
    """Number of parameter elements of ``net``."""
    return int(sum(p.numel() for p in net.parameters()))


def _mkldnn_convolution_flops(x_shape, w_shape, bias_shape, padding, stride, dilation, groups, out_shape=None) -> int:
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def count_flops(net: nn.Module, patch: Sequence[int], in_channels: int) -> Tuple[int, int]:
    """FLOPs of one patch (batch 1) through ``net`` on the CPU, counted by ``torch.utils.flop_counter``: (forward,
    forward + backward). The counter covers convolutions and matrix products, not norms or pointwise ops; it is
    taught ``aten.mkldnn_convolution``, which MSFEN's blocks call directly on the CPU (``blocks/conv.py``) and
    PyTorch's counter does not know (before 2026-12-01 their forward passes went uncounted)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = net.to("cpu").train()
    x = torch.randn(1, in_channels, *patch)
    mapping = {torch.ops.aten.mkldnn_convolution: _mkldnn_convolution_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = net(x)
        forward = counter.get_total_flops()
        sum(o.float().mean() for o in (out if isinstance(out, (list, tuple)) else [out])).backward()
        total = counter.get_total_flops()
    net.zero_grad(set_to_none=True)
    return int(forward), int(total)


class SlidingWindow:
    """nnU-Net's sliding-window prediction (``nnUNetPredictor.predict_sliding_window_return_logits``) of one case.

    ``net`` must have deep supervision off (the predictor takes a single output). ``case_shape`` is the spatial
    size of the case; for a 2D network it is (slices, x, y) and every slice is predicted in 2D. ``compile``: predict
    through ``torch.compile(net)``, what nnU-Net's predictor does with ``nnUNet_compile=1``. ``stock``: nnU-Net's
    ``nnUNetPredictor`` as ``nnUNetv2_predict`` runs it; otherwise the predictor of ``nnunet-msfen predict``, whose tile
    producer thread stays off OpenMP (``inference/tile_producer.py``) and which predicts two tiles at once on a CPU
    (``inference/parallel_tiles.py``).
    """

    def __init__(self, net: nn.Module, patch: Sequence[int], case_shape: Sequence[int], in_channels: int,
                 n_classes: int, device: torch.device, mirroring: bool = False, channels_last: bool = False,
                 compile: bool = False, stock: bool = False):
        self.device = device
        net = net.to(device).eval()
        if channels_last:
            net = net.to(memory_format=memory_format_for(len(patch)))
        with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints a CUDA-only notice on every CPU predictor
            predictor = predictor_class(stock)(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                               perform_everything_on_device=device.type == "cuda", device=device,
                                               allow_tqdm=False)
        # what predict_sliding_window_return_logits reads; a full initialisation needs a trained model folder
        predictor.network = torch.compile(net) if compile else net
        predictor.configuration_manager = SimpleNamespace(patch_size=list(patch))
        predictor.label_manager = SimpleNamespace(num_segmentation_heads=n_classes)
        predictor.allowed_mirroring_axes = tuple(range(len(patch)))
        self.predictor = predictor
        self.patch, self.in_channels = list(patch), in_channels
        self.memory_format = memory_format_for(len(patch)) if channels_last else torch.contiguous_format
        g = torch.Generator().manual_seed(1)
        self.case = torch.randn(in_channels, *case_shape, generator=g)
        self.n_tiles = len(predictor._internal_get_sliding_window_slicers(self.case.shape[1:]))

    def warm_up(self) -> float:
        """Seconds of one untimed tile through the predictor's network (with ``compile``, the compilation)."""
        tile = torch.zeros(1, self.in_channels, *self.patch, device=self.device).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            return timed(lambda: self.predictor.network(tile), self.device)

    def predict(self) -> torch.Tensor:
        """The case's logits, (classes, *case_shape)."""
        n_threads = torch.get_num_threads()
        try:
            return self.predictor.predict_sliding_window_return_logits(self.case)
        finally:  # nnU-Net's predictor may change the thread count; the training timings must not see that
            torch.set_num_threads(n_threads)

    def __call__(self) -> float:
        return timed(self.predict, self.device)


def predictor_class(stock: bool) -> type:
    """nnU-Net's ``nnUNetPredictor`` (``stock``, as ``nnUNetv2_predict`` runs it) or the predictor of ``nnunet-msfen
    predict``, ``nnUNetPredictorParallelTiles``."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_msfen.inference.parallel_tiles import nnUNetPredictorParallelTiles

    return nnUNetPredictor if stock else nnUNetPredictorParallelTiles


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, synchronising CUDA before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def memory_format_for(n_spatial: int) -> torch.memory_format:
    """Channels-last for 2 or 3 spatial dimensions."""
    return torch.channels_last_3d if n_spatial == 3 else torch.channels_last
