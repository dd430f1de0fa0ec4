"""One training of ``nnunet-msfen benchmark-accuracy``, run in its own process:

    python -m nnunet_msfen.experiments.train_worker DATASET CONFIG FOLD TRAINER PLANS DEVICE SEED [--c]

What ``nnUNetv2_train DATASET CONFIG FOLD -tr TRAINER -p PLANS -device DEVICE [--c]`` does, with three changes:

* **seeded**: Python's, NumPy's and torch's generators are seeded before the network is built, and nnU-Net's
  data-augmentation workers get seeds too (nnU-Net passes ``seeds=None``, and batchgenerators then reseeds each
  worker from the OS). With one worker per loader (``nnUNet_n_proc_DA=1``) every trainer sees the same batches in
  the same order, whatever its network; they differ only in how many they get within the budget.
* **no final validation**: on fold ``all`` nnU-Net's validation set is the training set, and predicting it with
  test-time mirroring costs longer than the benchmark's prediction of the test cases.
* **statistics**: ``benchmark_training.json`` beside the checkpoint: epochs, iterations per epoch, epoch times,
  parameters; read by the report.
"""
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from nnunet_msfen.io.atomic import write_text

STATS_FILE = "benchmark_training.json"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and give nnU-Net's augmentation workers seeds derived from ``seed``."""
    import numpy as np
    import torch
    from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
    from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as trainer_module

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    created = [0]  # the training loader is created first, then the validation loader

    class SeededAugmenter(NonDetMultiThreadedAugmenter):
        def __init__(self, data_loader, transform, num_processes, num_cached=2, seeds=None, pin_memory=False,
                     wait_time=0.02):
            if seeds is None:
                seeds = [seed + 1000 * created[0] + i for i in range(num_processes)]
            created[0] += 1
            super().__init__(data_loader, transform, num_processes, num_cached, seeds, pin_memory, wait_time)

    # The one patch of an nnU-Net global, and only in this worker process: nnunetv2 2.8.1's get_dataloaders builds
    # its loaders through this module-level name with seeds=None and offers no hook to seed them.
    trainer_module.NonDetMultiThreadedAugmenter = SeededAugmenter


def training_stats(trainer, seconds: float) -> Dict[str, object]:
    """Epochs, iterations and epoch times of a finished (or resumed and finished) nnU-Net training."""
    def logged(key: str) -> list:
        return list(trainer.logger.get_value(key, step=None))

    epoch_seconds: List[float] = [e - s for s, e in zip(logged("epoch_start_timestamps"),
                                                         logged("epoch_end_timestamps"))]
    losses = logged("train_losses")
    per_epoch = int(trainer.num_iterations_per_epoch)
    # a time-budget trainer stops within an epoch: its last logged epoch may be cut off
    partial = getattr(trainer, "partial_epoch_iterations", None)
    iterations = trainer.iterations_trained() if hasattr(trainer, "iterations_trained") else len(epoch_seconds) * per_epoch
    return {
        "trainer": type(trainer).__name__,
        "epochs": len(epoch_seconds),
        "iterations_per_epoch": per_epoch,
        "partial_epoch_iterations": partial,
        "val_iterations_per_epoch": int(trainer.num_val_iterations_per_epoch),
        "iterations": int(iterations),
        "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        "parameters": int(sum(p.numel() for p in trainer.network.parameters())),
        "budget_minutes": trainer.budget_seconds / 60 if hasattr(trainer, "budget_seconds") else None,
        "final_train_loss": float(losses[-1]) if losses else None,
        "process_seconds": round(seconds, 1),
    }


def main(argv: Optional[List[str]] = None) -> int:
    """Train as described in the module docstring; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    resume = "--c" in argv
    args = [a for a in argv if a != "--c"]
    if len(args) != 7:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    dataset, config, fold, trainer_name, plans, device_name, seed = args
    start = time.monotonic()
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args, maybe_load_checkpoint

    seed_everything(int(seed))
    if device_name == "cpu":
        from nnunet_msfen.runtime.cpu_allocator import retain_freed_memory

        retain_freed_memory()  # for every trainer alike (nnUNetTrainerMSFEN would do it for itself only)
        torch.set_num_threads(multiprocessing.cpu_count())  # as nnUNetv2_train does
    else:
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    trainer = get_trainer_from_args(dataset, config, fold if fold == "all" else int(fold), trainer_name, plans,
                                    resume, device=torch.device(device_name))
    maybe_load_checkpoint(trainer, resume, False)
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    trainer.run_training()
    stats = training_stats(trainer, time.monotonic() - start)
    # json.dumps, not write_json: a diverged training's NaN loss is recorded as it was logged
    write_text(Path(trainer.output_folder) / STATS_FILE, json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
