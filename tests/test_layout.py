"""Channels-last prediction (``blocks/layout.py``): the layout rule, every helper on channels-last maps, and the
network computing the same function with its high-resolution levels channels-last."""
import pytest
import torch
from torch import nn

from nnunet_msfen import MSFENUNet
from nnunet_msfen.blocks import layout
from nnunet_msfen.blocks.conv import convolve, gated_pointwise_conv, upsample
from nnunet_msfen.blocks.layout import as_layout_of, channels_last_format, is_channels_last, layout_for

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=channels_last_format(x.ndim))


def test_layout_for_puts_large_maps_channels_last_in_prediction_only(monkeypatch):
    monkeypatch.setattr(layout, "CHANNELS_LAST_FROM_VOXELS", 32 * 32)
    large, small = torch.randn(1, 8, 64, 64), torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        assert is_channels_last(layout_for(large)) and not is_channels_last(large)
        assert is_channels_last(layout_for(large, 2)) and not is_channels_last(layout_for(large, 4))
        assert is_channels_last(layout_for(large, [1, 2])) and not is_channels_last(layout_for(large, [2, 4]))
        assert not is_channels_last(layout_for(small.contiguous(memory_format=torch.channels_last)))
        assert layout_for(large.double()).is_contiguous()  # float32 only
        with pytest.raises(ValueError, match=r"stride=\[1, 2, 2\]"):
            layout_for(large, [1, 2, 2])
    assert layout_for(large) is large  # gradients recorded: training keeps NC(D)HW (1.2x slower otherwise)


def test_as_layout_of_follows_the_reference():
    x = torch.randn(1, 4, 6, 6, 6)
    with torch.no_grad():
        assert is_channels_last(as_layout_of(x, _channels_last(torch.randn(1, 3, 12, 12, 12))))
        assert as_layout_of(_channels_last(x), torch.randn(1, 3, 12, 12, 12)).is_contiguous()
    assert as_layout_of(x, _channels_last(torch.randn(1, 3, 12, 12, 12))) is x


def test_channels_last_format():
    assert channels_last_format(5) == torch.channels_last_3d and channels_last_format(4) == torch.channels_last
    with pytest.raises(ValueError, match="ndim=3"):
        channels_last_format(3)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=2, dilation=2),
                                    dict(kernel_size=2, stride=2), dict(kernel_size=3, padding=1, groups=4),
                                    dict(kernel_size=1), dict(kernel_size=1, bias=False)])
def test_convolve_keeps_a_channels_last_map_channels_last(dim, kwargs):
    torch.manual_seed(0)
    conv = CONV[dim](8, 8, **kwargs)
    x = torch.randn(1, 8, *[12, 10, 8][:dim])
    with torch.no_grad():
        out = convolve(conv, _channels_last(x))
        assert is_channels_last(out) and torch.allclose(out, conv(x), atol=1e-5)
        # a channel slice of a channels-last map (the hierarchical branches' splits) is neither layout's contiguous
        sliced = _channels_last(torch.randn(1, 16, *x.shape[2:]))[:, 4:12]
        assert torch.allclose(convolve(conv, sliced), conv(sliced.contiguous()), atol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
def test_gated_pointwise_conv_on_a_channels_last_map(dim):
    torch.manual_seed(0)
    conv = CONV[dim](6, 4, 1)
    x, gate = torch.randn(2, 6, *[5, 4, 3][:dim]), torch.rand(2, 6)
    with torch.no_grad():
        out = gated_pointwise_conv(_channels_last(x), conv, gate)
        expected = conv(x * gate.view(2, 6, *[1] * dim))
    assert is_channels_last(out) and torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("stride", [(2, 2, 2), (1, 2, 2), (2, 2)])
@pytest.mark.parametrize("add_layout", [None, "channels_last", "contiguous"])
def test_upsample_of_a_channels_last_map(stride, add_layout):
    """The pixel shuffle interleaves channel vectors: the same values as the transposed convolution (+ ``add``),
    channels-last out."""
    torch.manual_seed(0)
    conv = CONV_TRANSPOSE[len(stride)](6, 4, stride, stride)
    x = torch.randn(2, 6, *[3, 5, 4][:len(stride)])
    with torch.no_grad():
        expected = conv(x)
        add = None if add_layout is None else torch.randn_like(expected)
        if add_layout == "channels_last":
            add = _channels_last(add)
        out = upsample(conv, _channels_last(x), add=add)
    assert is_channels_last(out)
    assert torch.allclose(out, expected if add is None else expected + add, atol=1e-5)


def _small_msfen(dim: int) -> MSFENUNet:
    torch.manual_seed(0)
    net = MSFENUNet(4, 4, [8, 16, 32, 32], CONV[dim], 3, [1, 2, 2, 2], 2, 3, 1,
                    norm_op=nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d, norm_op_kwargs={"affine": True},
                    nonlin=nn.LeakyReLU, deep_supervision=False)
    return net.eval()


@pytest.mark.parametrize("dim, size", [(2, (64, 64)), (3, (32, 32, 32))])
def test_prediction_runs_high_resolution_levels_channels_last_and_computes_the_same(dim, size, monkeypatch):
    """With the threshold between the two finest and the two coarsest levels, the encoder's fine stages run
    channels-last and its coarse ones NC(D)HW in prediction; the logits equal the all-NC(D)HW network's; training
    keeps NC(D)HW everywhere."""
    net = _small_msfen(dim)
    x = torch.randn(1, 4, *size)
    level_voxels = [torch.Size(size).numel() // 2 ** (dim * level) for level in range(4)]
    layouts = []
    hooks = [stage.register_forward_hook(lambda module, args, out: layouts.append(is_channels_last(out)))
             for stage in net.encoder.stages]
    with torch.inference_mode():
        monkeypatch.setattr(layout, "CHANNELS_LAST_FROM_VOXELS", 10 ** 12)
        reference = net(x)
        assert layouts == [False] * 4
        layouts.clear()
        monkeypatch.setattr(layout, "CHANNELS_LAST_FROM_VOXELS", level_voxels[1])
        out = net(x)
    assert layouts == [True, True, False, False]
    assert out.is_contiguous() and torch.allclose(out, reference, atol=1e-4)
    layouts.clear()
    net.train()
    net(x).sum().backward()
    assert layouts == [False] * 4
    for hook in hooks:
        hook.remove()
