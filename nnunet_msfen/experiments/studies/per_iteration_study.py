"""Candidate fixes for MSFEN's per-iteration accuracy gap (issue 12, docs/ablation.md section 6); a study, no
command of the package uses these trainers.

At 250 iterations MSFEN fitted its training cases less than nnU-Net's U-Net (pseudo-Dice 0.73-0.80 against
0.82-0.89) although it was ahead on WT and TC (not ET) after 25 iterations: it plateaued from iteration ~150 while
the U-Net kept improving. Three suspects, each a small subclass of the fixed-iteration trainer:

- the step size: MSFEN's 4e-2 on a loss whose weights sum to 1 is twice nnU-Net's effective step (1e-2 on CE + Dice,
  weights summing to 2). ``lr2`` halves it to nnU-Net's effective step.
- the decoder's capacity: a 1x1 skip fusion leaves each decoder stage one grouped multi-scale unit as its only
  spatial operation, where nnU-Net's decoder has two dense convolutions. ``fuse3`` uses the planned kernel.
- the bottleneck dropout (0.5, channel-wise): ``drop0`` removes it.

Then two follow-ups of what ``fuse3`` found (stop 21):

- ``init1``: the residual units start with their branch norm at one instead of zero (no identity start), so the
  decoder's units do spatial work from the first iteration; no cost in time. It closed the gap to nnU-Net's U-Net
  (docs/ablation.md section 6.2) and is MSFEN's default since.
- ``fuse3gw16``: ``fuse3``'s 3x3 fusion in groups of 16 channels (benchmark variant ``msfen-fuse3-gw16``), a
  fraction of its time.

And a candidate for issue 12's 2d targets (stop 25): ``downstride``, every strided convolution with its stride as
kernel (2x2 patches): 0.29x PlainConvUNet's parameters in 2d where the default had 0.39x, and 17% fewer training
FLOPs per patch (15.7 -> 13.0 GFLOP). Timed in docs/ablation.md section 13, trained on all four splits in sections
14 and 19-20, and the default since 2026-12-02 (benchmark variant ``msfen-down-planned`` is the former default).

Run through ``benchmark-accuracy`` with this folder first in ``nnUNet_extTrainer`` (names are passed through):

    export nnUNet_extTrainer=$PWD/nnunet_msfen/experiments/studies
    nnunet-msfen benchmark-accuracy --train split_A/train --test split_A/test --config 2d --iterations 250 \
        --batch-size 12 --disable-tta --workdir it_A -tr nnUNetTrainer Study_MSFEN_lr2_Iterations ...

Result of the first three (docs/ablation.md section 6.1): ``lr2`` fits worse, ``drop0`` changes nothing at 250
iterations, ``fuse3`` closes about a third of the gap to nnU-Net's U-Net at a cost that breaks the 3D speed targets.
"""
from nnunet_msfen.benchmark.networks import VARIANTS
from nnunet_msfen.training.fixed_iterations import FixedIterations
from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN

# the default these studies were measured against (stop 20): residual units that start as identities, and the
# planned downsampling kernel (the default until 2026-12-02), so that they still build the network they measured
STOP20_NETWORK = {"zero_init_residual": True, "downsample_kernel": "planned"}


class Study_MSFEN_lr2_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """nnU-Net's effective step: 2e-2 on 0.3 CE + 0.7 Dice."""

    learning_rate = 2e-2
    network_kwargs = STOP20_NETWORK


class Study_MSFEN_fuse3_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """MSFEN's step (4e-2) and the planned kernel (3x3) in the decoder's skip fusion."""

    network_kwargs = {**STOP20_NETWORK, **VARIANTS["msfen-fuse3"].extra}  # the network timed as msfen-fuse3


class Study_MSFEN_drop0_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """MSFEN without the bottleneck dropout (the paper's 0.5), to see whether it is what stops the fit."""

    bottleneck_dropout = 0.0
    network_kwargs = STOP20_NETWORK


class Study_MSFEN_init1_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """Residual units start with their branch norm at one (``zero_init_residual=False``)."""

    network_kwargs = {"zero_init_residual": False, "downsample_kernel": "planned"}


class Study_MSFEN_fuse3gw16_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """The decoder's skip fusion 3x3 in groups of 16 channels."""

    network_kwargs = {**STOP20_NETWORK, **VARIANTS["msfen-fuse3-gw16"].extra}


class Study_MSFEN_downstride_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """The default of 2026-12-01 with kernel = stride in every downsampling convolution: the default since
    2026-12-02 (docs/ablation.md section 20), the same network as ``nnUNetTrainerMSFEN_Iterations`` builds now."""

    network_kwargs = {"downsample_kernel": "stride"}


class Study_MSFEN_lightdecoder_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """Today's default with decoder stages that are their skip fusion alone (3x3 in groups of 16 channels, no
    multi-scale units): it meets the 2d prediction target and was 0.055 mean Dice behind over 12 cases, rejected
    as a default (docs/ablation.md section 22)."""
    network_kwargs = dict(VARIANTS["msfen-light-decoder"].extra)


class Study_MSFEN_max256_Iterations(FixedIterations, nnUNetTrainerMSFEN):
    """Today's default with no stage wider than 256 features (the 2d topology's deepest stages have 512): 2d
    prediction 0.40x of PlainConvUNet's, 0.012 mean Dice behind the default over 12 cases, not adopted
    (docs/ablation.md section 25)."""
    network_kwargs = dict(VARIANTS["msfen-max256"].extra)
