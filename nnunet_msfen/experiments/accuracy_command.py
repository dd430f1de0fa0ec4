"""Train each trainer for the same wall-clock budget (or number of iterations) on one BraTS folder and score it
on another.

    nnunet-msfen benchmark-accuracy --train DIR --test DIR [--config 2d|3d_fullres] [--minutes M | --iterations N]
                                    [-tr A B ...] [--batch-size N] [--workdir DIR] [--disable-tta]

Both folders are BraTS releases as distributed (any layout convert-brats reads; the test cases need their
segmentations). Steps: convert both; nnUNetv2_plan_and_preprocess -c CONFIG; per trainer, train on fold "all"
(every training case) for M minutes, then nnUNetv2_predict the test cases; evaluate. Prints Dice and HD95 of
WT, TC and ET per trainer beside epochs, iterations, seconds per iteration and parameters, and writes
accuracy.json and accuracy.md in the workdir.

Trainers (-tr): nnUNetTrainer and nnUNetTrainerMSFEN (the default pair) run as their time-budget variants
nnUNetTrainer_TimeBudget and nnUNetTrainerMSFEN_TimeBudget: 25 iterations per epoch, the poly learning rate
fitted to the budget. Any other name is passed to nnU-Net as given (a trainer that is not a time-budget one
trains for its own number of epochs).

--iterations N: every trainer trains exactly N iterations instead (nnUNetTrainer, nnUNetTrainerMSFEN,
nnUNetTrainerMSFEN_v1, nnUNetTrainerMSFEN_PlannedDownsampling and the modality-dropout trainers as their
*_Iterations variants: epochs of 25, the poly schedule over N). On a GPU nnU-Net trains a fixed number of
iterations, so this is how per-iteration learning is compared, and the result does not depend on the machine's
load.

Equal conditions: same plans and patch, same seed (network initialisation, patch sampling, augmentation;
PYTHONHASHSEED too) and, with one augmentation worker (--da-processes 1, the default), the same batches in
the same order for every trainer. nnU-Net's final validation is skipped: on fold "all" it would predict the
training cases.

--batch-size N: nnU-Net plans 2d batches for a GPU (~100 slices for BraTS 2d), hopeless on a CPU. This writes
nnUNetPlans_bsN.json, nnU-Net's plans with batch size N in CONFIG (same preprocessed data), and trains and
predicts with -p nnUNetPlans_bsN.

Rerunning the command skips what is done (resumes an interrupted training); the workdir is refused if it was
made for other folders.
"""
import argparse
import contextlib
import io
import time
import traceback
from pathlib import Path
from typing import Optional, Sequence

from nnunet_msfen.errors import CommandError, StepError, WorkdirError
from nnunet_msfen.experiments.accuracy_settings import CONFIGURATIONS, DEFAULT_TRAINERS, DEVICES, AccuracySettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen benchmark-accuracy``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--train", type=Path, required=True, help="BraTS-layout folder of the training cases")
    parser.add_argument("--test", type=Path, required=True, help="BraTS-layout folder of the test cases (with segs)")
    parser.add_argument("--config", default="3d_fullres", choices=CONFIGURATIONS,
                        help="nnU-Net configuration (default 3d_fullres; on a CPU use 2d with --batch-size)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=30.0, help="training budget per trainer (default 30)")
    budget.add_argument("--iterations", type=int, default=None,
                        help="train every trainer exactly this many iterations instead of for --minutes")
    parser.add_argument("-tr", "--trainers", nargs="+", default=list(DEFAULT_TRAINERS), metavar="TRAINER",
                        help="trainers to compare (default: nnUNetTrainer nnUNetTrainerMSFEN)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="train with a copy of the plans with this batch size (nnUNetPlans_bsN)")
    parser.add_argument("--workdir", type=Path, default=Path("accuracy_workdir"),
                        help="folder for nnU-Net's data, models, predictions, logs and the report "
                             "(default ./accuracy_workdir)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every training (default 0)")
    parser.add_argument("-device", "--device", dest="device", choices=DEVICES, default=None,
                        help="training and prediction device (default: cuda when available, else cpu)")
    parser.add_argument("--disable_tta", "--disable-tta", dest="disable_tta", action="store_true",
                        help="predict without test-time mirroring (nnUNetv2_predict --disable_tta)")
    parser.add_argument("-d", "--dataset-id", dest="dataset_id", type=int, default=901,
                        help="nnU-Net id of the training dataset in the workdir; the test set takes the next (901)")
    parser.add_argument("--da-processes", type=int, default=1,
                        help="nnU-Net augmentation workers (default 1: identical batches for every trainer)")


NOT_FOUND = "Could not find requested nnunet trainer"  # how nnunetv2 2.8.1's RuntimeError for an unknown name starts


def _where(error: BaseException) -> str:
    """``Type: message (at file:line)``, the line being where the error was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{at}"


def find_trainer(name: str) -> Optional[type]:
    """nnU-Net's trainer class ``name`` (its own lookup, quietly), or ``None`` when there is no such trainer class.
    A lookup that fails for another reason (a trainer module that does not import, for one) is a
    ``CommandError`` that names the real error: it must not read as a missing class."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return recursive_find_trainer_class_by_name(name)
        except RuntimeError as e:
            if str(e).startswith(NOT_FOUND):
                return None
            error: Exception = e
        except AssertionError:  # nnU-Net found a class of that name, but it is no nnUNetTrainer
            return None
        except Exception as e:
            error = e
    raise CommandError(f"nnU-Net's lookup of trainer {name!r} failed: {_where(error)}") from error


def check_trainers(names: Sequence[str]) -> None:
    """``ValueError`` naming each trainer nnU-Net cannot find; ``CommandError`` when a lookup fails (find_trainer)."""
    missing = [name for name in names if find_trainer(name) is None]
    if missing:
        raise ValueError(f"nnU-Net finds no trainer class named {', '.join(map(repr, missing))} (in nnunetv2 or "
                         f"nnUNet_extTrainer)")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen benchmark-accuracy``."""
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        settings = AccuracySettings(train=args.train, test=args.test, config=args.config, minutes=args.minutes,
                                    iterations=args.iterations, trainers=tuple(args.trainers), batch_size=args.batch_size, seed=args.seed,
                                    device=device, tta=not args.disable_tta, dataset_id=args.dataset_id,
                                    da_processes=args.da_processes)
        check_trainers(settings.nnunet_trainers)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CommandError("--device cuda: torch finds no CUDA device here")

    from nnunet_msfen.dataset_conversion.errors import BratsConversionError
    from nnunet_msfen.experiments.accuracy import run_benchmark
    from nnunet_msfen.experiments.accuracy_report import format_table

    start = time.monotonic()
    print(f"benchmark-accuracy in {args.workdir.absolute()}: {', '.join(settings.nnunet_trainers)}; {settings.config}, "
          f"{settings.budget} each, plans {settings.plans}, seed {settings.seed}, {settings.device}", flush=True)
    try:
        rows = run_benchmark(settings, args.workdir, say=lambda s: print(s, flush=True))
    except (StepError, WorkdirError, BratsConversionError, ValueError) as e:
        raise CommandError(f"{e}\nRun the same command again to resume.") from None
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume")
        return 130
    print(f"\nMean over the {len(rows[0]['test_cases'])} test cases (HD95 in mm; s/it: epoch time / training "
          f"iterations per epoch):")
    print(format_table(rows))
    wd = args.workdir.absolute()
    print(f"\nreport: {wd / 'accuracy.md'} and {wd / 'accuracy.json'}; per-case metrics in {wd / 'evaluation'}")
    print(f"benchmark-accuracy finished in {time.monotonic() - start:.0f} s")
    return 0
