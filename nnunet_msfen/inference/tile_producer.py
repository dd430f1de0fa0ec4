"""nnU-Net's predictor without the CPU slowdown its tile producer thread causes.

``nnUNetPredictor`` copies each tile in a producer thread (``predict_from_raw_data.Thread``) while the main thread
runs the network. The copy is a parallel torch operation, so the producer gets its own OpenMP team, and from then on
the process has more OpenMP threads than CPUs. libgomp then stops letting idle team threads spin (its "throttled"
spin count, ~100 iterations) and puts them to sleep after every parallel region: each of the network's operators
pays a futex wake-up. Dense networks lose a little; a network of many small operators (MSFEN) loses a lot. Measured
on a 2-core AMD EPYC with AVX-512, one 192^2 tile of the 2d BraTS topology, bare forward -> in nnU-Net's predictor
(docs/ablation.md section 23): PlainConvUNet 139-151 -> 175 ms, MSFEN 73-76 -> 121 ms. Running the producer's copies on one thread keeps the
process at one OpenMP team and the outputs bit for bit the same.

``nnUNetPredictorSingleThreadedProducer`` is ``nnUNetPredictor`` with that change; every prediction of this package
uses it. ``nnUNetv2_predict`` itself cannot be changed from here (README, "CPU training and prediction", says what
to run instead).
"""
import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from nnunetv2.inference import predict_from_raw_data
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor


class SingleThreadedTorchThread(threading.Thread):
    """A thread whose torch operations run on one CPU thread (no OpenMP team of its own)."""

    def run(self) -> None:
        # omp_set_num_threads is per thread: the main thread keeps its count.
        torch.set_num_threads(1)
        super().run()


@contextmanager
def single_threaded_tile_producer() -> Iterator[None]:
    """Within the block, threads that nnU-Net's predictor starts run torch on one thread.

    ``RuntimeError`` if nnU-Net's predictor no longer starts its producer through ``predict_from_raw_data.Thread``
    (a new nnU-Net version): the fix would silently do nothing, so it says so instead.
    """
    original = getattr(predict_from_raw_data, "Thread", None)
    if original is None:
        raise RuntimeError("nnunetv2.inference.predict_from_raw_data has no 'Thread' any more: "
                           "nnunet_msfen.inference.tile_producer needs updating for this nnU-Net version")
    predict_from_raw_data.Thread = SingleThreadedTorchThread
    try:
        yield
    finally:
        predict_from_raw_data.Thread = original


class nnUNetPredictorSingleThreadedProducer(nnUNetPredictor):
    """``nnUNetPredictor`` whose tile producer thread runs torch on one thread (same outputs, faster on a CPU)."""

    def _internal_predict_sliding_window_return_logits(self, data: torch.Tensor, slicers, do_on_device: bool = True):
        with single_threaded_tile_producer():
            return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)
