"""Speed and size of MSFEN against nnU-Net's U-Nets on one topology (``nnunet-msfen benchmark``).

For every network: parameters, FLOPs of one patch (forward, forward + backward; torch.utils.flop_counter), peak
tensor memory of a training step, the median time of a full nnU-Net training step (its trainer's ``train_step``)
after warm-up, the achieved GFLOP/s, and the time of nnU-Net's sliding-window prediction of one case. The
networks are timed in interleaved rounds (one step of each per round) so that a change of load on a shared machine
hits all of them alike, and every figure is also given as a ratio to PlainConvUNet measured in the same run. The
machine (CPU model and instruction set, torch, oneDNN, GPU) and the load average are part of the output: ratios
between designs differ from machine to machine.

--contention N times the training steps again while N single-threaded busy processes run (a CPU shared with
augmentation workers or other jobs). --breakdown times every block of each network alone and groups them by type:
where the time goes, and at what GFLOP/s. On the CPU every network runs with freed memory kept in the process
(``nnunet_msfen.runtime.cpu_allocator``, what MSFEN's trainer does; --cpu-allocator system keeps glibc's default).
--compile runs the networks through ``torch.compile`` where nnU-Net does with ``nnUNet_compile=1``: the prediction
on any device (the compilation is timed apart, as ``compile_s``), the training steps on CUDA only. The prediction
runs through the predictor of ``nnunet-msfen predict`` (nnU-Net's, with its tile producer thread kept off OpenMP:
``nnunet_msfen.inference.tile_producer``); --stock-predictor times ``nnUNetv2_predict``'s predictor as it is.

CPU defaults (sane on a 2-core machine; the GPU plan is 128^3, batch 2 in 3D): the BraTS 3d_fullres topology (6
stages, 32 ... 320 features) with a 64^3 patch, batch 2, and a 128^3 case (a crop of a BraTS volume, 27 tiles);
2d: the 7-stage topology, 192x192 patch, batch 12, a case of 16 slices of 192x192.
"""
import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

DEFAULTS = {
    "3d_fullres": dict(patch=[64, 64, 64], batch=2, case_shape=[128, 128, 128]),
    "2d": dict(patch=[192, 192], batch=12, case_shape=[16, 192, 192]),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen benchmark``."""
    from nnunet_msfen.benchmark.networks import GROUPS, VARIANTS
    from nnunet_msfen.runtime.cpu_allocator import CHOICES

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__  # the CPU defaults are part of the help
    parser.epilog = ("networks: " + ", ".join(VARIANTS) + "\ngroups: " +
                     "; ".join(f"{g} = {' '.join(n)}" for g, n in GROUPS.items() if g != "all") + "; all")
    parser.add_argument("--config", default="3d_fullres", choices=sorted(DEFAULTS),
                        help="nnU-Net configuration whose BraTS topology is built (default: 3d_fullres)")
    parser.add_argument("--stages", type=int, default=None,
                        help="number of stages (default: the plan's, 6 in 3D and 7 in 2D; fewer for a quick run)")
    parser.add_argument("--patch", type=int, nargs="+", default=None,
                        help="patch size, a multiple of 2^(stages-1), at least twice it (default: 64 64 64 in 3D, "
                             "192 192 in 2D)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 2 in 3D, 12 in 2D)")
    parser.add_argument("--case-shape", type=int, nargs="+", default=None,
                        help="spatial size of the case predicted (2D: slices x y; default: 128 128 128 in 3D, "
                             "16 192 192 in 2D)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per network (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per network first (default: 1)")
    parser.add_argument("--inference-repeats", type=int, default=1,
                        help="timed predictions of the case per network (default: 1, after a warm-up forward)")
    parser.add_argument("--networks", nargs="+", default=["default"], metavar="NAME",
                        help="networks or groups to measure (default: default = plain resenc-m msfen); plain is "
                             "always added, as the reference of the ratios")
    parser.add_argument("-device", "--device", dest="device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available (with nnU-Net's autocast), else cpu")
    parser.add_argument("--contention", type=int, default=0, metavar="N",
                        help="also time the training steps while N busy single-threaded processes run (default 0)")
    parser.add_argument("--breakdown", action="store_true",
                        help="time every block alone, grouped by type (where the time goes)")
    parser.add_argument("--cpu-allocator", choices=CHOICES, default="retain",
                        help="retain: keep freed memory in the process (default, as MSFEN's trainer on a CPU); "
                             "system: glibc's default")
    parser.add_argument("--mirroring", action="store_true", help="test-time mirroring in the prediction")
    parser.add_argument("--channels-last", action="store_true", help="channels-last tensors and weights")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks as nnU-Net does with nnUNet_compile=1: the prediction always, "
                             "the training steps on CUDA only (nnU-Net's trainer never compiles on the CPU)")
    parser.add_argument("--stock-predictor", action="store_true",
                        help="predict with nnU-Net's predictor as nnUNetv2_predict runs it, whose tile producer thread "
                             "slows the network on a CPU (default: the predictor of nnunet-msfen predict)")
    parser.add_argument("--no-inference", action="store_true", help="skip the sliding-window prediction")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument("-o", "--output", default="benchmark.json", help="OUT.json (default: benchmark.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.json")


def _check(args: argparse.Namespace) -> dict:
    """Validated settings; ``CommandError`` naming the bad value."""
    from nnunet_msfen.benchmark.networks import brats_arch, resolve_names
    from nnunet_msfen.errors import CommandError

    dims = 3 if args.config == "3d_fullres" else 2
    d = DEFAULTS[args.config]
    patch = list(args.patch or d["patch"])
    case = list(args.case_shape or d["case_shape"])
    batch = d["batch"] if args.batch is None else args.batch
    try:
        arch = brats_arch(args.config, args.stages)
        names = resolve_names(args.networks)
    except ValueError as e:
        raise CommandError(str(e)) from None
    factor = 2 ** (arch["n_stages"] - 1)
    # InstanceNorm needs more than one voxel at the bottleneck in training: at least 2 x 2^(stages-1) per axis
    if len(patch) != dims or any(p < 2 * factor or p % factor for p in patch):
        raise CommandError(f"--patch must be {dims} sizes, each a multiple of 2^(stages-1) = {factor} and at least "
                           f"{2 * factor} for {arch['n_stages']} stages, got --patch {' '.join(map(str, patch))}")
    if len(case) != 3 or any(c < 1 for c in case):
        raise CommandError(f"--case-shape must be 3 positive sizes, got --case-shape {' '.join(map(str, case))}")
    for flag, value, low in (("--batch", batch, 1), ("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                             ("--inference-repeats", args.inference_repeats, 1), ("--contention", args.contention, 0)):
        if value < low:
            raise CommandError(f"{flag} must be >= {low}, got {flag} {value}")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: no CUDA device is available to torch")
    out = Path(args.output)
    if not out.parent.is_dir():
        raise CommandError(f"output folder does not exist: {out.parent}")
    from nnunet_msfen.io.outputs import claim_output

    claim_output(out, args.overwrite, folder=False)
    return dict(arch=arch, names=names, patch=patch, case=case, batch=batch, device=device, output=out)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen benchmark``."""
    s = _check(args)
    import torch

    from nnunet_msfen.benchmark.breakdown import breakdown
    from nnunet_msfen.benchmark.contention import busy_processes
    from nnunet_msfen.benchmark.machine import describe, one_line
    from nnunet_msfen.benchmark.measure import (SlidingWindow, count_flops, count_parameters, memory_format_for,
                                                predictor_class, timed)
    from nnunet_msfen.benchmark.memory import peak_tensor_memory
    from nnunet_msfen.benchmark.networks import VARIANTS, plans_arch, trainer_class
    from nnunet_msfen.benchmark.nnunet_step import INPUT_CHANNELS, NUM_CLASSES, NnUNetTrainStep
    from nnunet_msfen.benchmark.report import format_breakdown, format_table, ratios
    from nnunet_msfen.io.atomic import write_json
    from nnunet_msfen.runtime.cpu_allocator import retain_freed_memory

    arch, names, device = s["arch"], s["names"], torch.device(s["device"])
    allocator = "retain" if device.type == "cpu" and retain_freed_memory(args.cpu_allocator) else "system"
    started, load_before = time.time(), os.getloadavg()
    machine = describe(device)
    print(f"benchmark: {args.config}, {arch['n_stages']} stages, patch {s['patch']}, batch {s['batch']}, "
          f"case {s['case']}, device {device}, CPU allocator {allocator}, load {load_before[0]:.2f}\n"
          f"machine: {one_line(machine)}", flush=True)
    results: Dict[str, dict] = {}
    steps: Dict[str, NnUNetTrainStep] = {}
    for name in names:
        torch.manual_seed(0)
        contender = VARIANTS[name]
        step = NnUNetTrainStep(trainer_class(name), args.config, contender.plans_network, plans_arch(name, arch),
                               s["patch"], s["batch"], device)
        if args.channels_last:
            fmt = memory_format_for(len(s["patch"]))
            step.trainer.network = step.net = step.net.to(memory_format=fmt)
            step.batch["data"] = step.batch["data"].contiguous(memory_format=fmt)
        results[name] = {"name": name, "description": contender.description, "trainer": type(step.trainer).__name__,
                         "network_class_name": type(step.net).__name__, "extra_kwargs": contender.extra,
                         "parameters": count_parameters(step.net)}
        if not args.no_flops:
            fwd, fwd_bwd = count_flops(copy.deepcopy(step.net), s["patch"], INPUT_CHANNELS)
            results[name].update(gflops_forward=fwd / 1e9, gflops_forward_backward=fwd_bwd / 1e9)
        if args.compile and device.type == "cuda":  # nnU-Net's trainer compiles by default, but only on a GPU
            step.trainer.network = torch.compile(step.net)
        if not args.no_memory:  # the first step of the fresh trainer: gradients and momentum are allocated in it
            results[name]["peak_memory_mib"] = round(peak_tensor_memory(step.step, device), 1)
        steps[name] = step
        print(f"  built {name} ({results[name]['trainer']}): {results[name]['parameters']:,} parameters"
              + (f", step peak {results[name]['peak_memory_mib']:.0f} MiB" if not args.no_memory else ""), flush=True)

    timers = {name: (lambda st=steps[name]: timed(st.step, st.device)) for name in names}
    times = _interleaved(names, timers, args.warmup, args.repeats, "training step")
    for name in names:
        results[name].update(train_step_s=statistics.median(times[name]), train_step_all_s=times[name])
        if "gflops_forward_backward" in results[name]:
            results[name]["gflop_per_s"] = results[name]["gflops_forward_backward"] * s["batch"] / results[name]["train_step_s"]
    if args.contention:
        with busy_processes(args.contention):
            times = _interleaved(names, timers, 0, args.repeats, f"training step beside {args.contention} busy process(es)")
        for name in names:
            results[name].update(train_step_contended_s=statistics.median(times[name]),
                                 train_step_contended_all_s=times[name])

    n_tiles = tile_workers = None
    if not args.no_inference:
        windows = {}
        for name in names:
            net = steps[name].net
            net.decoder.deep_supervision = False  # how nnU-Net predicts: one full-resolution output
            windows[name] = SlidingWindow(net, s["patch"], s["case"], INPUT_CHANNELS, NUM_CLASSES, device,
                                          args.mirroring, args.channels_last, args.compile, args.stock_predictor)
            n_tiles = windows[name].n_tiles
            warm_up = windows[name].warm_up()
            if args.compile:
                results[name]["compile_s"] = round(warm_up, 1)
                print(f"  compiled {name} for prediction in {warm_up:.1f} s", flush=True)
        # nnU-Net's own predictor (--stock-predictor) has one tile at a time only
        tile_workers = getattr(windows[names[-1]].predictor, "tiles_at_once", lambda: 1)()
        print(f"  sliding window: {n_tiles} tiles per case, predictor {predictor_class(args.stock_predictor).__name__}"
              f", {tile_workers} tile(s) at a time", flush=True)
        times = _interleaved(names, windows, 0, args.inference_repeats, "prediction")
        for name in names:
            results[name].update(inference_s=statistics.median(times[name]), inference_all_s=times[name])

    breakdowns = {}
    if args.breakdown:
        for name in names:
            net = steps[name].net
            net.decoder.deep_supervision = True
            breakdowns[name] = breakdown(net, steps[name].batch["data"])
            results[name]["breakdown"] = breakdowns[name]
    del steps

    rows = ratios([results[n] for n in names])
    meta = dict(command="nnunet-msfen benchmark " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["benchmark"] else None,
                config=args.config, arch=arch, patch=s["patch"], batch=s["batch"], case_shape=s["case"],
                sliding_window=dict(tile_step_size=0.5, gaussian=True, mirroring=args.mirroring, tiles=n_tiles,
                                    predictor=predictor_class(args.stock_predictor).__name__,
                                    tile_workers=tile_workers),
                device=s["device"], machine=machine, cpu_allocator=allocator, channels_last=args.channels_last,
                compile=args.compile,
                repeats=args.repeats, warmup=args.warmup, inference_repeats=args.inference_repeats,
                contention=args.contention, memory="peak tensor memory of the first training step "
                                                   "(nnunet_msfen.benchmark.memory)",
                load_average_start=load_before, load_average_end=os.getloadavg(),
                wall_s=round(time.time() - started, 1), date=time.strftime("%Y-%m-%d %H:%M:%S %z"))
    write_json(s["output"], {"meta": meta, "results": rows})
    print()
    print(format_table(rows))
    for name, table in breakdowns.items():
        print(f"\nwhere the time goes, {name} (each block alone, forward + backward):\n{format_breakdown(table)}")
    print(f"\nmachine: {one_line(machine)}; CPU allocator {allocator}\nload average {load_before[0]:.2f} at start, "
          f"{meta['load_average_end'][0]:.2f} at end; {meta['wall_s']} s; written {s['output']}")
    return 0


def _interleaved(names: List[str], runners: Dict[str, object], warmup: int, repeats: int, what: str) -> Dict[str, List[float]]:
    """Seconds of ``repeats`` timed calls of every runner after ``warmup`` untimed ones, in rounds of one call
    each, the order rotated every round."""
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        this_round = {}
        for name in order:
            this_round[name] = runners[name]()
            if r >= warmup:
                times[name].append(this_round[name])
        label = "warm-up" if r < warmup else f"round {r - warmup + 1}/{repeats}"
        print(f"  {what} {label}: " + ", ".join(f"{n} {this_round[n]:.2f}s" for n in names), flush=True)
    return times
