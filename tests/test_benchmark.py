"""``nnunet-msfen benchmark`` on a tiny topology: the JSON it writes, its ratios, its errors. No timing assertions:
speed is what the benchmark reports, not what a unit test checks."""
import json
import re

import pytest
import torch

from nnunet_msfen.benchmark.measure import count_flops, count_parameters, peak_memory_of
from nnunet_msfen.benchmark.memory import main as memory_main
from nnunet_msfen.benchmark.networks import GROUPS, VARIANTS, arch_for, brats_arch, build_network, resolve_names
from nnunet_msfen.benchmark.report import RATIO_FIELDS, ratios
from nnunet_msfen.cli import main

TINY = ["--config", "2d", "--stages", "3", "--patch", "32", "32", "--batch", "2", "--case-shape", "2", "48", "40",
        "--repeats", "2", "--warmup", "0", "--networks", "msfen", "--no-memory"]  # memory: its own test below


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
    for r in rows:
        assert len(r["train_step_all_s"]) == 2 and r["train_step_s"] > 0
        assert len(r["inference_all_s"]) == 1 and r["inference_s"] > 0
        assert 0 < r["gflops_forward"] < r["gflops_forward_backward"]
        assert "peak_memory_mib" not in r and "peak_memory_ratio" not in r  # --no-memory
        for field, ratio in RATIO_FIELDS.items():
            if field != "peak_memory_mib":
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


def test_peak_memory_sees_an_allocation():
    peak = peak_memory_of(lambda: torch.ones(64 * 2 ** 20 // 4).add_(1).sum(), torch.device("cpu"))
    assert 60 < peak < 400, peak


def test_memory_worker_prints_the_peak_of_one_training_step(capsys):
    spec = dict(name="msfen", config="2d", n_stages=3, patch=[128, 128], batch=8, device="cpu", loss_weights=[0.3, 0.7])
    assert memory_main([json.dumps(spec)]) == 0  # in this process: the CLI runs it in a fresh one per network
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["name"] == "msfen" and line["peak_mib"] > 10  # 32 x 128 x 128 x 8 floats = 16 MiB per stage-0 map


def test_every_variant_builds_the_class_it_names_with_its_switch():
    arch = brats_arch("3d_fullres")
    for name, (class_name, extra, _) in VARIANTS.items():
        cls, kwargs = arch_for(name, arch)
        assert cls == class_name and all(kwargs[k] == v for k, v in extra.items())
    _, resenc = arch_for("resenc-m", arch)
    assert resenc["n_blocks_per_stage"] == [1, 3, 4, 6, 6, 6] and resenc["n_conv_per_stage_decoder"] == [1] * 5
    assert resolve_names(["msfen", "default"]) == ["plain", "msfen", "resenc-m"]
    assert set(resolve_names(["all"])) == set(VARIANTS) and "msfen-no-spp" in GROUPS["switches"]


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
