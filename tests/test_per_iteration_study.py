"""The study trainers of docs/ablation.md section 6 change exactly one thing each against the default they were
measured against (stop 20's: residual units that start as identities, the planned downsampling kernel)."""
from nnunet_msfen.experiments.studies import per_iteration_study as study
from nnunet_msfen.training.fixed_iterations import FixedIterations, nnUNetTrainerMSFEN_Iterations
from nnunet_msfen.network.msfen_unet import MSFENUNet
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
    baseline = {k: getattr(nnUNetTrainerMSFEN_Iterations, k) for k in KNOBS}
    baseline["network_kwargs"] = {"zero_init_residual": True, "downsample_kernel": "planned"}
    for name, change in CHANGES.items():
        cls = getattr(study, name)
        assert issubclass(cls, FixedIterations) and issubclass(cls, nnUNetTrainerMSFEN)
        knobs = {k: dict(getattr(cls, k)) if k == "network_kwargs" else getattr(cls, k) for k in KNOBS}
        knobs["network_kwargs"] = {**baseline["network_kwargs"], **knobs["network_kwargs"]}
        differing = {k: v for k, v in knobs.items() if v != baseline[k]}
        if "network_kwargs" in differing:  # only the changed entries
            differing["network_kwargs"] = {k: v for k, v in differing["network_kwargs"].items()
                                           if baseline["network_kwargs"].get(k, "absent") != v}
        assert differing == change, name


def test_init1_is_todays_default():
    assert not MSFENUNet.__init__.__kwdefaults__["zero_init_residual"]


def test_downstride_is_todays_default_network():
    cls = study.Study_MSFEN_downstride_Iterations
    assert issubclass(cls, FixedIterations) and issubclass(cls, nnUNetTrainerMSFEN)
    assert dict(cls.network_kwargs) == {"downsample_kernel": "stride"}
    assert MSFENUNet.__init__.__kwdefaults__["downsample_kernel"] == "stride"
    for knob in KNOBS[:-1]:
        assert getattr(cls, knob) == getattr(nnUNetTrainerMSFEN_Iterations, knob), knob


def test_max256_is_todays_default_with_stages_capped_at_256_features():
    cls = study.Study_MSFEN_max256_Iterations
    assert issubclass(cls, FixedIterations) and issubclass(cls, nnUNetTrainerMSFEN)
    assert dict(cls.network_kwargs) == {"max_features": 256} and MSFENUNet.__init__.__kwdefaults__["max_features"] is None
    for knob in KNOBS[:-1]:
        assert getattr(cls, knob) == getattr(nnUNetTrainerMSFEN_Iterations, knob), knob


def test_lightdecoder_is_todays_default_without_decoder_units():
    cls = study.Study_MSFEN_lightdecoder_Iterations
    assert issubclass(cls, FixedIterations) and issubclass(cls, nnUNetTrainerMSFEN)
    assert dict(cls.network_kwargs) == {"decoder_units": False, "decoder_fuse_kernel_size": None,
                                        "decoder_fuse_group_width": 16}
    for knob in KNOBS[:-1]:
        assert getattr(cls, knob) == getattr(nnUNetTrainerMSFEN_Iterations, knob), knob
