"""Sliding-window prediction with several tiles in flight on the CPU (``nnunet_msfen.inference.parallel_tiles``):
nnU-Net's logits bit for bit at the workers' thread count, tiles really concurrent, the one-tile loop wherever
concurrency is unsafe, bad settings named."""
import threading
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nnunet_msfen.inference.parallel_tiles import MAX_PARALLEL_TILE_VOXELS, TILE_WORKERS_ENV, \
    nnUNetPredictorParallelTiles, resolve_tile_workers
from nnunet_msfen.inference.tile_producer import nnUNetPredictorSingleThreadedProducer


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv(TILE_WORKERS_ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class ThreadRecorder(nn.Module):
    """Records the thread and torch thread count of every forward pass (no hook: hooks force one tile at a time)."""

    def __init__(self, network: nn.Module, barrier: threading.Barrier = None):
        super().__init__()
        self.network, self.barrier, self.calls = network, barrier, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((threading.current_thread(), torch.get_num_threads()))
        if self.barrier is not None:  # two calls must be in flight together to pass
            self.barrier.wait()
        return self.network(x)


def _network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.LeakyReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(), nn.Conv2d(8, 3, 1)).eval()


def _predictor(cls, network, mirroring=False, **kwargs):
    predictor = cls(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring, perform_everything_on_device=False,
                    device=torch.device("cpu"), allow_tqdm=False, **kwargs)
    predictor.network = network
    predictor.configuration_manager = SimpleNamespace(patch_size=[16, 16])
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=3)
    predictor.allowed_mirroring_axes = (0, 1)
    return predictor


@pytest.mark.parametrize("mirroring", [False, True])
def test_two_workers_give_the_one_tile_loop_at_one_thread_bit_for_bit(mirroring, two_threads):
    case = torch.randn(4, 3, 40, 28, generator=torch.Generator().manual_seed(1))
    torch.set_num_threads(1)
    reference = _predictor(nnUNetPredictorSingleThreadedProducer, _network(), mirroring) \
        .predict_sliding_window_return_logits(case)
    torch.set_num_threads(2)
    recorded = ThreadRecorder(_network())
    ours = _predictor(nnUNetPredictorParallelTiles, recorded, mirroring, tile_workers=2) \
        .predict_sliding_window_return_logits(case)
    assert ours.shape == (3, 3, 40, 28) and torch.equal(ours, reference)
    threads = {t for t, _ in recorded.calls}
    assert len(threads) == 2 and threading.main_thread() not in threads  # two workers did the tiles
    assert {n for _, n in recorded.calls} == {1}  # each on its share of the two threads
    assert torch.get_num_threads() == 2  # the caller's count is back


def test_two_tiles_are_in_flight_at_once(two_threads):
    """Each forward pass waits until a second one arrives: the one-tile loop would time out here."""
    network = ThreadRecorder(_network(), threading.Barrier(2, timeout=10))
    logits = _predictor(nnUNetPredictorParallelTiles, network).predict_sliding_window_return_logits(
        torch.randn(4, 2, 32, 32))
    assert logits.shape == (3, 2, 32, 32) and len(network.calls) == 2 * 9


@pytest.mark.parametrize("setup", ["one worker", "environment", "forward hook", "one thread"])
def test_the_one_tile_loop_runs_where_concurrency_is_not_wanted_or_not_safe(setup, two_threads, monkeypatch):
    network, kwargs = ThreadRecorder(_network()), {}
    if setup == "one worker":
        kwargs["tile_workers"] = 1
    elif setup == "environment":
        monkeypatch.setenv(TILE_WORKERS_ENV, "1")
    elif setup == "forward hook":  # e.g. --save-attention's recorder, which reads per-call state
        network.network[0].register_forward_hook(lambda *args: None)
    else:
        torch.set_num_threads(1)
    case = torch.randn(4, 2, 24, 20)
    ours = _predictor(nnUNetPredictorParallelTiles, network, **kwargs).predict_sliding_window_return_logits(case)
    assert {t for t, _ in network.calls} == {threading.main_thread()}
    stock = _predictor(nnUNetPredictorSingleThreadedProducer, network).predict_sliding_window_return_logits(case)
    assert torch.equal(ours, stock)


def test_an_error_in_a_tile_reaches_the_caller_and_the_thread_count_is_restored(two_threads):
    class Failing(nn.Module):
        def forward(self, x):
            raise ValueError("tile failed")

    with pytest.raises(ValueError, match="tile failed"):
        _predictor(nnUNetPredictorParallelTiles, Failing()).predict_sliding_window_return_logits(
            torch.randn(4, 1, 32, 32))
    assert torch.get_num_threads() == 2


def test_the_default_is_two_workers_from_two_threads_for_tiles_up_to_64_cubed(monkeypatch):
    monkeypatch.delenv(TILE_WORKERS_ENV, raising=False)
    assert [resolve_tile_workers(threads=n, tile_voxels=192 * 160) for n in (1, 2, 16)] == [1, 2, 2]
    assert resolve_tile_workers(threads=2, tile_voxels=64 ** 3) == 2
    assert resolve_tile_workers(threads=2, tile_voxels=128 * 160 * 112) == 1  # 3d_fullres tiles lose (measured)
    monkeypatch.setenv(TILE_WORKERS_ENV, "3")
    assert resolve_tile_workers(threads=2, tile_voxels=128 * 160 * 112) == 3
    assert resolve_tile_workers(1, threads=2) == 1


def test_a_large_tile_runs_one_at_a_time_by_default(two_threads):
    network = ThreadRecorder(_network())
    predictor = _predictor(nnUNetPredictorParallelTiles, network)
    predictor.configuration_manager = SimpleNamespace(patch_size=[MAX_PARALLEL_TILE_VOXELS // 64 + 1, 64])
    predictor.predict_sliding_window_return_logits(torch.randn(4, 1, MAX_PARALLEL_TILE_VOXELS // 64 + 100, 64))
    assert len(network.calls) == 2
    assert {t for t, _ in network.calls} == {threading.main_thread()}


@pytest.mark.parametrize("requested, environment", [(0, None), (-2, None), (True, None), (1.5, None),
                                                    (None, "0"), (None, "two"), (None, "-1")])
def test_bad_settings_are_named(requested, environment, monkeypatch):
    if environment is None:
        monkeypatch.delenv(TILE_WORKERS_ENV, raising=False)
    else:
        monkeypatch.setenv(TILE_WORKERS_ENV, environment)
    with pytest.raises(ValueError, match=repr(requested if environment is None else environment).replace(".", r"\.")):
        resolve_tile_workers(requested, threads=2)
    if requested is not None:  # the constructor refuses it at once, not at the first case
        with pytest.raises(ValueError, match="tile_workers"):
            _predictor(nnUNetPredictorParallelTiles, _network(), tile_workers=requested)


def test_load_predictor_names_a_bad_environment_value(tmp_path, monkeypatch):
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.inference import predictor as loader

    (tmp_path / "fold_0").mkdir()
    (tmp_path / "fold_0" / "checkpoint_final.pth").touch()
    monkeypatch.setattr(loader, "model_folder", lambda spec: tmp_path)
    monkeypatch.setenv(TILE_WORKERS_ENV, "many")
    with pytest.raises(CommandError, match=f"{TILE_WORKERS_ENV}='many'"):
        loader.load_predictor(loader.ModelSpec("Dataset001_X", "nnUNetTrainer", folds=("0",)), "cpu")
