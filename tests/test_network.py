"""MSFENUNet: PlainConvUNet's interface, nnU-Net's get_network_from_plans, deep supervision, parameter budget."""
import inspect

import numpy as np
import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

from nnunet_msfen import MSFENUNet
from nnunet_msfen.benchmark.networks import brats_arch as benchmark_arch
from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
from nnunet_msfen.blocks.multiscale import MultiScaleConv
from nnunet_msfen.blocks.spp import SpatialPyramidPooling

MSFEN_PATH = "nnunet_msfen.network.msfen_unet.MSFENUNet"


def brats_arch(dim: int) -> dict:
    """The architecture nnU-Net plans for BraTS (4 inputs, 3 regions): 6 stages 3D (32..320), 7 stages 2D (32..512);
    the one definition the benchmark and the planner calibration use too."""
    return benchmark_arch("3d_fullres" if dim == 3 else "2d")


REQ_IMPORT = ("conv_op", "norm_op", "dropout_op", "nonlin")


def build(class_path: str, dim: int, deep_supervision=True, **extra):
    return get_network_from_plans(class_path, {**brats_arch(dim), **extra}, REQ_IMPORT, 4, 3, allow_init=True,
                                  deep_supervision=deep_supervision)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_constructor_accepts_every_plainconvunet_argument_under_the_same_name():
    plain = inspect.signature(PlainConvUNet.__init__).parameters
    msfen = inspect.signature(MSFENUNet.__init__).parameters
    assert list(plain)[:len(plain)] == list(msfen)[:len(plain)]
    for name, p in plain.items():
        assert msfen[name].default == p.default, name
    # MSFEN's own options are keyword-only, with defaults
    extras = [p for n, p in msfen.items() if n not in plain]
    assert extras and all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in extras)


def test_parameter_budget_on_the_brats_3d_topology():
    plain, msfen = build("dynamic_network_architectures.architectures.unet.PlainConvUNet", 3), build(MSFEN_PATH, 3)
    assert n_params(plain) == 31_198_991  # the reference count: we build the same topology
    assert n_params(msfen) <= 0.35 * n_params(plain), n_params(msfen)  # issue 12's target


def test_parameter_budget_on_the_brats_2d_topology():
    plain, msfen = build("dynamic_network_architectures.architectures.unet.PlainConvUNet", 2), build(MSFEN_PATH, 2)
    assert n_params(msfen) <= 0.35 * n_params(plain), (n_params(msfen), n_params(plain))  # issue 12's target
    planned = build(MSFEN_PATH, 2, downsample_kernel="planned")  # the former default misses it
    assert n_params(planned) > 0.35 * n_params(plain), (n_params(planned), n_params(plain))


@pytest.mark.parametrize("dim, size", [(2, (128, 128)), (3, (64, 64, 64))])
def test_deep_supervision_outputs_like_plainconvunet(dim, size):
    msfen = build(MSFEN_PATH, dim).eval()
    plain = build("dynamic_network_architectures.architectures.unet.PlainConvUNet", dim).eval()
    x = torch.randn(1, 4, *size)
    with torch.no_grad():
        out, ref = msfen(x), plain(x)
    assert isinstance(out, list) and len(out) == len(ref) == brats_arch(dim)["n_stages"] - 1
    assert [o.shape for o in out] == [r.shape for r in ref]
    assert out[0].shape == (1, 3, *size)  # full resolution first
    msfen.decoder.deep_supervision = False  # how nnU-Net switches it off
    with torch.no_grad():
        single = msfen(x)
    assert torch.is_tensor(single) and single.shape == (1, 3, *size)
    assert torch.allclose(single, out[0], atol=1e-5)


def test_weights_trained_with_deep_supervision_load_without_it():
    with_ds, without = build(MSFEN_PATH, 2, deep_supervision=True), build(MSFEN_PATH, 2, deep_supervision=False)
    without.load_state_dict(with_ds.state_dict())


def test_small_2d_network_trains_and_every_parameter_gets_a_gradient():
    arch = {**brats_arch(2), "n_stages": 3, "features_per_stage": [8, 16, 16], "kernel_sizes": [[3, 3]] * 3,
            "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [2] * 3, "n_conv_per_stage_decoder": [2] * 2}
    net = get_network_from_plans(MSFEN_PATH, arch, REQ_IMPORT, 4, 3, allow_init=True, deep_supervision=True)
    out = net(torch.randn(2, 4, 16, 16))
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("switch", ["multi_scale", "channel_attention", "spatial_attention", "residual", "spp",
                                    "modality_stem", "cross_modal_attention"])
def test_each_ablation_switch_removes_its_part(switch):
    on, off = build(MSFEN_PATH, 3), build(MSFEN_PATH, 3, **{switch: False})
    if switch not in ("residual", "multi_scale", "modality_stem"):
        assert n_params(off) < n_params(on)
    if switch == "modality_stem":
        assert not any(isinstance(m, ModalityAwareStem) for m in off.modules())
    if switch == "residual":
        assert not any(getattr(m, "residual", False) for m in off.modules())
    if switch == "spp":
        assert not any(isinstance(m, SpatialPyramidPooling) for m in off.modules())
    if switch == "multi_scale":
        assert not any(isinstance(m, MultiScaleConv) for m in off.modules())
    x = torch.randn(1, 4, 64, 64, 64)  # 6 stages: the bottleneck is 2^3
    with torch.no_grad():
        assert off(x)[0].shape == (1, 3, 64, 64, 64)


def test_bottleneck_dropout_rate_is_configurable():
    net = build(MSFEN_PATH, 3, bottleneck_dropout=0.3)
    drops = [m for m in net.encoder.bottleneck if isinstance(m, nn.Dropout3d)]
    assert len(drops) == 1 and drops[0].p == 0.3
    assert not any(isinstance(m, nn.Dropout3d) for m in build(MSFEN_PATH, 3, bottleneck_dropout=0).modules())
    with pytest.raises(ValueError, match="1.5"):
        build(MSFEN_PATH, 3, bottleneck_dropout=1.5)


@pytest.mark.parametrize("kwargs, bad", [(dict(n_stages=1), "n_stages=1"), (dict(num_classes=0), "num_classes=0"),
                                         (dict(features_per_stage=[8, 16]), r"\[8, 16\]"),
                                         (dict(branch_mode="serial"), "serial")])
def test_bad_arguments_raise_value_error_naming_the_value(kwargs, bad):
    args = dict(input_channels=4, n_stages=3, features_per_stage=[8, 16, 32], conv_op=nn.Conv3d, kernel_sizes=3,
                strides=[1, 2, 2], n_conv_per_stage=2, num_classes=3, n_conv_per_stage_decoder=2)
    with pytest.raises(ValueError, match=bad):
        MSFENUNet(**{**args, **kwargs})


def test_initialize_is_he_and_starts_branch_norms_at_one_unless_zero_init_residual():
    units = [m for m in build(MSFEN_PATH, 3).modules() if isinstance(m, MultiScaleConv)]
    assert units and all((u.norm.weight == 1).all() for u in units)
    net = build(MSFEN_PATH, 3, zero_init_residual=True)
    units = [m for m in net.modules() if isinstance(m, MultiScaleConv)]
    assert units and all((u.norm.weight == 0).all() for u in units)
    conv = net.encoder.stages[1][0].conv
    fan_in = conv.weight[0].numel()
    # kaiming_normal_ with a=1e-2: std = sqrt(2 / (1 + a^2) / fan_in)
    assert abs(conv.weight.std().item() - np.sqrt(2 / (1 + 1e-4) / fan_in)) < 0.1 * np.sqrt(2 / fan_in)


def test_zero_init_residual_false_starts_branch_norms_at_one_and_changes_nothing_else():
    torch.manual_seed(0)
    zero = build(MSFEN_PATH, 2, zero_init_residual=True)
    torch.manual_seed(0)
    one = build(MSFEN_PATH, 2, zero_init_residual=False)
    branch_norms = {f"{n}.norm.weight" for n, m in one.named_modules(remove_duplicate=False)
                    if isinstance(m, MultiScaleConv)}
    assert branch_norms
    for (name, a), (_, b) in zip(zero.state_dict().items(), one.state_dict().items()):
        if name in branch_norms:
            assert (a == 0).all() and (b == 1).all(), name
        else:
            assert torch.equal(a, b), name


def test_feature_map_size_grows_with_the_patch_and_counts_decoder_and_heads():
    net = build(MSFEN_PATH, 3)
    small, large = net.compute_conv_feature_map_size((32, 32, 32)), net.compute_conv_feature_map_size((64, 64, 64))
    assert isinstance(small, np.int64) and 7.5 * small < large <= 8 * small
    # heads: with deep supervision every decoder stage's head is counted, without only the last
    net.decoder.deep_supervision = False
    heads = sum(3 * (64 // 2 ** s) ** 3 for s in range(1, 5))
    assert net.compute_conv_feature_map_size((64, 64, 64)) == large - heads
    with pytest.raises(ValueError, match=r"\(1, 4, 64, 64, 64\)"):
        net.compute_conv_feature_map_size((1, 4, 64, 64, 64))


def test_feature_map_size_matches_the_sum_of_the_parts_by_hand():
    net = MSFENUNet(4, 2, [8, 16], nn.Conv3d, 3, [1, 2], 2, 3, 2, norm_op=nn.InstanceNorm3d, nonlin=nn.LeakyReLU,
                    deep_supervision=True)
    v0, v1 = 8 ** 3, 4 ** 3
    stem = (2 * 8 + 2 * 8) * v0  # features_per_modality 2 -> 8 maps: conv, norm; fusion + norm (8 each)
    # hierarchical multi-scale (5 quarter-width maps, concat, fusion, norm), spatial attention, skip sum
    unit = lambda c, v: (5 * c // 4 + 3 * c) * v + (c + 3) * v + c * v
    stage1 = 16 * v1 + unit(16, v1)  # strided ConvNormAct: counted once, as dynamic_network_architectures does
    spp = 3 * 5 * v1 + (16 + 15) * v1 + 2 * 16 * v1  # 3 branches of 16 // 3 = 5 maps, concat, fusion, norm
    dropout = 16 * v1
    decoder = 4 * 8 * v0 + unit(8, v0) + 3 * v0  # skip fusion (upsampled, projected, sum, norm), unit, head
    assert net.compute_conv_feature_map_size((8, 8, 8)) == stem + unit(8, v0) + stage1 + spp + dropout + decoder


def _small_msfen(dim: int, n_conv_per_stage_decoder: int, **extra) -> MSFENUNet:
    """A 4-stage MSFEN, 2D or 3D, with seeded initialisation (two builds differ only by ``extra``)."""
    torch.manual_seed(0)
    return MSFENUNet(4, 4, [8, 16, 32, 32], nn.Conv2d if dim == 2 else nn.Conv3d, 3, [1, 2, 2, 2], 2, 3,
                     n_conv_per_stage_decoder, norm_op=nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d,
                     norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU, deep_supervision=True, **extra)


@pytest.mark.parametrize("dim, size", [(2, (64, 64)), (3, (32, 32, 32))])
def test_downsample_kernel_stride_is_the_default_uses_the_stride_as_kernel_and_keeps_every_shape(dim, size):
    build_small = lambda **extra: _small_msfen(dim, 1, **extra)  # noqa: E731

    planned, patches = build_small(downsample_kernel="planned"), build_small()
    firsts = [stage[0] for stage in patches.encoder.stages]
    assert isinstance(firsts[0], ModalityAwareStem)  # stage 0 does not downsample: it keeps its planned kernel
    for first, stride in zip(firsts[1:], patches.encoder.strides[1:]):
        assert list(first.conv.kernel_size) == list(stride) and list(first.conv.padding) == [0] * dim
    assert [list(stage[0].conv.kernel_size) for stage in planned.encoder.stages[1:]] == [[3] * dim] * 3
    x = torch.randn(2, 4, *size)
    outs_planned, outs_patches = planned(x), patches(x)
    assert [o.shape for o in outs_planned] == [o.shape for o in outs_patches]
    assert n_params(patches) < n_params(planned)
    assert n_params(build_small(downsample_kernel="stride")) == n_params(patches)  # the default
    assert patches.compute_conv_feature_map_size(size) == planned.compute_conv_feature_map_size(size)


def test_downsample_kernel_stride_on_an_anisotropic_plan_keeps_kernel_one_where_the_stride_is_one():
    net = MSFENUNet(4, 3, [8, 16, 32], nn.Conv3d, 3, [[1, 1, 1], [1, 2, 2], [2, 2, 2]], 2, 3, 1,
                    downsample_kernel="stride")
    assert [list(stage[0].conv.kernel_size) for stage in net.encoder.stages[1:]] == [[1, 2, 2], [2, 2, 2]]
    assert net(torch.randn(1, 4, 8, 16, 16)).shape == (1, 3, 8, 16, 16)


def test_unknown_downsample_kernel_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'overlap'"):
        MSFENUNet(4, 3, [8, 16, 32], nn.Conv3d, 3, [1, 2, 2], 2, 3, 1, downsample_kernel="overlap")


@pytest.mark.parametrize("dim,size", [(2, (32, 32)), (3, (16, 16, 16))])
def test_decoder_units_false_leaves_each_decoder_stage_its_skip_fusion_alone(dim, size):
    build_small = lambda **extra: _small_msfen(dim, 2, **extra)  # noqa: E731

    full = build_small()
    light = build_small(decoder_units=False, decoder_fuse_kernel_size=None, decoder_fuse_group_width=4)
    assert all(len(stage) == 1 for stage in full.decoder.stages) and all(len(s) == 0 for s in light.decoder.stages)
    assert all(list(f.fuse.kernel_size) == [3] * dim and f.fuse.groups == f.channels // 4 for f in light.decoder.fusions)
    assert [list(s.features.branches.convs[0].kernel_size) for s in (full.encoder.stages[1][1], light.encoder.stages[1][1])] \
        == [[3] * dim] * 2  # the encoder keeps its multi-scale units
    x = torch.randn(2, 4, *size)
    outs = light(x)
    assert [o.shape for o in outs] == [o.shape for o in full(x)]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in light.parameters() if p.requires_grad)
    assert n_params(light) < n_params(full)
    unit_maps = sum(u.compute_conv_feature_map_size(sz) for stage, sz in
                    zip(full.decoder.stages, [[s // 4 for s in size], [s // 2 for s in size], list(size)]) for u in stage)
    fusion_maps = [f.compute_conv_feature_map_size([1] * dim) for f in full.decoder.fusions]
    assert light.decoder.compute_conv_feature_map_size(size) == full.decoder.compute_conv_feature_map_size(size) - unit_maps
    assert fusion_maps == [f.compute_conv_feature_map_size([1] * dim) for f in light.decoder.fusions]


@pytest.mark.parametrize("dim,size", [(2, (32, 32)), (3, (16, 16, 16))])
def test_max_features_caps_the_wide_stages_and_leaves_the_others_as_they_start(dim, size):
    full, capped = _small_msfen(dim, 1), _small_msfen(dim, 1, max_features=16)
    for net in (full, capped):
        net.apply(net.initialize)
    assert full.encoder.features_per_stage == [8, 16, 32, 32] and capped.encoder.features_per_stage == [8, 16, 16, 16]
    assert n_params(capped) < n_params(full)
    # the first stages are the same modules, with the same initial weights (each module is seeded by its name)
    for a, b in zip(full.encoder.stages[:2].parameters(), capped.encoder.stages[:2].parameters()):
        assert torch.equal(a, b)
    x = torch.randn(2, 4, *size)
    outs = capped(x)
    assert [o.shape for o in outs] == [o.shape for o in full(x)]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in capped.parameters() if p.requires_grad)
    assert capped.compute_conv_feature_map_size(size) < full.compute_conv_feature_map_size(size)


def test_max_features_none_is_the_plan_and_below_one_is_a_value_error_naming_it():
    from nnunet_msfen.network.msfen_unet import capped_features

    assert capped_features([32, 512], 2, None) == [32, 512] and capped_features(64, 3, 48) == [48, 48, 48]
    with pytest.raises(ValueError, match="max_features=0"):
        _small_msfen(2, 1, max_features=0)
