"""The study trainers of docs/ablation.md section 6 change exactly one thing each against MSFEN's default."""
from nnunet_msfen.experiments.studies import per_iteration_study as study
from nnunet_msfen.training.fixed_iterations import FixedIterations, nnUNetTrainerMSFEN_Iterations
from nnunet_msfen.training.nnUNetTrainerMSFEN import nnUNetTrainerMSFEN

CHANGES = {
    "Study_MSFEN_lr2_Iterations": {"learning_rate": 2e-2},
    "Study_MSFEN_fuse3_Iterations": {"network_kwargs": {"decoder_fuse_kernel_size": None}},
    "Study_MSFEN_drop0_Iterations": {"bottleneck_dropout": 0.0},
    "Study_MSFEN_init1_Iterations": {"network_kwargs": {"zero_init_residual": False}},
    "Study_MSFEN_fuse3gw16_Iterations": {"network_kwargs": {"decoder_fuse_kernel_size": None,
                                                            "decoder_fuse_group_width": 16}},
}
KNOBS = ("learning_rate", "bottleneck_dropout", "ce_weight", "dice_weight", "network_kwargs")


def test_each_study_trainer_changes_one_knob_of_the_default():
    default = nnUNetTrainerMSFEN_Iterations
    for name, change in CHANGES.items():
        cls = getattr(study, name)
        assert issubclass(cls, FixedIterations) and issubclass(cls, nnUNetTrainerMSFEN)
        differing = {k: getattr(cls, k) for k in KNOBS if getattr(cls, k) != getattr(default, k)}
        assert {k: dict(v) if k == "network_kwargs" else v for k, v in differing.items()} == change, name
