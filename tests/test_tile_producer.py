"""nnU-Net's predictor with its tile producer thread kept off OpenMP (``nnunet_msfen.inference.tile_producer``):
the producer's copies run on one thread, the main thread keeps its count, the logits are nnU-Net's bit for bit."""
import threading
from types import SimpleNamespace

import pytest
import torch
from nnunetv2.inference import predict_from_raw_data
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnunet_msfen.inference.tile_producer import SingleThreadedTorchThread, nnUNetPredictorSingleThreadedProducer, \
    single_threaded_tile_producer


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _predictor(cls, network):
    predictor = cls(tile_step_size=0.5, use_gaussian=True, use_mirroring=False, perform_everything_on_device=False,
                    device=torch.device("cpu"), allow_tqdm=False)
    predictor.network = network
    predictor.configuration_manager = SimpleNamespace(patch_size=[16, 16])
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=3)
    predictor.allowed_mirroring_axes = (0, 1)
    return predictor


def _copies_by_thread(monkeypatch):
    """Spy on ``torch.clone`` (the producer's tile copy): the thread and torch thread count of every call."""
    calls, clone = [], torch.clone

    def spy(*args, **kwargs):
        calls.append((threading.current_thread(), torch.get_num_threads()))
        return clone(*args, **kwargs)

    monkeypatch.setattr(torch, "clone", spy)
    return calls


@pytest.mark.parametrize("cls, producer_threads", [(nnUNetPredictor, 2), (nnUNetPredictorSingleThreadedProducer, 1)])
def test_the_producer_copies_tiles_on_one_thread_and_the_main_thread_keeps_its_count(cls, producer_threads,
                                                                                    monkeypatch, two_threads):
    """The stock predictor's producer copies with the process's thread count (an OpenMP team of its own); ours with
    one. The stock row shows that the spy sees the producer, so the second row could fail."""
    calls = _copies_by_thread(monkeypatch)
    torch.manual_seed(0)
    _predictor(cls, torch.nn.Conv2d(4, 3, 3, padding=1).eval()).predict_sliding_window_return_logits(
        torch.randn(4, 3, 24, 20))
    assert calls and all(t is not threading.main_thread() for t, _ in calls)
    assert {n for _, n in calls} == {producer_threads}
    assert torch.get_num_threads() == 2
    assert predict_from_raw_data.Thread is threading.Thread  # restored after the prediction


def test_logits_are_nnunets_bit_for_bit(two_threads):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.LeakyReLU(),
                                  torch.nn.Conv2d(8, 3, 1)).eval()
    case = torch.randn(4, 3, 40, 28)
    stock = _predictor(nnUNetPredictor, network).predict_sliding_window_return_logits(case)
    ours = _predictor(nnUNetPredictorSingleThreadedProducer, network).predict_sliding_window_return_logits(case)
    assert ours.shape == (3, 3, 40, 28) and torch.equal(ours, stock)


def test_a_single_threaded_torch_thread_runs_on_one_thread_and_leaves_the_caller_alone(two_threads):
    seen = []
    thread = SingleThreadedTorchThread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [1] and torch.get_num_threads() == 2


def test_the_patch_is_undone_after_an_error():
    with pytest.raises(KeyError):
        with single_threaded_tile_producer():
            assert predict_from_raw_data.Thread is SingleThreadedTorchThread
            raise KeyError("inside")
    assert predict_from_raw_data.Thread is threading.Thread


def test_a_new_nnunet_without_the_thread_is_an_error_not_a_silent_no_op(monkeypatch):
    monkeypatch.delattr(predict_from_raw_data, "Thread")
    with pytest.raises(RuntimeError, match="predict_from_raw_data has no 'Thread'"):
        with single_threaded_tile_producer():
            pass


def test_msfens_final_validation_predicts_with_the_single_threaded_producer(monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN

    seen = []
    monkeypatch.setattr(nnUNetTrainer, "perform_actual_validation",
                        lambda self, save_probabilities=False: seen.append((predict_from_raw_data.Thread,
                                                                            save_probabilities)))
    nnUNetTrainerMSFEN.perform_actual_validation(nnUNetTrainerMSFEN.__new__(nnUNetTrainerMSFEN), True)
    assert seen == [(SingleThreadedTorchThread, True)] and predict_from_raw_data.Thread is threading.Thread


@pytest.mark.parametrize("allocator, expected", [(None, ["retain"]), ("bogus", "bogus")])
def test_load_predictor_keeps_freed_memory_on_the_cpu(tmp_path, monkeypatch, allocator, expected):
    """``nnunet-msfen predict`` and the commands that share its loader keep freed memory, as training does; a bad
    ``NNUNET_MSFEN_CPU_ALLOCATOR`` is a ``CommandError`` naming the value."""
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.inference import predictor as loader
    from nnunet_msfen.runtime import cpu_allocator

    (tmp_path / "fold_0").mkdir()
    (tmp_path / "fold_0" / "checkpoint_final.pth").touch()
    monkeypatch.setattr(loader, "model_folder", lambda spec: tmp_path)
    monkeypatch.setattr(nnUNetPredictorSingleThreadedProducer, "initialize_from_trained_model_folder",
                        lambda self, *args: None)
    calls = []
    real = cpu_allocator.retain_freed_memory
    monkeypatch.setattr(cpu_allocator, "retain_freed_memory",
                        lambda mode=None: calls.append(cpu_allocator.requested_mode()) or real("system"))
    if allocator is not None:
        monkeypatch.setenv(cpu_allocator.ENV_VARIABLE, allocator)
    spec = loader.ModelSpec("Dataset001_X", "nnUNetTrainer", folds=("0",))
    if isinstance(expected, list):
        assert isinstance(loader.load_predictor(spec, "cpu"), nnUNetPredictorSingleThreadedProducer)
        assert calls == expected
    else:
        with pytest.raises(CommandError, match=expected):
            loader.load_predictor(spec, "cpu")
