"""nnUNetTrainerMSFEN and its variants, in process, on the plans nnU-Net made for the tiny phantom dataset."""
import json
import math

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_msfen import MSFENUNet, nnUNetTrainerMSFEN
from nnunet_msfen.training import (nnUNetTrainerMSFEN_Adam, nnUNetTrainerMSFEN_EarlyStopping,
                                   nnUNetTrainerMSFEN_TimeBudget)
from nnunet_msfen.training.lr_schedulers import WarmupCosineLRScheduler
from nnunet_msfen.training.stopping import StopTraining
from nnunet_msfen.training.time_budget import BUDGET_VARIABLE, training_minutes_from_environment


@pytest.fixture
def setting(tiny_dataset, monkeypatch):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(k, tiny_dataset.env[k])
    folder = tiny_dataset.preprocessed / tiny_dataset.dataset_name
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((folder / "dataset.json").read_text())
    return plans, dataset_json


def make_trainer(cls, plans, dataset_json, configuration="3d_fullres"):
    return cls(plans=dict(plans, continue_training=False), configuration=configuration, fold=0,
               dataset_json=dataset_json, device=torch.device("cpu"))


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_builds_msfen_from_nnunets_default_plans(setting, configuration):
    plans, _ = setting
    manager = PlansManager(plans)
    config = manager.get_configuration(configuration)
    assert config.network_arch_class_name.endswith("PlainConvUNet")
    net = nnUNetTrainerMSFEN.build_network_architecture(manager, config, 4, 3, enable_deep_supervision=True)
    assert isinstance(net, MSFENUNet)
    assert len(net.encoder.stages) == config.network_arch_init_kwargs["n_stages"]
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    assert [d.p for d in dropouts] == [nnUNetTrainerMSFEN.bottleneck_dropout] == [0.5]
    patch = config.patch_size
    with torch.no_grad():
        out = net(torch.randn(1, 4, *patch))
    assert out[0].shape == (1, 3, *patch)


def test_variants_change_the_network_through_class_attributes(setting):
    plans, _ = setting
    manager = PlansManager(plans)

    class NoSPP(nnUNetTrainerMSFEN):
        bottleneck_dropout = 0.2
        network_kwargs = {"spp": False, "spatial_attention": False}

    net = NoSPP.build_network_architecture(manager, manager.get_configuration("3d_fullres"), 4, 3)
    assert len(net.encoder.bottleneck) == 1 and net.encoder.bottleneck[0].p == 0.2
    assert not any(type(m).__name__ == "SpatialAttn" for m in net.modules())


@pytest.mark.parametrize("bad", [0.0, -1e-2])
def test_refuses_a_learning_rate_that_is_not_positive(setting, bad):
    plans, dataset_json = setting

    class BadLR(nnUNetTrainerMSFEN):
        learning_rate = bad

    with pytest.raises(ValueError, match=f"learning_rate must be > 0, got {bad}"):
        make_trainer(BadLR, plans, dataset_json)


def _plans_with(plans: dict, network_class_name: str, **arch_changes) -> dict:
    plans = json.loads(json.dumps(plans))
    for config in ("2d", "3d_fullres"):
        arch = plans["configurations"][config]["architecture"]
        arch["network_class_name"] = network_class_name
        arch["arch_kwargs"].update(arch_changes.get(config, {}))
    return plans


def test_refuses_plans_of_another_architecture_briefly_and_leaves_nothing_behind(setting, tmp_path, monkeypatch):
    plans, dataset_json = setting
    plans = _plans_with(plans, "dynamic_network_architectures.architectures.primus.Primus")
    manager = PlansManager(plans)
    with pytest.raises(RuntimeError) as error:
        nnUNetTrainerMSFEN.build_network_architecture(manager, manager.get_configuration("3d_fullres"), 4, 3)
    message = str(error.value)
    assert "'3d_fullres'" in message and "Primus" in message and "nnUNetResEncUNetMPlans" in message
    assert len(message) < 400 and "{" not in message  # the configuration by name, not its dict
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    with pytest.raises(RuntimeError, match="'3d_fullres'"):
        make_trainer(nnUNetTrainerMSFEN, plans, dataset_json)
    assert not any(tmp_path.iterdir())  # no empty results folder left behind


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_builds_msfen_from_residual_encoder_plans(setting, configuration):
    from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock

    plans, _ = setting
    n = plans["configurations"][configuration]["architecture"]["arch_kwargs"]["n_stages"]
    blocks = [1, 3, 4, 6, 6, 6, 6][:n]
    resenc = {"n_blocks_per_stage": blocks, "n_conv_per_stage_decoder": [1] * (n - 1)}
    plans = _plans_with(plans, "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                        **{configuration: resenc})
    for key in ("n_conv_per_stage",):
        plans["configurations"][configuration]["architecture"]["arch_kwargs"].pop(key)
    manager = PlansManager(plans)
    config = manager.get_configuration(configuration)
    net = nnUNetTrainerMSFEN.build_network_architecture(manager, config, 4, 3, enable_deep_supervision=True)
    units = [sum(isinstance(m, MultiScaleResidualBlock) for m in stage) for stage in net.encoder.stages]
    assert units == blocks  # a residual block of ResEnc becomes a multi-scale residual unit
    with torch.no_grad():
        out = net(torch.randn(1, 4, *config.patch_size))
    assert out[0].shape == (1, 3, *config.patch_size)


def _loss_parts(loss_cls, dataset_regions: bool):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 8)
    if dataset_regions:
        target = (torch.rand(2, 3, 8, 8, 8) > 0.7).float()
    else:
        target = torch.randint(0, 3, (2, 1, 8, 8, 8)).float()
    return logits, target


def test_region_loss_is_point3_bce_plus_point7_dice(setting):
    plans, dataset_json = setting
    assert "regions_class_order" in dataset_json  # the converter writes BraTS as regions
    trainer = make_trainer(nnUNetTrainerMSFEN, plans, dataset_json)
    loss = trainer._build_loss()
    assert isinstance(loss, DeepSupervisionWrapper) and isinstance(loss.loss, DC_and_BCE_loss)
    compound = loss.loss
    assert (compound.weight_ce, compound.weight_dice) == (0.3, 0.7)
    logits, target = _loss_parts(DC_and_BCE_loss, True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    dice = compound.dc(logits, target)
    assert torch.allclose(compound(logits, target), 0.3 * bce + 0.7 * dice, atol=1e-6)


def test_label_loss_is_point3_ce_plus_point7_dice(setting):
    plans, dataset_json = setting
    labels_only = dict(dataset_json, labels={"background": 0, "edema": 1, "core": 2, "enhancing": 3})
    labels_only.pop("regions_class_order")
    trainer = make_trainer(nnUNetTrainerMSFEN, plans, labels_only)
    loss = trainer._build_loss()
    assert isinstance(loss.loss, DC_and_CE_loss)
    assert (loss.loss.weight_ce, loss.loss.weight_dice) == (0.3, 0.7)
    # nnU-Net's own default weighs 1:1 -- proves we changed something that was there
    baseline = make_trainer(nnUNetTrainer, plans, labels_only)._build_loss()
    assert (baseline.loss.weight_ce, baseline.loss.weight_dice) == (1, 1)


def test_ignore_label_is_kept_with_the_msfen_weights(setting):
    plans, dataset_json = setting
    with_ignore = dict(dataset_json, labels={"background": 0, "edema": 1, "core": 2, "enhancing": 3, "ignore": 4})
    with_ignore.pop("regions_class_order")
    trainer = make_trainer(nnUNetTrainerMSFEN, plans, with_ignore)
    assert trainer.label_manager.ignore_label == 4
    loss = trainer._build_loss().loss
    assert loss.ignore_label == 4 and (loss.weight_ce, loss.weight_dice) == (0.3, 0.7)
    logits = torch.randn(1, 4, 6, 6, 6)
    target = torch.randint(0, 4, (1, 1, 6, 6, 6)).float()
    masked = target.clone()
    masked[..., :3] = 4  # half the voxels carry the ignore label
    changed = logits.clone()
    changed[..., :3] += 100  # whatever the network says where the label is "ignore"
    assert torch.allclose(loss(logits, masked), loss(changed, masked), atol=1e-5)


def test_optimizer_is_nnunets_sgd_and_adam_variant_uses_warmup_cosine(setting):
    plans, dataset_json = setting
    trainer = make_trainer(nnUNetTrainerMSFEN, plans, dataset_json)
    trainer.initialize()
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert trainer.optimizer.defaults["momentum"] == 0.99 and trainer.optimizer.defaults["nesterov"]
    # MSFEN's own initial learning rate; nnU-Net's poly schedule anneals it
    assert trainer.initial_lr == nnUNetTrainerMSFEN.learning_rate == 4e-2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(4e-2)
    trainer.lr_scheduler.step(trainer.num_epochs // 2)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(4e-2 * 0.5 ** 0.9, rel=1e-2)
    assert make_trainer(nnUNetTrainer, plans, dataset_json).initial_lr == 1e-2  # nnU-Net's, for contrast
    adam = make_trainer(nnUNetTrainerMSFEN_Adam, plans, dataset_json)
    adam.num_epochs = 100
    adam.initialize()
    assert isinstance(adam.optimizer, torch.optim.Adam) and adam.initial_lr == 1e-3
    sched = adam.lr_scheduler
    assert isinstance(sched, WarmupCosineLRScheduler) and sched.warmup_steps == 5
    lrs = [sched.lr_at(e) for e in range(100)]
    assert lrs[0] == pytest.approx(1e-3 / 5) and max(lrs) == pytest.approx(1e-3) and lrs[4] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:5], lrs[1:5])) and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] < 1e-5
    sched.step(50)
    assert adam.optimizer.param_groups[0]["lr"] == pytest.approx(lrs[50])


@pytest.mark.parametrize("kwargs, bad", [(dict(max_steps=0, warmup_steps=0), "max_steps=0"),
                                         (dict(max_steps=10, warmup_steps=10), "warmup_steps=10"),
                                         (dict(max_steps=10, warmup_steps=1, min_lr=-1), "min_lr=-1")])
def test_warmup_cosine_rejects_bad_arguments(kwargs, bad):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1)
    with pytest.raises(ValueError, match=bad):
        WarmupCosineLRScheduler(opt, 1.0, **kwargs)


def test_early_stopping_counts_epochs_since_best_ema_and_stops(setting, monkeypatch):
    plans, dataset_json = setting
    trainer = make_trainer(nnUNetTrainerMSFEN_EarlyStopping, plans, dataset_json)
    trainer.patience = 3
    trainer.num_epochs = 100
    monkeypatch.setattr(nnUNetTrainer, "on_epoch_end", lambda self: setattr(self, "current_epoch", self.current_epoch + 1))
    stopped_at = None
    for epoch, dice in enumerate([0.2, 0.5, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]):
        trainer.logger.log("mean_fg_dice", dice, epoch)  # the logger derives the EMA from it
        try:
            trainer.on_epoch_end()
        except StopTraining:
            stopped_at = epoch
            break
    ema = trainer.logger.get_value("ema_fg_dice", step=None)
    assert stopped_at is not None and trainer.epochs_since_best() == 3
    assert int(np.argmax(ema)) == stopped_at - 3


def test_ending_early_still_runs_on_train_end(setting, monkeypatch):
    plans, dataset_json = setting
    trainer = make_trainer(nnUNetTrainerMSFEN_EarlyStopping, plans, dataset_json)
    calls = []

    def loop(self):
        raise StopTraining()

    monkeypatch.setattr(nnUNetTrainer, "run_training", loop)
    monkeypatch.setattr(nnUNetTrainer, "on_train_end", lambda self: calls.append("on_train_end"))
    trainer.run_training()
    assert calls == ["on_train_end"]


def _readers():
    from nnunet_msfen.training.fixed_iterations import ITERATIONS_VARIABLE, training_iterations_from_environment

    return [(BUDGET_VARIABLE, training_minutes_from_environment, "2.5", 2.5, "-3"),
            (ITERATIONS_VARIABLE, training_iterations_from_environment, "60", 60, "2.5")]


@pytest.mark.parametrize("reader", [0, 1])
@pytest.mark.parametrize("value", [None, "ten", "0", "bad"])
def test_budgets_read_from_the_environment_name_a_bad_value(monkeypatch, reader, value):
    variable, read, good, parsed, bad = _readers()[reader]
    value = bad if value == "bad" else value
    if value is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match="not set" if value is None else repr(value)):
        read()
    monkeypatch.setenv(variable, good)
    assert read() == parsed


def test_time_budget_resizes_the_schedule_to_the_measured_epoch_time(setting, monkeypatch):
    plans, dataset_json = setting
    monkeypatch.setenv(BUDGET_VARIABLE, "1")  # 60 s
    trainer = make_trainer(nnUNetTrainerMSFEN_TimeBudget, plans, dataset_json)
    trainer.initialize()
    assert trainer.num_iterations_per_epoch == 25 and trainer.save_every == 1
    monkeypatch.setattr(nnUNetTrainer, "on_epoch_end", lambda self: setattr(self, "current_epoch", self.current_epoch + 1))
    for epoch in range(2):  # every epoch "takes" 20 s: 3 fit the budget
        trainer.logger.log("epoch_start_timestamps", 100.0 + 20 * epoch, epoch)
        trainer.logger.log("epoch_end_timestamps", 120.0 + 20 * epoch, epoch)
        trainer.on_epoch_end()  # never stops by itself: the budget is checked per iteration
    assert trainer.current_epoch == 2 and trainer.num_epochs == 3 and trainer.lr_scheduler.max_steps == 3


@pytest.mark.parametrize("iterations_before_stop", [0, 3])
def test_time_budget_stops_within_an_epoch(setting, monkeypatch, iterations_before_stop):
    from nnunet_msfen.training import time_budget

    plans, dataset_json = setting
    monkeypatch.setenv(BUDGET_VARIABLE, "1")  # 60 s
    trainer = make_trainer(nnUNetTrainerMSFEN_TimeBudget, plans, dataset_json)
    trainer.initialize()
    steps = []
    monkeypatch.setattr(nnUNetTrainer, "train_step", lambda self, batch: steps.append(batch) or {"loss": 0.0})
    clock = [0.0]
    monkeypatch.setattr(time_budget, "time", lambda: clock[0])
    for epoch in range(2):  # two whole epochs of 20 s
        trainer.logger.log("epoch_start_timestamps", 20.0 * epoch, epoch)
        trainer.logger.log("epoch_end_timestamps", 20.0 * epoch + 20, epoch)
    trainer.current_epoch, trainer.iterations_this_epoch = 2, 0
    trainer.logger.log("epoch_start_timestamps", 100.0, 2)  # the running epoch started at t = 100
    for i in range(iterations_before_stop):  # 40 s logged + up to 12 s of this epoch: within the budget
        clock[0] = 100.0 + 6 * i
        trainer.train_step(i)
    clock[0] = 120.0  # 40 + 20 s = the budget: the next iteration must not run
    with pytest.raises(StopTraining):
        trainer.train_step("late")
    assert steps == list(range(iterations_before_stop))
    assert trainer.logger.get_value("epoch_end_timestamps", step=None)[-1] == 120.0
    assert trainer.iterations_trained() == 50 + iterations_before_stop
    assert trainer.budget_summary()["seconds"] == pytest.approx(60.0)
    # an epoch that trained counts as done in the final checkpoint; one cut off before its first iteration not
    assert trainer.current_epoch == (3 if iterations_before_stop else 2)


@pytest.mark.parametrize("pair", [("nnUNetTrainer_Short", "nnUNetTrainerMSFEN_Short"),
                                  ("nnUNetTrainer_Smoke", "nnUNetTrainerMSFEN_Smoke")])
def test_paired_short_schedules_share_the_schedule(setting, pair):
    import nnunet_msfen.training as training

    plans, dataset_json = setting
    base, msfen = (make_trainer(getattr(training, name), plans, dataset_json) for name in pair)
    schedule = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch", "save_every",
                "weight_decay")
    assert [getattr(base, a) for a in schedule] == [getattr(msfen, a) for a in schedule]
    # the learning rate is each trainer's own (MSFEN's 4e-2, nnU-Net's 1e-2), as in the full-length trainers
    assert (base.initial_lr, msfen.initial_lr) == (1e-2, nnUNetTrainerMSFEN.learning_rate)
    assert isinstance(msfen, nnUNetTrainerMSFEN) and not isinstance(base, nnUNetTrainerMSFEN)
    assert set(pair) <= set(training.__all__)


@pytest.mark.parametrize("name, expected", [
    ("nnUNetTrainerMSFEN_Smoke", (2, 2, 1, 1)), ("nnUNetTrainer_Smoke", (2, 2, 1, 1)),
    ("nnUNetTrainerMSFEN_Short", (8, 25, 5, 4)), ("nnUNetTrainer_Short", (8, 25, 5, 4)),
    ("nnUNetTrainerMSFEN_5epochs", (5, 250, 50, 50)), ("nnUNetTrainerMSFEN_50epochs", (50, 250, 50, 50))])
def test_short_schedules_set_nnunets_attributes(setting, name, expected):
    import nnunet_msfen.training as training

    plans, dataset_json = setting
    trainer = make_trainer(getattr(training, name), plans, dataset_json)
    # epochs, iterations, validation iterations, checkpoint interval; nnU-Net's 250/50/50 where a schedule says None
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch,
            trainer.save_every) == expected


@pytest.mark.parametrize("attribute, meant", [("num_epochs", "epochs"), ("epoch", "epochs"),
                                              ("save_every", "checkpoint_every"),
                                              ("val_iteration_per_epoch", "val_iterations_per_epoch"),
                                              ("schedule", "one class attribute per value")])
def test_short_schedule_refuses_a_misnamed_attribute_when_the_class_is_made(attribute, meant):
    from nnunet_msfen.training.short_schedules import ShortSchedule

    expected = rf"Typo\.{attribute} is not a schedule attribute \(did you mean {meant}\?\)"
    with pytest.raises(ValueError, match=expected):
        type("Typo", (ShortSchedule,), {attribute: 3})
    ok = type("Fine", (ShortSchedule,), {"epochs": 3, "stop_after_epochs": 2, "learning_rate": 1e-2})
    assert ok.epochs == 3


@pytest.mark.parametrize("name", ["nnUNetTrainer_Iterations", "nnUNetTrainerMSFEN_Iterations",
                                  "nnUNetTrainerMSFEN_v1_Iterations", "nnUNetTrainer_ModalityDropout_Iterations",
                                  "nnUNetTrainerMSFEN_PlannedDownsampling_Iterations",
                                  "nnUNetTrainerMSFEN_ModalityDropout_Iterations"])
def test_fixed_iterations_train_exactly_n_iterations(setting, monkeypatch, name):
    import nnunet_msfen.training as training
    from nnunet_msfen.training.fixed_iterations import ITERATIONS_VARIABLE

    plans, dataset_json = setting
    monkeypatch.setenv(ITERATIONS_VARIABLE, "60")
    trainer = make_trainer(getattr(training, name), plans, dataset_json)
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.save_every) == (3, 25, 1)
    steps = []
    monkeypatch.setattr(nnUNetTrainer, "train_step", lambda self, batch: steps.append(batch["i"]) or {"loss": 0.0})
    batch = lambda i: {"i": i, "data": torch.zeros(1, 4, 2, 2)}  # noqa: E731 (dropout variants read the data)
    trainer.current_epoch = 2  # two whole epochs of 25 done; the third is cut after 10
    trainer.on_epoch_start = lambda: None
    trainer.iterations_this_epoch = 0
    trainer.logger.log("epoch_start_timestamps", 100.0, 2)
    for i in range(10):
        trainer.train_step(batch(i))
    with pytest.raises(StopTraining):
        trainer.train_step(batch("one too many"))
    assert steps == list(range(10)) and trainer.iterations_trained() == 60 and trainer.current_epoch == 3
    assert name in training.__all__


def test_fixed_iterations_count_a_finished_epoch_once(setting, monkeypatch):
    # a run of whole epochs ends after on_epoch_end of the last one: 2 epochs of 25 are 50 iterations, not 75
    from nnunet_msfen.training import nnUNetTrainerMSFEN_Iterations
    from nnunet_msfen.training.fixed_iterations import ITERATIONS_VARIABLE

    plans, dataset_json = setting
    monkeypatch.setenv(ITERATIONS_VARIABLE, "50")
    trainer = make_trainer(nnUNetTrainerMSFEN_Iterations, plans, dataset_json)
    monkeypatch.setattr(nnUNetTrainer, "train_step", lambda self, batch: {"loss": 0.0})
    monkeypatch.setattr(nnUNetTrainer, "on_epoch_start", lambda self: None)
    monkeypatch.setattr(nnUNetTrainer, "on_epoch_end", lambda self: setattr(self, "current_epoch", self.current_epoch + 1))
    for _ in range(2):
        trainer.on_epoch_start()
        for i in range(25):
            trainer.train_step(i)
        trainer.on_epoch_end()
    assert trainer.iterations_trained() == 50


def test_v1_trainer_builds_the_010_network(setting):
    from nnunet_msfen.blocks.skip_fusion import SkipFusion
    from nnunet_msfen.training import nnUNetTrainerMSFEN_v1

    plans, _ = setting
    manager = PlansManager(plans)
    config = manager.get_configuration("3d_fullres")
    v1 = nnUNetTrainerMSFEN_v1.build_network_architecture(manager, config, 4, 3, enable_deep_supervision=True)
    now = nnUNetTrainerMSFEN.build_network_architecture(manager, config, 4, 3, enable_deep_supervision=True)
    from nnunet_msfen.blocks.scale_branches import HierarchicalBranches

    branch_convs = lambda net: [c for m in net.modules() if isinstance(m, HierarchicalBranches) for c in m.convs]  # noqa
    assert all(c.groups == c.in_channels for c in branch_convs(v1))  # depthwise
    assert all(c.groups < c.in_channels or c.in_channels <= 16 for c in branch_convs(now))
    assert {m.mode for m in v1.modules() if isinstance(m, SkipFusion)} == {"concat"}
    assert {m.mode for m in now.modules() if isinstance(m, SkipFusion)} == {"add"}
    assert all(m.recompute == "none" for m in v1.modules() if hasattr(m, "recompute"))
    with pytest.raises(TypeError):
        nnUNetTrainerMSFEN.network_kwargs["spp"] = False  # read-only: variants assign their own mapping


def test_planned_downsampling_trainer_builds_the_former_default_and_loads_its_checkpoints(setting):
    # checkpoints trained before kernel = stride became the default load with this trainer, not with the default
    from nnunet_msfen.training import nnUNetTrainerMSFEN_PlannedDownsampling, nnUNetTrainerMSFEN_v1

    plans, _ = setting
    manager = PlansManager(plans)
    config = manager.get_configuration("3d_fullres")
    build = lambda cls: cls.build_network_architecture(manager, config, 4, 3, enable_deep_supervision=True)  # noqa
    former, now = build(nnUNetTrainerMSFEN_PlannedDownsampling), build(nnUNetTrainerMSFEN)
    v1 = build(nnUNetTrainerMSFEN_v1)
    strides = [list(s) for s in config.network_arch_init_kwargs["strides"]]
    planned = [list(k) for k in config.network_arch_init_kwargs["kernel_sizes"]]
    kernels = lambda net: [list(stage[0].conv.kernel_size) for stage in net.encoder.stages[1:]]  # noqa: E731
    assert kernels(former) == kernels(v1) == planned[1:]
    assert kernels(now) == strides[1:] != planned[1:]
    checkpoint = former.state_dict()
    build(nnUNetTrainerMSFEN_PlannedDownsampling).load_state_dict(checkpoint)  # strict
    with pytest.raises(RuntimeError, match="size mismatch"):
        now.load_state_dict(checkpoint)
