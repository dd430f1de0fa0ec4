"""Run the whole pipeline on phantom data on the CPU: phantom -> convert -> plan -> train -> predict -> evaluate.

    nnunet-msfen demo [--workdir DIR] [--iterations N] [--fresh]

Everything is written under the workdir (default ./demo_workdir): its own nnUNet_raw, nnUNet_preprocessed and
nnUNet_results, the predictions, evaluation.json/.csv, overlay.png and the logs. Running it again reuses the
finished steps and resumes an interrupted training; --fresh starts over.
"""
import argparse
import sys
import time
from pathlib import Path

from nnunet_msfen.demo.settings import DEMO_TRAINER, DemoSettings

DEFAULTS = DemoSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen demo``."""
    parser.add_argument("--workdir", type=Path, default=Path("demo_workdir"),
                        help="folder for all data, results and logs (default ./demo_workdir)")
    parser.add_argument("--iterations", type=int, default=DEFAULTS.iterations,
                        help=f"training iterations (default {DEFAULTS.iterations}): a fixed amount, so that a busy "
                             f"machine takes longer but trains the same model")
    parser.add_argument("--fresh", action="store_true", help="delete the workdir's earlier results and start over")
    parser.add_argument("--train-cases", type=int, default=DEFAULTS.train_cases,
                        help=f"phantom training cases (default {DEFAULTS.train_cases})")
    parser.add_argument("--test-cases", type=int, default=DEFAULTS.test_cases,
                        help=f"held-out phantom cases, predicted and scored (default {DEFAULTS.test_cases})")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"), default=DEFAULTS.shape,
                        help="phantom grid in 1 mm voxels (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="phantom seed (default 0)")
    parser.add_argument("--trainer", default=DEMO_TRAINER,
                        help=f"MSFEN trainer (default {DEMO_TRAINER}; nnUNetTrainerMSFEN_Smoke: a 1-minute smoke run)")
    parser.add_argument("--tta", action="store_true",
                        help="predict with test-time mirroring (8x the prediction time; off by default)")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen demo``."""
    from nnunet_msfen.dataset_conversion.errors import BratsConversionError
    from nnunet_msfen.demo.run import run_demo
    from nnunet_msfen.demo.report import verdict
    from nnunet_msfen.errors import CommandError, StepError, WorkdirError

    try:
        settings = DemoSettings(train_cases=args.train_cases, test_cases=args.test_cases, shape=tuple(args.shape),
                                seed=args.seed, iterations=args.iterations, trainer=args.trainer, tta=args.tta)
    except ValueError as e:
        raise CommandError(str(e)) from None
    start = time.monotonic()
    print(f"nnunet-msfen demo in {args.workdir.absolute()}: {settings.train_cases} training and "
          f"{settings.test_cases} held-out phantom cases of {'x'.join(map(str, settings.shape))} voxels, "
          f"{settings.trainer} for {settings.iterations} iterations on the CPU, prediction "
          f"{'with' if settings.tta else 'without'} test-time mirroring", flush=True)
    try:
        result = run_demo(settings, args.workdir, fresh=args.fresh, say=lambda s: print(s, flush=True))
    except (StepError, WorkdirError, BratsConversionError) as e:
        raise CommandError(f"{e}\nRun the same command again to resume, or add --fresh to start over.") from None
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    print(f"\nMean over the {settings.test_cases} held-out cases (lesion-wise: BraTS 2023 rules; HD95 in mm):")
    print(result.table)
    print(verdict(result.margins))
    print(f"\nper-case metrics: {result.evaluation} and {result.evaluation.with_suffix('.csv')}")
    print(f"overlay (reference top, prediction bottom; WT green, TC blue, ET red): {result.overlay}")
    from nnunet_msfen.demo.next_steps import text
    from nnunet_msfen.demo.workdir import DemoWorkdir

    print("\n" + text(DemoWorkdir(args.workdir, settings)))
    print(f"demo finished in {time.monotonic() - start:.0f} s")
    return 0
