"""Learning-speed probe trainers behind docs/history_0.1.0.md section 6 (a study; no command of the package uses them).

Each trains 3 epochs of 25 iterations (75 in all) on a poly schedule planned for 11 epochs, which is what the
30-minute 2d run of section 5 planned, and stops (``StopTraining``); the pseudo-Dice nnU-Net logs after each epoch
is the measure. Put this file's folder in ``nnUNet_extTrainer`` and train each with the benchmark's seeded worker
(same batches in the same order for every variant; no final validation):

    export nnUNet_extTrainer=$PWD/nnunet_msfen/experiments/studies nnUNet_n_proc_DA=1 PYTHONHASHSEED=0 \
        nnUNet_raw=... nnUNet_preprocessed=... nnUNet_results=...
    python -m nnunet_msfen.experiments.train_worker 901 2d all Probe_lr4 nnUNetPlans_bs12 cpu 0
"""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN
from nnunet_msfen.training.short_schedules import ShortSchedule
from nnunet_msfen.training.stopping import EndsEarly, StopTraining


class Probe(ShortSchedule, EndsEarly):
    """75 iterations of an 11-epoch poly schedule, 5 validation iterations per epoch, no checkpoints between."""

    epochs, iterations_per_epoch, val_iterations_per_epoch, checkpoint_every = 11, 25, 5, 100
    stop_after_epochs = 3

    def on_epoch_end(self):
        super().on_epoch_end()
        if self.current_epoch >= self.stop_after_epochs:
            raise StopTraining()


class PaperLoss:
    """The loss and step size before section 6: 0.3 CE + 0.7 Dice at nnU-Net's learning rate 1e-2."""

    ce_weight, dice_weight, learning_rate = 0.3, 0.7, 1e-2


class Probe_baseline(Probe, nnUNetTrainer):
    pass


class Probe_default(Probe, PaperLoss, nnUNetTrainerMSFEN):
    network_kwargs = dict(zero_init_residual=True)  # the identity start these probes were run with


class Probe_no_dropout(Probe_default):
    bottleneck_dropout = 0.0


class Probe_no_stem(Probe_default):
    network_kwargs = dict(modality_stem=False, zero_init_residual=True)


class Probe_no_zero_init(Probe_default):
    # As run for docs/history_0.1.0.md this class re-applied He to the convolutions only, which left the branch
    # norms at zero: that row measured a re-draw of the convolutions, not the zero-init (docs/ablation.md 6.2).
    network_kwargs = dict(zero_init_residual=False)


class Probe_fuse3(Probe_default):
    network_kwargs = dict(decoder_fuse_kernel_size=None, zero_init_residual=True)


class Probe_loss2(Probe_default):
    ce_weight, dice_weight = 0.6, 1.4


class Probe_loss11(Probe_default):
    ce_weight, dice_weight = 1.0, 1.0


class Probe_loss4(Probe_default):
    ce_weight, dice_weight = 1.2, 2.8


class Probe_lr4(Probe_default):
    learning_rate = 4e-2
