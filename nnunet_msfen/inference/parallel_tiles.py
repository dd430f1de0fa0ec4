"""Sliding-window prediction on a CPU with several tiles in flight, each on its own share of the threads.

nnU-Net's predictor runs one tile at a time and gives it every thread. A network of many small operators cannot keep
two cores busy inside one tile: on a 2-core AMD EPYC, one 192^2 tile of the 2d BraTS topology took 89.5 ms on two
threads and 123.4 ms on one (1.38x from the second core; PlainConvUNet 1.65x; docs/ablation.md section 26). Two
tiles at once, one thread each, keep both cores busy: on a 2-core AVX2 EPYC, a 16-slice 2d case of 192^2 tiles
MSFEN 1.58 -> 1.26 s, PlainConvUNet 2.98 -> 2.64 s; a 128^3 case of 64^3 tiles MSFEN 9.3 -> 7.5 s, PlainConvUNet
30.2 -> 31.1 s. Large tiles lose: one 128 x 160 x 128 tile (3d_fullres on BraTS) took 1.38x (MSFEN) and 1.29x
(PlainConvUNet) longer two at a time, so by default only tiles of up to 64^3 voxels go two at a time (section 27).
A second tile in flight doubles the memory of the forward pass (128^3 case of 64^3 tiles, resident set: MSFEN +377
-> +806 MiB).

``nnUNetPredictorParallelTiles`` is ``nnUNetPredictorSingleThreadedProducer`` with that change on the CPU. The tiles
are added into the result in nnU-Net's order with nnU-Net's Gaussian weights, so the logits are bit for bit those of
the one-tile loop run at the workers' thread count (tested); against a loop on all threads they differ by the order of
floating-point sums inside the network. It runs the tiles one at a time, as nnU-Net does, on CUDA, with one worker,
with a compiled network and with forward hooks on the network (a hook may record per-call state that concurrent
calls would mix, e.g. ``--save-attention``'s modality weights).
"""
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Optional

import torch
from torch import nn

from nnunet_msfen.inference.tile_producer import nnUNetPredictorSingleThreadedProducer

TILE_WORKERS_ENV = "NNUNET_MSFEN_TILE_WORKERS"
DEFAULT_TILE_WORKERS = 2  # measured on 2 cores only; more workers multiply the memory of a tile's forward pass
MAX_PARALLEL_TILE_VOXELS = 64 ** 3  # measured: 192^2 and 64^3 tiles gain, 128 x 160 x 128 tiles lose


def resolve_tile_workers(requested: Optional[int] = None, threads: Optional[int] = None,
                         tile_voxels: int = 0) -> int:
    """Tiles predicted at once on the CPU: ``requested``, else ``$NNUNET_MSFEN_TILE_WORKERS``, else 2 when torch has
    two or more threads (``threads``, default ``torch.get_num_threads()``) and a tile has at most
    ``MAX_PARALLEL_TILE_VOXELS`` voxels (``tile_voxels``), else 1.

    Raises:
        ValueError: naming the value, when the request or the environment variable is not a positive integer.
    """
    if requested is None:
        value = os.environ.get(TILE_WORKERS_ENV)
        if value is None or value == "":
            if tile_voxels > MAX_PARALLEL_TILE_VOXELS:
                return 1
            return min(DEFAULT_TILE_WORKERS, threads or torch.get_num_threads())
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{TILE_WORKERS_ENV}={value!r}: expected a positive integer")
        return int(value)
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"tile_workers={requested!r}: expected a positive integer")
    return requested


def _runs_one_tile_at_a_time(network: nn.Module) -> bool:
    """Networks that concurrent forward passes could break: compiled ones (not measured) and hooked ones."""
    if hasattr(network, "_orig_mod"):
        return True
    global_hooks = nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks
    return bool(global_hooks) or any(m._forward_hooks or m._forward_pre_hooks for m in network.modules())


def _ordered(pool: ThreadPoolExecutor, fn, items: Iterable, ahead: int) -> Iterator:
    """``fn(item)`` for each item, in order, with at most ``ahead`` calls submitted and not yet consumed (a tile's
    logits are large: a plain ``pool.map`` would hold every finished tile when the consumer falls behind)."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class nnUNetPredictorParallelTiles(nnUNetPredictorSingleThreadedProducer):
    """nnU-Net's predictor predicting ``tile_workers`` tiles at once on the CPU (``resolve_tile_workers`` chooses when
    ``None``), each on ``torch.get_num_threads() // workers`` threads (at least one)."""

    def __init__(self, *args, tile_workers: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if tile_workers is not None:
            resolve_tile_workers(tile_workers)  # validates now, not at the first case
        self.tile_workers = tile_workers

    def tiles_at_once(self) -> int:
        """Tiles the sliding window predicts at once with the current network, device and thread count: 1 on CUDA
        and for a compiled or hooked network, else ``resolve_tile_workers``'s choice."""
        if self.device.type != "cpu" or _runs_one_tile_at_a_time(self.network):
            return 1
        return resolve_tile_workers(self.tile_workers, torch.get_num_threads(),
                                    math.prod(self.configuration_manager.patch_size))

    @torch.inference_mode()
    def _internal_predict_sliding_window_return_logits(self, data: torch.Tensor, slicers, do_on_device: bool = True):
        from nnunetv2.inference.sliding_window_prediction import compute_gaussian

        workers = self.tiles_at_once()
        if workers == 1 or len(slicers) < 2:
            return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)
        threads = torch.get_num_threads()
        data = data.to("cpu")
        logits = torch.zeros((self.label_manager.num_segmentation_heads, *data.shape[1:]), dtype=torch.half)
        n_predictions = torch.zeros(data.shape[1:], dtype=torch.half)
        gaussian = compute_gaussian(tuple(self.configuration_manager.patch_size), sigma_scale=1. / 8,
                                    value_scaling_factor=10, device=torch.device("cpu")) if self.use_gaussian else 1

        def predict_tile(slicer) -> torch.Tensor:
            with torch.inference_mode():  # thread-local: the worker enters it itself
                tile = torch.clone(data[slicer][None], memory_format=torch.contiguous_format)
                return self._internal_maybe_mirror_and_predict(tile)[0]

        # omp_set_num_threads is per thread: the workers get their share, the main thread sums on one thread
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                    initargs=(max(1, threads // workers),)) as pool:
                for slicer, prediction in zip(slicers, _ordered(pool, predict_tile, slicers, 2 * workers)):
                    if self.use_gaussian:
                        prediction *= gaussian
                    logits[slicer] += prediction
                    n_predictions[slicer[1:]] += gaussian
        finally:
            torch.set_num_threads(threads)
        torch.div(logits, n_predictions, out=logits)
        if torch.any(torch.isinf(logits)):
            raise RuntimeError("Encountered inf in predicted array. Aborting... If this problem persists, reduce "
                               "value_scaling_factor in compute_gaussian or increase the dtype of predicted_logits "
                               "to fp32")
        return logits
