"""``nnunet-msfen``: the package's own command line (nnU-Net's commands do the rest).

Every subcommand lives in its own module, which provides ``add_arguments(parser)`` and ``run(args) -> int``
and keeps heavy imports (torch, nnunetv2) inside ``run`` so that ``nnunet-msfen --help`` stays fast.
To add a subcommand, add one line to ``SUBCOMMANDS``.

Flag rule: a flag that mirrors one of nnU-Net's commands is spelled as nnU-Net spells it (``-d``, ``-c``, ``-tr``,
``-p``, ``-f``, ``-np``, ``-device``, ``-gpu_memory_target``, ``--no_pp``, ``--disable_tta``, ...) and also accepts
ours (``--gpu-memory-target``, ``--no-pp``, ``--disable-tta``, ``--device``, ...); every other flag is ours: long,
lower case, words joined by ``-``. ``NNUNET_SPELLINGS`` lists the pairs; a test holds every command to them.
"""
import argparse
import sys
from importlib import import_module
from typing import List, Optional

from nnunet_msfen.errors import CommandError

# name -> (module, one-line help)
SUBCOMMANDS = {
    "plan": ("nnunet_msfen.plans.plan_command", "plan (and preprocess) a dataset with nnUNetPlannerMSFEN"),
    "convert-brats": ("nnunet_msfen.dataset_conversion.convert_brats", "convert a BraTS release to an nnU-Net raw dataset"),
    "export-brats": ("nnunet_msfen.dataset_conversion.export_brats", "nnU-Net predictions -> BraTS labels and file names"),
    "phantom": ("nnunet_msfen.dataset_conversion.phantom", "write synthetic BraTS-like cases in a release's layout"),
    "predict": ("nnunet_msfen.inference.predict_command", "predict cases with any subset of the MRI sequences (missing ones as zeros)"),
    "export-onnx": ("nnunet_msfen.deploy.export_command", "export a trained model's folds to ONNX, verified against PyTorch"),
    "robustness": ("nnunet_msfen.evaluation.robustness_command", "predict and score a test folder under all 15 subsets of the MRI sequences"),
    "pool-robustness": ("nnunet_msfen.evaluation.robustness_pool_command", "pool robustness studies (cross-validation splits, more trainers) and compare trainers per subset"),
    "evaluate": ("nnunet_msfen.evaluation.evaluate", "region and BraTS lesion-wise metrics of a prediction folder"),
    "compare": ("nnunet_msfen.evaluation.compare", "compare two trainers' cross-validation results, with a report"),
    "postprocess": ("nnunet_msfen.evaluation.postprocess_command", "choose and apply the ET rule or lesion-wise component rules"),
    "demo": ("nnunet_msfen.demo.command", "the whole pipeline on phantom data on the CPU, with metrics and an overlay"),
    "benchmark": ("nnunet_msfen.benchmark.command", "parameters, FLOPs, memory, step and prediction time vs nnU-Net's U-Nets"),
    "benchmark-accuracy": ("nnunet_msfen.experiments.accuracy_command", "train trainers for equal minutes on BraTS cases, score held-out ones"),
    "pool-accuracy": ("nnunet_msfen.experiments.accuracy_pool_command", "pool benchmark-accuracy runs on disjoint test folders into one paired comparison"),
}


# our spelling -> nnU-Net's, for flags that mirror nnU-Net's: a command that has either must accept both
NNUNET_SPELLINGS = {"--dataset-id": "-d", "--num-processes": "-np", "--device": "-device",
                    "--gpu-memory-target": "-gpu_memory_target", "--no-pp": "--no_pp",
                    "--verify-dataset-integrity": "--verify_dataset_integrity", "--disable-tta": "--disable_tta"}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per entry of ``SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(prog="nnunet-msfen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {import_module('nnunet_msfen').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``nnunet-msfen`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CommandError as e:
        print(f"nnunet-msfen {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # permissions, a full disk, a folder that vanished: the path in one line, no traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"nnunet-msfen {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
