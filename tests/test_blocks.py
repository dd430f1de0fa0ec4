"""Every MSFEN block: 2D and 3D, shapes, gradients to every parameter, switches, bad arguments, memory estimate."""
import numpy as np
import pytest
import torch
from torch import nn

from nnunet_msfen.blocks.channel_attention import ChannelAttn, make_divisible
from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
from nnunet_msfen.blocks.multiscale import BRANCH_MODES, MultiScaleConv
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.blocks.spatial_attention import SpatialAttn
from nnunet_msfen.blocks.spp import SpatialPyramidPooling

CONV_OPS = {2: nn.Conv2d, 3: nn.Conv3d}
NORM_OPS = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
NORM = dict(norm_op_kwargs={"eps": 1e-5, "affine": True})
SIZE = {2: (12, 10), 3: (8, 6, 7)}  # odd, non-square sizes catch axis mix-ups


def _input(dim, channels, batch=2):
    torch.manual_seed(0)
    return torch.randn(batch, channels, *SIZE[dim], requires_grad=True)


def _assert_all_parameters_get_gradients(module, out):
    out.float().pow(2).mean().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no (finite) gradient for {missing}"
    zero = [n for n, p in module.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"all-zero gradient for {zero}"


@pytest.mark.parametrize("dim", [2, 3])
def test_channel_attn_gates_each_channel_from_global_context(dim):
    attn = ChannelAttn(16)
    x = _input(dim, 16)
    out = attn(x)
    assert out.shape == x.shape
    ratio = (out / x).detach().flatten(2)
    # one gate per (sample, channel), in (0, 1), constant over every spatial axis: global pooling in 2D and 3D
    assert torch.allclose(ratio, ratio[..., :1].expand_as(ratio), atol=1e-5)
    assert ((ratio > 0) & (ratio < 1)).all()
    _assert_all_parameters_get_gradients(attn, out)
    assert attn.compute_conv_feature_map_size(SIZE[dim]) == 16 * np.prod(SIZE[dim])


def test_make_divisible_follows_timm():
    assert make_divisible(4) == 8 and make_divisible(20) == 24 and make_divisible(33, 8) == 32


@pytest.mark.parametrize("kwargs", [dict(channels=0), dict(channels=8, rd_ratio=0), dict(channels=8, rd_ratio=1.5),
                                    dict(channels=8, rd_divisor=0), dict(channels=8, rd_channels=0)])
def test_channel_attn_rejects_bad_arguments(kwargs):
    bad = {k: v for k, v in kwargs.items() if k != "channels" or v == 0}
    with pytest.raises(ValueError, match=str(list(bad.values())[0])):
        ChannelAttn(**kwargs)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kernel_size", [3, 7])
def test_spatial_attn_gates_each_position(dim, kernel_size):
    attn = SpatialAttn(CONV_OPS[dim], 6, kernel_size)
    x = _input(dim, 6)
    out = attn(x)
    assert out.shape == x.shape
    ratio = (out / x).detach()
    # one gate per (sample, position), shared by all channels
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)
    _assert_all_parameters_get_gradients(attn, out)
    assert attn.compute_conv_feature_map_size(SIZE[dim]) == (6 + 3) * np.prod(SIZE[dim])


@pytest.mark.parametrize("kwargs, bad", [(dict(kernel_size=4), "4"), (dict(kernel_size=0), "0"), (dict(channels=0), "0")])
def test_spatial_attn_rejects_bad_arguments(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        SpatialAttn(nn.Conv3d, **{"channels": 4, **kwargs})


def _receptive_field(module, dim, channels, size=15):
    """Extent, per axis, of the input positions that influence the centre output (all channels summed)."""
    x = torch.zeros(1, channels, *[size] * dim, requires_grad=True)
    out = module(x)
    out[(0, slice(None), *[size // 2] * dim)].sum().backward()
    influence = x.grad.abs().sum(dim=(0, 1)) > 0
    return [int(influence.any(dim=tuple(a for a in range(dim) if a != axis)).sum()) for axis in range(dim)]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mode", BRANCH_MODES)
def test_multiscale_conv_shapes_gradients_and_receptive_field(dim, mode):
    block = MultiScaleConv(CONV_OPS[dim], 8, (3, 5, 7), mode=mode, norm_op=NORM_OPS[dim], **NORM)
    x = _input(dim, 8)
    out = block(x)
    assert out.shape == x.shape
    _assert_all_parameters_get_gradients(block, out)
    # the largest branch reaches 7 positions along every axis, whatever the mode
    block.norm = nn.Identity()  # instance norm would spread the influence over the whole input
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(p.abs() + 0.1)  # no accidental cancellations
    assert _receptive_field(block, dim, 8) == [7] * dim


@pytest.mark.parametrize("mode, channels", [("hierarchical", 32), ("cascade", 8)])
@pytest.mark.parametrize("group_width, expected_groups", [(1, 8), (4, 2), (8, 1), (16, 1)])
def test_multiscale_group_width_sets_groups(mode, channels, group_width, expected_groups):
    # hierarchical mode convolves a quarter of the channels per branch: 32 -> 8, like cascade's 8; a group width
    # above the branch width is a dense convolution
    block = MultiScaleConv(nn.Conv3d, channels, mode=mode, group_width=group_width)
    assert {b.groups for b in block.branches.convs} == {expected_groups}
    assert {b.in_channels for b in block.branches.convs} == {8}


def test_hierarchical_mode_needs_equal_splits():
    with pytest.raises(ValueError, match="channels=10"):
        MultiScaleConv(nn.Conv3d, 10, mode="hierarchical")


def test_multiscale_anisotropic_axes_stay_unconvolved():
    block = MultiScaleConv(nn.Conv3d, 4, active_axes=[False, True, True])
    block.norm = nn.Identity()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(p.abs() + 0.1)
    assert _receptive_field(block, 3, 4) == [1, 7, 7]


def test_multiscale_channel_attention_switch():
    with_attn = MultiScaleConv(nn.Conv3d, 8, channel_attention=True)
    without = MultiScaleConv(nn.Conv3d, 8, channel_attention=False)
    assert isinstance(with_attn.attention, ChannelAttn) and without.attention is None
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(with_attn) - n(without) == sum(p.numel() for p in with_attn.attention.parameters())


@pytest.mark.parametrize("kwargs, bad", [
    (dict(mode="serial"), "serial"), (dict(kernel_sizes=(3, 4)), "4"), (dict(kernel_sizes=(5, 3)), "5, 3"),
    (dict(kernel_sizes=()), r"\(\)"), (dict(mode="cascade", kernel_sizes=(3, 7)), "3, 7"),
    (dict(channels=24, group_width=4), "group_width=4"), (dict(group_width=0), "0"), (dict(channels=0), "0"),
    (dict(active_axes=[False, False, False]), "False"), (dict(active_axes=[True, True]), "True"),
])
def test_multiscale_rejects_bad_arguments(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        MultiScaleConv(nn.Conv3d, **{"channels": 8, **kwargs})


def test_multiscale_feature_map_size_by_hand():
    v = 4 * 5 * 6
    block = MultiScaleConv(nn.Conv3d, 8, (3, 5, 7), mode="cascade", norm_op=nn.InstanceNorm3d)
    # 3 branch outputs + their concatenation (3 * 8 each), fusion (8), norm (8); the gate is folded into the fusion
    assert block.compute_conv_feature_map_size((4, 5, 6)) == (24 + 24 + 8 + 8) * v
    block = MultiScaleConv(nn.Conv3d, 8, (3, 5, 7), mode="hierarchical", norm_op=nn.InstanceNorm3d)
    # 3 branch outputs and 2 sums of 2 channels each, concatenation (8), fusion (8), norm (8)
    assert block.compute_conv_feature_map_size((4, 5, 6)) == (5 * 2 + 8 + 8 + 8) * v


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mode", BRANCH_MODES)
def test_folded_channel_attention_equals_gating_the_concatenation(dim, mode):
    # gated_pointwise_conv computes fuse(gate * concat) with per-sample weights: it must be the same function
    block = MultiScaleConv(CONV_OPS[dim], 8, mode=mode, norm_op=NORM_OPS[dim], **NORM)
    x = _input(dim, 8, batch=3)
    scales = block.branches(x)
    explicit = block.norm(block.fuse(block.attention(scales)))
    assert torch.allclose(block(x), explicit, atol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
def test_spp_shapes_gradients_and_global_context(dim):
    spp = SpatialPyramidPooling(CONV_OPS[dim], 12, bins=(1, 2, 4), norm_op=NORM_OPS[dim], **NORM,
                                nonlin=nn.LeakyReLU)
    x = _input(dim, 12)
    out = spp(x)
    assert out.shape == x.shape
    _assert_all_parameters_get_gradients(spp, out)
    # bin 1 gives every output position the global context: a change in one corner reaches the opposite corner
    spp.norm = nn.Identity()
    x2 = x.detach().clone()
    x2[(0, slice(None), *[0] * dim)] += 10
    far = (0, slice(None), *[-1] * dim)
    assert not torch.allclose(spp(x.detach())[far], spp(x2)[far])


def test_spp_feature_map_size_by_hand_and_bad_bins():
    spp = SpatialPyramidPooling(nn.Conv3d, 12, bins=(1, 2, 4), norm_op=nn.InstanceNorm3d)
    v = 4 * 4 * 4
    # 3 upsampled branches of 4 channels, the concatenation (12 + 12), fusion (12) and norm (12)
    assert spp.compute_conv_feature_map_size((4, 4, 4)) == (12 + 24 + 12 + 12) * v
    with pytest.raises(ValueError, match="0"):
        SpatialPyramidPooling(nn.Conv3d, 12, bins=(1, 0))
    with pytest.raises(ValueError, match=r"\(\)"):
        SpatialPyramidPooling(nn.Conv3d, 12, bins=())


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("cross_modal_attention", [True, False])
def test_modality_stem_shapes_gradients_and_weights(dim, cross_modal_attention):
    stem = ModalityAwareStem(CONV_OPS[dim], 4, 16, kernel_size=3, stride=1, cross_modal_attention=cross_modal_attention,
                             norm_op=NORM_OPS[dim], **NORM, nonlin=nn.LeakyReLU)
    x = _input(dim, 4)
    out = stem(x)
    assert out.shape == (2, 16, *SIZE[dim])
    _assert_all_parameters_get_gradients(stem, out)
    if cross_modal_attention:
        w = stem.last_modality_weights
        assert w.shape == (2, 4) and torch.allclose(w.sum(1), torch.full((2,), 4.0)) and (w > 0).all()
    else:
        assert stem.attention is None


def test_modality_stem_folded_weights_equal_weighting_the_maps():
    stem = ModalityAwareStem(nn.Conv3d, 4, 8, features_per_modality=2, norm_op=nn.InstanceNorm3d, **NORM,
                             nonlin=nn.LeakyReLU)
    x = torch.randn(3, 4, 6, 6, 6)
    features = stem.per_modality_nonlin(stem.per_modality_norm(stem.per_modality(x)))
    weights = stem.modality_weights(features).repeat_interleave(2, dim=1)
    explicit = stem.nonlin(stem.norm(stem.fuse(features * weights[..., None, None, None])))
    assert torch.allclose(stem(x), explicit, atol=1e-5)


def test_modality_stem_keeps_modalities_apart_before_fusion():
    stem = ModalityAwareStem(nn.Conv3d, 4, 8, features_per_modality=2)
    assert stem.per_modality.groups == 4 and stem.per_modality.out_channels == 8
    x = torch.zeros(1, 4, 6, 6, 6)
    x[:, 2] = torch.randn(6, 6, 6)  # only T2 carries signal
    features = stem.per_modality(x)
    assert features[:, :4].abs().sum() == 0 and features[:, 6:].abs().sum() == 0 and features[:, 4:6].abs().sum() > 0


def test_modality_stem_stride_and_feature_map_size():
    stem = ModalityAwareStem(nn.Conv3d, 4, 16, stride=2, norm_op=nn.InstanceNorm3d, nonlin=nn.LeakyReLU)
    assert stem(torch.randn(1, 4, 8, 8, 8)).shape == (1, 16, 4, 4, 4)
    v = 4 * 4 * 4
    # per-modality maps (16) and their norm (16); fusion (16) and its norm (16); the weights are folded into the fusion
    assert stem.compute_conv_feature_map_size((8, 8, 8)) == (2 * 16 + 2 * 16) * v
    with pytest.raises(ValueError, match="0"):
        ModalityAwareStem(nn.Conv3d, 0, 16)
    with pytest.raises(ValueError, match="0"):
        ModalityAwareStem(nn.Conv3d, 4, 16, features_per_modality=0)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("switches", [
    {}, dict(multi_scale=False), dict(channel_attention=False), dict(spatial_attention=False), dict(residual=False),
])
def test_residual_unit_switches(dim, switches):
    unit = MultiScaleResidualBlock(CONV_OPS[dim], 8, [3] * dim, norm_op=NORM_OPS[dim], **NORM,
                                   nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, **switches)
    x = _input(dim, 8)
    out = unit(x)
    assert out.shape == x.shape
    _assert_all_parameters_get_gradients(unit, out)
    assert isinstance(unit.features, MultiScaleConv) == switches.get("multi_scale", True)
    assert (unit.spatial_attention is not None) == switches.get("spatial_attention", True)


def test_residual_unit_is_identity_plus_branch():
    unit = MultiScaleResidualBlock(nn.Conv3d, 4, group_width=1, norm_op=nn.InstanceNorm3d, **NORM)  # no nonlin
    x = torch.randn(1, 4, 6, 6, 6)
    branch = unit.spatial_attention(unit.features(x))
    assert torch.allclose(unit(x), branch + x, atol=1e-6)
    unit.residual = False
    assert torch.allclose(unit(x), branch, atol=1e-6)


def test_residual_unit_feature_map_size_by_hand():
    unit = MultiScaleResidualBlock(nn.Conv3d, 8, norm_op=nn.InstanceNorm3d)  # hierarchical branches
    v = 4 * 4 * 4
    expected = (5 * 2 + 3 * 8) * v + (8 + 3) * v + 8 * v  # multi-scale, spatial attention, skip sum
    assert unit.compute_conv_feature_map_size((4, 4, 4)) == expected


@pytest.mark.parametrize("shape", [(2, 3, 6, 5), (1, 4, 5, 7, 3), (1, 2, 2, 2, 2)])
@pytest.mark.parametrize("bins", [1, 2, 4])
def test_exportable_adaptive_pooling_equals_pytorchs(shape, bins):
    from nnunet_msfen.blocks.spp import adaptive_avg_pool

    x = torch.randn(*shape)
    pool = torch.nn.functional.adaptive_avg_pool2d if len(shape) == 4 else torch.nn.functional.adaptive_avg_pool3d
    assert torch.allclose(adaptive_avg_pool(x, bins), pool(x, bins), atol=1e-6)
