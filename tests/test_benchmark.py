"""``nnunet-msfen benchmark`` on a tiny topology: the JSON it writes, its ratios, its errors. No timing assertions:
speed is what the benchmark reports, not what a unit test checks."""
import json
import re

import pytest
import torch

from nnunet_msfen.benchmark.breakdown import breakdown
from nnunet_msfen.benchmark.contention import busy_processes
from nnunet_msfen.benchmark.machine import describe, one_line
from nnunet_msfen.benchmark.measure import count_flops, count_parameters
from nnunet_msfen.benchmark.memory import peak_tensor_memory
from nnunet_msfen.benchmark.networks import GROUPS, VARIANTS, brats_arch, build_network, plans_arch, resolve_names, \
    trainer_class
from nnunet_msfen.benchmark.nnunet_step import NnUNetTrainStep
from nnunet_msfen.benchmark.report import RATIO_FIELDS, ratios
from nnunet_msfen.cli import main

TINY = ["--config", "2d", "--stages", "3", "--patch", "32", "32", "--batch", "2", "--case-shape", "2", "48", "40",
        "--repeats", "2", "--warmup", "0", "--networks", "msfen", "--contention", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["benchmark", *TINY, "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_json_has_every_figure_for_every_network_and_plain_first(tiny_run):
    meta, rows = tiny_run["meta"], tiny_run["results"]
    assert [r["name"] for r in rows] == ["plain", "msfen"]  # plain added as the reference
    assert meta["arch"]["n_stages"] == 3 and meta["patch"] == [32, 32] and meta["batch"] == 2
    assert meta["device"] == "cpu" and meta["sliding_window"]["tile_step_size"] == 0.5
    # case 48x40 with a 32x32 tile at step 0.5: 2 x 2 tiles on each of the 2 slices
    assert meta["sliding_window"]["tiles"] == 2 * 2 * 2
    assert meta["sliding_window"]["predictor"] == "nnUNetPredictorParallelTiles"  # nnunet-msfen predict's
    assert meta["sliding_window"]["tile_workers"] == min(2, torch.get_num_threads())  # 32^2 tiles: two at a time
    # the machine is named: CPU model, instruction set, torch, threads
    assert meta["machine"]["cpu"] and meta["machine"]["torch"] == torch.__version__ and meta["machine"]["threads"] >= 1
    assert meta["contention"] == 1 and meta["cpu_allocator"] in ("retain", "system")
    assert [r["trainer"] for r in rows] == ["nnUNetTrainer", "nnUNetTrainerMSFEN"]
    for r in rows:
        assert len(r["train_step_all_s"]) == 2 and r["train_step_s"] > 0
        assert len(r["train_step_contended_all_s"]) == 2 and r["train_step_contended_s"] > 0
        assert len(r["inference_all_s"]) == 1 and r["inference_s"] > 0
        assert 0 < r["gflops_forward"] < r["gflops_forward_backward"]
        assert r["gflop_per_s"] == pytest.approx(r["gflops_forward_backward"] * 2 / r["train_step_s"])
        assert r["peak_memory_mib"] > 0
        for field, ratio in RATIO_FIELDS.items():
            assert r[ratio] == pytest.approx(r[field] / rows[0][field])
    assert all(rows[0][k] == 1.0 for k in rows[0] if k.endswith("_ratio"))


def test_parameters_are_those_of_the_network_the_trainers_build(tiny_run):
    arch = brats_arch("2d", 3)
    for r in tiny_run["results"]:
        assert r["parameters"] == count_parameters(build_network(r["name"], arch))
    assert tiny_run["results"][1]["parameters_ratio"] < 1  # MSFEN is the lighter one


def test_flop_counter_counts_a_plain_convolution_exactly():
    net = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, padding=1, bias=False))
    fwd, fwd_bwd = count_flops(net, (8, 8, 8), 4)
    assert fwd == 2 * 8 * 4 * 27 * 8 ** 3  # 2 FLOPs per multiply-add
    assert fwd_bwd == 2 * fwd  # the input needs no gradient: backward is the weight gradient only


@pytest.mark.parametrize("in_channels", [4, 32])  # the channels-last training path and the plain oneDNN call
def test_flop_counter_counts_msfens_direct_onednn_convolutions(in_channels):
    from nnunet_msfen.blocks.conv import ConvNormAct

    block = ConvNormAct(torch.nn.Conv3d, in_channels, 8, 3)
    reference = torch.nn.Sequential(torch.nn.Conv3d(in_channels, 8, 3, padding=1, bias=False))
    assert count_flops(block, (8, 8, 8), in_channels) == count_flops(reference, (8, 8, 8), in_channels)


def test_peak_tensor_memory_is_exact_and_counts_only_what_is_held_at_once():
    cpu = torch.device("cpu")
    assert peak_tensor_memory(lambda: torch.ones(16 * 2 ** 20 // 4).add_(1).sum(), cpu) == pytest.approx(16, abs=0.01)

    def two_then_one():
        a, b = torch.ones(2 ** 20), torch.ones(2 ** 20)  # 8 MiB at once
        del a, b
        return torch.ones(2 ** 20)

    assert peak_tensor_memory(two_then_one, cpu) == pytest.approx(8, abs=0.01)
    assert peak_tensor_memory(two_then_one, cpu) == pytest.approx(8, abs=0.01)  # the same again in one process


def test_the_training_step_is_the_trainers_own():
    arch = brats_arch("2d", 3)
    for name, trainer, weights, lr in (("plain", "nnUNetTrainer", (1, 1), 1e-2),
                                       ("msfen", "nnUNetTrainerMSFEN", (0.3, 0.7), 4e-2)):
        step = NnUNetTrainStep(trainer_class(name), "2d", VARIANTS[name].plans_network, plans_arch(name, arch),
                               [32, 32], 2, torch.device("cpu"))
        loss = step.trainer.loss.loss  # deep supervision wraps it
        assert type(step.trainer).__name__ == trainer and step.trainer.initial_lr == lr
        assert (loss.weight_ce, loss.weight_dice) == weights
        assert [t.shape[-1] for t in step.batch["target"]] == [32, 16]  # deep supervision: all but the lowest
        before = [p.detach().clone() for p in step.net.parameters()]
        assert isinstance(step.step(), float)
        assert any(not torch.equal(a, b) for a, b in zip(before, step.net.parameters()))  # the optimizer stepped


def test_every_variant_builds_with_its_switch():
    arch = brats_arch("3d_fullres", 3)
    for name, contender in VARIANTS.items():
        net = build_network(name, arch)
        assert type(net).__name__ == contender.plans_network.rsplit(".", 1)[-1] or contender.trainer != "nnUNetTrainer"
        cls = trainer_class(name)
        for key, value in contender.extra.items():
            assert cls.network_kwargs.get(key, getattr(cls, key, None)) == value, (name, key)
    resenc = plans_arch("resenc-m", brats_arch("3d_fullres"))
    assert resenc["n_blocks_per_stage"] == [1, 3, 4, 6, 6, 6] and resenc["n_conv_per_stage_decoder"] == [1] * 5
    assert trainer_class("msfen-v1").network_kwargs["group_width"] == 1
    assert resolve_names(["msfen", "default"]) == ["plain", "msfen", "resenc-m"]
    assert set(resolve_names(["all"])) == set(VARIANTS) and "msfen-no-spp" in GROUPS["switches"]


def test_breakdown_times_every_block_once_and_counts_its_flops():
    net = build_network("msfen", brats_arch("2d", 3))
    rows = breakdown(net, torch.randn(2, 4, 32, 32), repeats=1)
    counts = {r["type"]: r["count"] for r in rows}
    # 3 stages: the stem, 2 strided convs, 3 + 2 units, 2 skip fusions, SPP, 2 heads (deep supervision)
    assert counts == {"ModalityAwareStem": 1, "ConvNormAct": 2, "MultiScaleResidualBlock": 5, "SkipFusion": 2,
                      "SpatialPyramidPooling": 1, "segmentation head": 2}
    assert sum(r["share"] for r in rows) == pytest.approx(1)
    assert all(r["seconds"] > 0 and r["gflop"] > 0 for r in rows)


def test_machine_is_described_and_busy_processes_stop():
    machine = describe(torch.device("cpu"))
    assert machine["cores"] >= 1 and machine["cpu"] in one_line(machine) and "torch" in one_line(machine)
    with busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.returncode is not None for p in procs)
    with pytest.raises(ValueError, match="-1"):
        with busy_processes(-1):
            pass


def test_ratios_need_the_reference():
    with pytest.raises(ValueError, match="'plain'"):
        ratios([{"name": "msfen", "parameters": 1}])


@pytest.mark.parametrize("args, message", [
    (["--networks", "unet++"], "unet\\+\\+"),
    (["--patch", "48", "48", "48"], "--patch 48 48 48"),
    (["--patch", "64", "64"], "--patch 64 64"),
    (["--patch", "32", "32", "32"], "--patch 32 32 32"),  # 6 stages: a 1^3 bottleneck InstanceNorm cannot train on
    (["--stages", "9"], "n_stages=9"),
    (["--batch", "0"], "--batch 0"),
    (["--repeats", "0"], "--repeats 0"),
    (["--case-shape", "128", "128"], "--case-shape 128 128"),
    (["--contention", "-1"], "--contention -1"),
])
def test_bad_arguments_exit_non_zero_naming_the_value(args, message, capsys, tmp_path):
    assert main(["benchmark", *args, "-o", str(tmp_path / "b.json")]) == 1
    err = capsys.readouterr().err
    assert "nnunet-msfen benchmark: error:" in err
    assert re.search(message, err), err
    assert not (tmp_path / "b.json").exists()


def test_missing_output_folder_is_an_error(capsys, tmp_path):
    assert main(["benchmark", "-o", str(tmp_path / "nope" / "b.json")]) == 1
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_compiled_prediction_is_one_graph_and_matches_eager():
    """``--compile``: the sliding window runs through ``torch.compile(net)`` (nnU-Net's ``nnUNet_compile=1``).
    MSFEN's prediction must be one graph (a helper the compiler refuses to trace once broke it into 32 graphs and a
    recompilation per convolution), and the captured graph must give the eager logits. Inductor's code generation
    takes minutes on 2 cores; ``aot_eager`` runs the same captured graph without it."""
    import torch._dynamo as dynamo
    from torch._dynamo.eval_frame import OptimizedModule

    from nnunet_msfen.benchmark.measure import SlidingWindow
    from nnunet_msfen.benchmark.nnunet_step import INPUT_CHANNELS, NUM_CLASSES

    torch.manual_seed(0)
    net = build_network("msfen", brats_arch("2d", 3), deep_supervision=False).eval()
    compiled = SlidingWindow(net, [32, 32], [1, 40, 32], INPUT_CHANNELS, NUM_CLASSES, torch.device("cpu"), compile=True)
    assert isinstance(compiled.predictor.network, OptimizedModule)
    x = torch.randn(1, INPUT_CHANNELS, 32, 32)
    with torch.inference_mode():
        explained = dynamo.explain(net)(x)
        assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons
        dynamo.reset()
        torch.testing.assert_close(torch.compile(net, backend="aot_eager")(x), net(x))


@pytest.mark.parametrize("stock, predictor", [(False, "nnUNetPredictorParallelTiles"),
                                              (True, "nnUNetPredictor")])
def test_prediction_runs_through_the_predictor_asked_for(stock, predictor):
    """Default: the predictor of ``nnunet-msfen predict``; ``--stock-predictor``: nnUNetv2_predict's, as it is."""
    from nnunet_msfen.benchmark.measure import SlidingWindow
    from nnunet_msfen.benchmark.nnunet_step import INPUT_CHANNELS, NUM_CLASSES

    net = build_network("plain", brats_arch("2d", 3), deep_supervision=False)
    window = SlidingWindow(net, [32, 32], [1, 40, 32], INPUT_CHANNELS, NUM_CLASSES, torch.device("cpu"), stock=stock)
    assert type(window.predictor).__name__ == predictor
    assert window().__class__ is float and window.predict().shape == (NUM_CLASSES, 1, 40, 32)
