"""The hardware-efficient formulation computes the same functions: oneDNN dispatch, folded gates, recomputation,
the additive skip fusion, anisotropic spatial attention, and initial weights independent of the ablation switches."""
import numpy as np
import pytest
import torch
from torch import nn

from nnunet_msfen import MSFENUNet
from nnunet_msfen.blocks.conv import (CHANNELS_LAST_BACKWARD_BELOW, ConvNormAct, convolve, gated_pointwise_conv,
                                     fast_conv_op, pointwise_conv, upsample)
from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
from nnunet_msfen.blocks.norm import normalize, skip_cancelled_bias
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock
from nnunet_msfen.blocks.skip_fusion import SkipFusion
from nnunet_msfen.blocks.spatial_attention import SpatialAttn

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
NORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=2, dilation=2),
                                    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=1, groups=4),
                                    dict(kernel_size=(1, 3, 3)[-3:], padding=(0, 1, 1)[-3:])])
def test_convolve_equals_the_module_forward(dim, batch, kwargs):
    torch.manual_seed(0)
    if dim == 2 and isinstance(kwargs["kernel_size"], tuple):
        kwargs = dict(kernel_size=(1, 3), padding=(0, 1))
    conv = CONV[dim](8, 8, **kwargs)
    x = torch.randn(batch, 8, *[9] * dim)
    assert torch.allclose(convolve(conv, x), conv(x), atol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("in_channels", [4, 16])  # below and at CHANNELS_LAST_BACKWARD_BELOW
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("input_grad", [True, False])
def test_convolve_gradients_equal_the_module_gradients(dim, in_channels, stride, input_grad):
    """Also where the training pass runs oneDNN on a channels-last copy: same output, contiguous, same gradients."""
    assert CHANNELS_LAST_BACKWARD_BELOW == 16
    torch.manual_seed(0)
    conv = CONV[dim](in_channels, 6, 3, stride=stride, padding=1)
    x = torch.randn(2, in_channels, *[6] * dim, requires_grad=input_grad)
    leaves = ([x] if input_grad else []) + [conv.weight, conv.bias]
    out, expected = convolve(conv, x), conv(x)
    assert out.is_contiguous() and torch.allclose(out, expected, atol=1e-5)
    grad_out = torch.randn_like(out)
    got, want = torch.autograd.grad(out, leaves, grad_out), torch.autograd.grad(expected, leaves, grad_out)
    assert all(torch.allclose(g, w, atol=1e-4) for g, w in zip(got, want))


def test_gated_pointwise_conv_checks_its_arguments():
    x = torch.randn(2, 4, 5, 5)
    with pytest.raises(ValueError, match=r"kernel_size=\(3, 3\)"):
        gated_pointwise_conv(x, nn.Conv2d(4, 4, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        gated_pointwise_conv(x, nn.Conv2d(4, 4, 1), torch.ones(2, 3))
    conv = nn.Conv2d(4, 3, 1)
    gate = torch.rand(2, 4)
    assert torch.allclose(gated_pointwise_conv(x, conv, gate), conv(x * gate[..., None, None]), atol=1e-5)


def _grads(module, *inputs):
    out = module(*inputs)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [p.grad.clone() for p in module.parameters()], [i.grad.clone() for i in inputs]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("make", [
    lambda d: MultiScaleResidualBlock(CONV[d], 8, norm_op=NORM[d], norm_op_kwargs={"affine": True},
                                      nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}),
    lambda d: ModalityAwareStem(CONV[d], 4, 8, norm_op=NORM[d], norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU),
    lambda d: SkipFusion(CONV[d], 16, 8, [2] * d, norm_op=NORM[d], norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU),
])
def test_recompute_changes_neither_outputs_nor_gradients(dim, make):
    torch.manual_seed(0)
    module = make(dim)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))  # no zero-initialised norm: every path carries gradient
    if isinstance(module, SkipFusion):
        inputs = [torch.randn(2, 16, *[4] * dim), torch.randn(2, 8, *[8] * dim)]
    else:
        inputs = [torch.randn(2, module.input_channels if isinstance(module, ModalityAwareStem) else 8, *[8] * dim)]
    results = []
    for recompute in ("none", "products", "cheap", "all"):
        module.recompute = recompute
        module.zero_grad(set_to_none=True)
        results.append(_grads(module, *[i.clone().requires_grad_() for i in inputs]))
    out0, p0, i0 = results[0]
    for out1, p1, i1 in results[1:]:
        assert torch.allclose(out0, out1, atol=1e-6)
        assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(p0 + i0, p1 + i1))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mode", ["add", "concat"])
def test_skip_fusion_shapes_gradients_and_feature_map_size(dim, mode):
    fusion = SkipFusion(CONV[dim], 16, 8, [2] * dim, mode=mode, norm_op=NORM[dim], norm_op_kwargs={"affine": True},
                        nonlin=nn.LeakyReLU)
    below, skip = torch.randn(2, 16, *[3] * dim), torch.randn(2, 8, *[6] * dim)
    out = fusion(below, skip)
    assert out.shape == skip.shape
    out.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    # add: upsampled, projected skip, sum, norm; concat: upsampled, concatenation (2x), fusion, norm
    assert fusion.compute_conv_feature_map_size([6] * dim) == (4 if mode == "add" else 5) * 8 * 6 ** dim
    assert fusion.fuse.in_channels == (8 if mode == "add" else 16)


@pytest.mark.parametrize("group_width", [1, 4])
def test_skip_fusion_groups_its_skip_projection_by_group_width(group_width):
    fusion = SkipFusion(nn.Conv2d, 16, 8, [2, 2], kernel_size=[3, 3], group_width=group_width)
    assert fusion.fuse.groups == 8 // group_width and fusion.fuse.kernel_size == (3, 3)
    below, skip = torch.randn(2, 16, 3, 3), torch.randn(2, 8, 6, 6)
    out = fusion(below, skip)
    assert out.shape == skip.shape
    # a channel of the skip reaches only the output channels of its own group
    skip2 = skip.clone()
    skip2[:, 0] += 1
    changed = (fusion(below, skip2) - out).abs().flatten(2).amax(-1)[0] > 0
    assert changed.tolist() == [c < group_width for c in range(8)]


def test_skip_fusion_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'sum'"):
        SkipFusion(nn.Conv3d, 16, 8, [2, 2, 2], mode="sum")
    with pytest.raises(ValueError, match=r"\[2, 2, 2\]"):
        SkipFusion(nn.Conv3d, 16, 8, [2, 2, 2], kernel_size=[2, 2, 2])
    with pytest.raises(ValueError, match="group_width=3"):
        SkipFusion(nn.Conv3d, 16, 8, [2, 2, 2], group_width=3)
    with pytest.raises(ValueError, match="'concat'"):
        SkipFusion(nn.Conv3d, 16, 8, [2, 2, 2], mode="concat", group_width=4)


def test_spatial_attention_stays_in_plane_along_an_axis_planned_with_kernel_1():
    attn = SpatialAttn(nn.Conv3d, 4, [1, 3, 3])
    assert attn.conv.kernel_size == (1, 3, 3) and attn.conv.padding == (0, 1, 1)
    x = torch.zeros(1, 4, 5, 5, 5, requires_grad=True)
    attn.gate_map(x)[0, 0, 2, 2, 2].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    assert touched[2].any() and not touched[[0, 1, 3, 4]].any()
    unit = MultiScaleResidualBlock(nn.Conv3d, 8, [1, 3, 3])
    assert unit.spatial_attention.conv.kernel_size == (1, 7, 7)
    with pytest.raises(ValueError, match=r"\[3, 4, 3\]"):
        SpatialAttn(nn.Conv3d, 4, [3, 4, 3])


def test_conv_norm_act_matches_dynamic_network_architectures():
    from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU

    args = (nn.Conv3d, 4, 8, 3, 2)
    ops = dict(conv_bias=True, norm_op=nn.InstanceNorm3d, norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU)
    ours, theirs = ConvNormAct(*args, **ops), ConvDropoutNormReLU(*args, **ops)
    theirs.load_state_dict(ours.state_dict(), strict=False)  # theirs also lists every layer under all_modules
    x = torch.randn(1, 4, 8, 8, 8)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert ours.compute_conv_feature_map_size((8, 8, 8)) == theirs.compute_conv_feature_map_size((8, 8, 8))


def _tiny(**kwargs) -> MSFENUNet:
    net = MSFENUNet(4, 3, [8, 16, 16], nn.Conv3d, 3, [1, 2, 2], 2, 3, 2, conv_bias=True, norm_op=nn.InstanceNorm3d,
                    norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU, deep_supervision=True, **kwargs)
    net.apply(net.initialize)
    return net


@pytest.mark.parametrize("switch", ["multi_scale", "cross_modal_attention", "spatial_attention", "channel_attention"])
def test_switching_a_part_off_leaves_the_other_initial_weights_unchanged(switch):
    torch.manual_seed(3)
    on = _tiny()
    torch.manual_seed(3)
    off = _tiny(**{switch: False})
    replaced = ".features." if switch == "multi_scale" else "\0"  # the part the switch swaps for a plain conv
    shared = {k: v for k, v in off.state_dict().items()
              if k in on.state_dict() and v.shape == on.state_dict()[k].shape and replaced not in k}
    assert len(shared) > 20
    differing = [k for k, v in shared.items() if not torch.equal(v, on.state_dict()[k])]
    assert not differing, differing


def test_network_recompute_changes_no_gradient():
    torch.manual_seed(0)
    nets = [_tiny(recompute=r) for r in (False, "auto", "cheap", True)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    x = torch.randn(2, 4, 16, 16, 16)
    grads = []
    for net in nets:
        torch.manual_seed(1)  # the bottleneck dropout draws the same mask
        sum(o.float().pow(2).mean() for o in net(x)).backward()
        grads.append([p.grad for p in net.parameters()])
    for other in grads[1:]:
        assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(grads[0], other))
        assert np.isclose(sum(float(g.abs().sum()) for g in grads[0]), sum(float(g.abs().sum()) for g in other))


@pytest.mark.parametrize("value", ["some", 1, None, ["cheap"] * 2, ["cheap", "products", "some"]])
def test_recompute_rejects_unknown_modes(value):
    with pytest.raises(ValueError, match="recompute"):
        _tiny(recompute=value)


@pytest.mark.parametrize("stride", [(2, 2, 2), (1, 2, 2), (2, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_upsample_is_the_transposed_convolution(stride, bias):
    """The pointwise-convolution-and-shuffle form equals ``conv(x) + add``, forward and backward, in 2D and 3D,
    anisotropic strides included."""
    torch.manual_seed(0)
    conv = CONV_TRANSPOSE[len(stride)](6, 4, stride, stride, bias=bias)
    x = torch.randn(2, 6, *[3, 5, 4][:len(stride)], requires_grad=True)
    reference = conv(x)
    add = torch.randn_like(reference, requires_grad=True)
    weights = torch.randn_like(reference)
    for out, expected in ((upsample(conv, x, add=add), reference + add), (upsample(conv, x), reference)):
        assert out.is_contiguous() and torch.allclose(out, expected, atol=1e-5)
        got = torch.autograd.grad((out * weights).sum(), [x, conv.weight], retain_graph=True)
        want = torch.autograd.grad((expected * weights).sum(), [x, conv.weight], retain_graph=True)
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(got, want))
    with pytest.raises(ValueError, match="upsampled shape"):
        upsample(conv, x, add=add[:, :2])


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pointwise_conv_is_the_1x1_convolution(dim, per_sample, bias, channels_last):
    """The matrix-product form equals the convolution, forward and backward, with shared or per-sample weights;
    a channels-last input gives a channels-last output."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, *[5, 4, 3][:dim], requires_grad=True)
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last_3d if dim == 3 else torch.channels_last)
        x.requires_grad_(True)
    weight = torch.randn(*([2] if per_sample else []), 4, 6, requires_grad=True)
    b = torch.randn(4, requires_grad=True) if bias else None
    out = pointwise_conv(x, weight, b)
    ones = [1] * dim
    functional = nn.functional.conv3d if dim == 3 else nn.functional.conv2d
    expected = torch.cat([functional(x[i:i + 1], (weight[i] if per_sample else weight).reshape(4, 6, *ones), b)
                          for i in range(2)])
    assert out.shape == expected.shape and torch.allclose(out, expected, atol=1e-5)
    layout = (torch.channels_last_3d if dim == 3 else torch.channels_last) if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)
    grad_out = torch.randn_like(expected)
    leaves = [x, weight] + ([b] if bias else [])
    got = torch.autograd.grad(out, leaves, grad_out)
    want = torch.autograd.grad(expected, leaves, grad_out)
    assert all(torch.allclose(g, w, atol=1e-4) for g, w in zip(got, want))


def test_pointwise_conv_traces_to_portable_operators():
    """Under tracing (ONNX, TorchScript) per-sample weights become an einsum, not a convolution grouped by the
    batch size."""
    x, weight, bias = torch.randn(2, 6, 4, 4, 4), torch.randn(2, 3, 6), torch.randn(3)
    traced = torch.jit.trace(lambda a, w, b: pointwise_conv(a, w, b), (x, weight, bias))
    expected = torch.einsum("boc,bcdhw->bodhw", weight, x) + bias.view(1, 3, 1, 1, 1)
    assert "einsum" in str(traced.graph) and torch.allclose(traced(x, weight, bias), expected, atol=1e-5)


def test_pointwise_conv_rejects_a_weight_that_does_not_fit():
    x = torch.randn(2, 6, 4, 4)
    with pytest.raises(ValueError, match=r"got \(4, 5\)"):
        pointwise_conv(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"got \(3, 4, 6\)"):
        pointwise_conv(x, torch.randn(3, 4, 6))


def test_convolve_runs_a_1x1_convolution_as_a_matrix_product():
    conv = nn.Conv3d(6, 4, 1)
    x = torch.randn(2, 6, 5, 4, 3)
    with torch.autograd.profiler.profile() as prof:
        out = convolve(conv, x)
    names = {e.name for e in prof.function_events}
    assert "aten::baddbmm" in names and not any("convolution" in n for n in names)
    assert torch.allclose(out, conv(x), atol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("affine", [True, False])
def test_normalize_is_the_instance_norm(dim, affine):
    torch.manual_seed(0)
    norm = NORM[dim](6, affine=affine, eps=1e-5)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 6, *[5, 4, 3][:dim], requires_grad=True)
    out, expected = normalize(norm, x), norm(x)
    assert torch.allclose(out, expected, atol=1e-5)
    grad_out = torch.randn_like(out)
    leaves = [x] + list(norm.parameters())
    got, want = torch.autograd.grad(out, leaves, grad_out), torch.autograd.grad(expected, leaves, grad_out)
    assert all(torch.allclose(g, w, atol=1e-4) for g, w in zip(got, want))


@pytest.mark.parametrize("make", [lambda: nn.InstanceNorm3d(6, track_running_stats=True), lambda: nn.BatchNorm3d(6),
                                  lambda: nn.GroupNorm(2, 6)])
def test_normalize_calls_other_norms_as_they_are(make):
    """Norms with running statistics (which the group-norm kernel would not update) and other norms run their own
    forward: same output, same running statistics."""
    torch.manual_seed(0)
    ours, theirs = make().train(), make().train()
    x = torch.randn(2, 6, 3, 3, 3) * 3 + 1
    assert torch.equal(normalize(ours, x), theirs(x))
    assert all(torch.equal(a, b) for a, b in zip(ours.buffers(), theirs.buffers()))


def test_spatial_attention_gate_has_the_gradient_of_the_channel_amax():
    """``max`` with indices in place of ``amax``: same gate, same gradients where no two channels tie."""
    torch.manual_seed(0)
    attn = SpatialAttn(nn.Conv3d, 5, 3)
    x = torch.randn(2, 5, 4, 4, 4, requires_grad=True)
    reference = torch.sigmoid(attn.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
    gate = attn.gate_map(x)
    assert torch.allclose(gate, reference, atol=1e-6)
    grad_out = torch.randn_like(gate)
    got = torch.autograd.grad(gate, [x, attn.conv.weight], grad_out)
    want = torch.autograd.grad(reference, [x, attn.conv.weight], grad_out)
    assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=1), dict(kernel_size=3, padding=1, padding_mode="reflect")])
def test_fast_conv_is_the_convolution_with_its_hooks(dim, kwargs):
    """The segmentation heads' class: the module's output on both paths (no recursion into itself where convolve
    falls back), hooks fire, and the state-dict keys are nn.ConvNd's."""
    torch.manual_seed(0)
    plain = CONV[dim](6, 3, **kwargs)
    fast = fast_conv_op(CONV[dim])(6, 3, **kwargs)
    fast.load_state_dict(plain.state_dict())
    calls = []
    fast.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(2, 6, *[5] * dim)
    assert torch.allclose(fast(x), plain(x), atol=1e-5) and calls == [1]
    assert isinstance(fast, CONV[dim]) and fast_conv_op(nn.ConvTranspose3d) is nn.ConvTranspose3d


def test_segmentation_heads_are_fast_convolutions():
    net = MSFENUNet(4, 3, [8, 16, 16], nn.Conv3d, 3, [1, 2, 2], 2, 3, 2, deep_supervision=True)
    assert all(type(h).__name__ == "FastConv3d" for h in net.decoder.seg_layers)
    assert {k for k in net.state_dict() if "seg_layers.0" in k} == {"decoder.seg_layers.0.weight",
                                                                    "decoder.seg_layers.0.bias"}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("make", [
    lambda d: MultiScaleResidualBlock(CONV[d], 8, conv_bias=True, norm_op=NORM[d], norm_op_kwargs={"affine": True},
                                      nonlin=nn.LeakyReLU),
    lambda d: ModalityAwareStem(CONV[d], 4, 8, conv_bias=True, norm_op=NORM[d], norm_op_kwargs={"affine": True},
                                nonlin=nn.LeakyReLU),
    lambda d: SkipFusion(CONV[d], 16, 8, [2] * d, conv_bias=True, norm_op=NORM[d], norm_op_kwargs={"affine": True},
                         nonlin=nn.LeakyReLU),
])
def test_a_bias_the_instance_norm_cancels_is_left_out_in_prediction_only(dim, make, monkeypatch):
    """Without gradients blocks skip the bias of the 1x1 convolution before their instance norm: the same output
    as with the bias added. In training every parameter still gets a gradient (DDP needs that)."""
    import nnunet_msfen.blocks.modality_stem as stem_module
    import nnunet_msfen.blocks.multiscale as multiscale_module
    import nnunet_msfen.blocks.skip_fusion as skip_fusion_module

    torch.manual_seed(0)
    block = make(dim)
    for m in block.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)) and m.bias is not None:
            nn.init.uniform_(m.bias, -2, 2)
    inputs = [torch.randn(2, 16, *[3] * dim), torch.randn(2, 8, *[6] * dim)] if isinstance(block, SkipFusion) \
        else [torch.randn(2, 4 if isinstance(block, ModalityAwareStem) else 8, *[6] * dim)]
    block.train()
    block(*inputs).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.eval()
    with torch.no_grad():
        skipped = block(*inputs)
        for module in (stem_module, multiscale_module, skip_fusion_module):
            monkeypatch.setattr(module, "skip_cancelled_bias", lambda *_: False)
        added = block(*inputs)
    assert torch.allclose(skipped, added, atol=1e-4)


def test_skip_cancelled_bias_only_for_an_instance_norm_after_no_active_dropout_without_gradients():
    norm = nn.InstanceNorm3d(4, affine=True)
    with torch.no_grad():
        assert skip_cancelled_bias(norm, nn.Identity()) and skip_cancelled_bias(norm, nn.Dropout3d(0.0))
        assert not skip_cancelled_bias(norm, nn.Dropout3d(0.5).train())
        assert skip_cancelled_bias(norm, nn.Dropout3d(0.5).eval())
        assert not skip_cancelled_bias(nn.InstanceNorm3d(4, track_running_stats=True), None)
        assert not skip_cancelled_bias(nn.BatchNorm3d(4), None) and not skip_cancelled_bias(nn.Identity(), None)
    assert not skip_cancelled_bias(norm, nn.Identity())  # gradients recorded: training keeps its bias
