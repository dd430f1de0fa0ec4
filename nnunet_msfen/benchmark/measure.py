"""What ``nnunet-msfen benchmark`` measures for one network: parameters, FLOPs, a training step, a prediction.

A training step is ``nnUNetTrainer.train_step``: zero the gradients, forward (``torch.autocast`` on CUDA, as the
trainer does), nnU-Net's region loss with deep supervision (``DeepSupervisionWrapper(DC_and_BCE_loss)``, weights
1/2^i with the lowest output at 0, normalised), backward, gradient clipping at 12, SGD (lr 1e-2, momentum 0.99,
Nesterov, weight decay 3e-5); with a ``GradScaler`` on CUDA. Prediction is ``nnUNetPredictor``'s sliding window
(tile step 0.5, Gaussian weighting, mirroring optional) over one case of random intensities.
"""
import contextlib
import io
import os
import resource
import threading
import time
from types import SimpleNamespace
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn


def count_parameters(net: nn.Module) -> int:
    """Number of parameter elements of ``net``."""
    return int(sum(p.numel() for p in net.parameters()))


def make_loss(n_outputs: int, weight_ce: float, weight_dice: float) -> nn.Module:
    """nnUNetTrainer's loss for a region dataset such as BraTS, wrapped for ``n_outputs`` deep-supervision outputs."""
    from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    loss = DC_and_BCE_loss({}, {"batch_dice": False, "do_bg": True, "smooth": 1e-5, "ddp": False},
                           weight_ce=weight_ce, weight_dice=weight_dice, use_ignore_label=False,
                           dice_class=MemoryEfficientSoftDiceLoss)
    if n_outputs == 1:
        return loss
    weights = np.array([1 / (2 ** i) for i in range(n_outputs)])
    weights[-1] = 0  # nnUNetTrainer: the lowest resolution output is not used
    return DeepSupervisionWrapper(loss, weights / weights.sum())


def make_batch(batch: int, patch: Sequence[int], n_outputs: int, n_classes: int, in_channels: int,
               device: torch.device, seed: int = 0) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Random images and region targets at every deep-supervision resolution (full, 1/2, 1/4, ...)."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(batch, in_channels, *patch, generator=g)
    targets = []
    for i in range(n_outputs):
        shape = [max(1, p // 2 ** i) for p in patch]
        targets.append((torch.rand(batch, n_classes, *shape, generator=g) > 0.7).float().to(device))
    return data.to(device), targets


class TrainStep:
    """One nnU-Net training step of ``net`` on a fixed batch; ``__call__`` runs it and returns its seconds.

    ``n_outputs``: how many outputs the network gives (``n_stages - 1`` with deep supervision, else 1).
    """

    def __init__(self, net: nn.Module, batch: int, patch: Sequence[int], n_outputs: int, n_classes: int,
                 in_channels: int, weights: Tuple[float, float], device: torch.device, channels_last: bool = False):
        self.device = device
        self.net = net.to(device).train()
        self.memory_format = _memory_format(len(patch)) if channels_last else torch.contiguous_format
        if channels_last:
            self.net = self.net.to(memory_format=self.memory_format)
        self.loss = make_loss(n_outputs, *weights)
        self.data, self.target = make_batch(batch, patch, n_outputs, n_classes, in_channels, device)
        self.data = self.data.contiguous(memory_format=self.memory_format)
        if n_outputs == 1:
            self.target = self.target[0]
        self.optimizer = torch.optim.SGD(self.net.parameters(), 1e-2, weight_decay=3e-5, momentum=0.99, nesterov=True)
        self.scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None

    def step(self) -> float:
        """Run the step; return the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device):
            loss = self.loss(self.net(self.data), self.target)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 12)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 12)
            self.optimizer.step()
        return float(loss.detach())

    def __call__(self) -> float:
        return timed(self.step, self.device)


def count_flops(net: nn.Module, patch: Sequence[int], in_channels: int) -> Tuple[int, int]:
    """FLOPs of one patch (batch 1) through ``net`` on the CPU, counted by ``torch.utils.flop_counter``: (forward,
    forward + backward). The counter covers convolutions and matrix products, not norms or pointwise ops."""
    from torch.utils.flop_counter import FlopCounterMode

    net = net.to("cpu").train()
    x = torch.randn(1, in_channels, *patch)
    with FlopCounterMode(display=False) as counter:
        out = net(x)
        forward = counter.get_total_flops()
        sum(o.float().mean() for o in (out if isinstance(out, (list, tuple)) else [out])).backward()
        total = counter.get_total_flops()
    net.zero_grad(set_to_none=True)
    return int(forward), int(total)


class SlidingWindow:
    """nnU-Net's sliding-window prediction (``nnUNetPredictor.predict_sliding_window_return_logits``) of one case.

    ``net`` must have deep supervision off (the predictor takes a single output). ``case_shape`` is the spatial
    size of the case; for a 2D network it is (slices, x, y) and every slice is predicted in 2D.
    """

    def __init__(self, net: nn.Module, patch: Sequence[int], case_shape: Sequence[int], in_channels: int,
                 n_classes: int, device: torch.device, mirroring: bool = False, channels_last: bool = False):
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        self.device = device
        net = net.to(device).eval()
        if channels_last:
            net = net.to(memory_format=_memory_format(len(patch)))
        with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints a CUDA-only notice on every CPU predictor
            predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                        perform_everything_on_device=device.type == "cuda", device=device,
                                        allow_tqdm=False)
        # what predict_sliding_window_return_logits reads; a full initialisation needs a trained model folder
        predictor.network = net
        predictor.configuration_manager = SimpleNamespace(patch_size=list(patch))
        predictor.label_manager = SimpleNamespace(num_segmentation_heads=n_classes)
        predictor.allowed_mirroring_axes = tuple(range(len(patch)))
        self.predictor = predictor
        g = torch.Generator().manual_seed(1)
        self.case = torch.randn(in_channels, *case_shape, generator=g)
        self.n_tiles = len(predictor._internal_get_sliding_window_slicers(self.case.shape[1:]))

    def predict(self) -> torch.Tensor:
        """The case's logits, (classes, *case_shape)."""
        n_threads = torch.get_num_threads()
        try:
            return self.predictor.predict_sliding_window_return_logits(self.case)
        finally:  # nnU-Net's predictor may change the thread count; the training timings must not see that
            torch.set_num_threads(n_threads)

    def __call__(self) -> float:
        return timed(self.predict, self.device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, synchronising CUDA before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def peak_memory_of(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory (MiB) that ``fn()`` adds to what was in use before it.

    CUDA: ``max_memory_allocated`` during ``fn`` above ``memory_allocated`` before. CPU: the resident set size
    sampled every 2 ms during ``fn`` (and the process's ``ru_maxrss`` if ``fn`` raised it) above the resident set
    before; run it in a fresh process (``nnunet_msfen.benchmark.memory``), where no other network's freed memory
    sits in the allocator.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    before, max_rss_before = _rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if max_rss > max_rss_before:  # the step set a new lifetime peak: that one is exact (Linux: KiB)
        peak[0] = max(peak[0], max_rss * 1024)
    return (peak[0] - before) / 2 ** 20


def _rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _autocast(device: torch.device):
    from nnunetv2.utilities.helpers import dummy_context

    return torch.autocast(device.type, enabled=True) if device.type == "cuda" else dummy_context()


def _memory_format(n_spatial: int) -> torch.memory_format:
    return torch.channels_last_3d if n_spatial == 3 else torch.channels_last
