"""Recomputation per resolution level: ``"auto"`` recomputes the 1x1 products only at full resolution, and
``"products"`` really keeps them (the backward pass runs fewer matrix products than under ``"cheap"``)."""
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nnunet_msfen import MSFENUNet
from nnunet_msfen.blocks.recompute import recompute_levels
from nnunet_msfen.blocks.residual_multiscale import MultiScaleResidualBlock


def _net(**kwargs) -> MSFENUNet:
    net = MSFENUNet(4, 3, [8, 16, 16], nn.Conv2d, 3, [1, 2, 2], 2, 3, 2, conv_bias=True, norm_op=nn.InstanceNorm2d,
                    norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU, deep_supervision=True, **kwargs)
    net.apply(net.initialize)
    return net


def test_recompute_levels_expands_auto_a_mode_and_a_list():
    assert recompute_levels("auto", 3) == ["cheap", "products", "products"]
    assert recompute_levels(True, 2) == ["all", "all"]
    assert recompute_levels(["none", False, "cheap"], 3) == ["none", "none", "cheap"]
    with pytest.raises(ValueError, match=r"\['cheap'\]"):
        recompute_levels(["cheap"], 3)


def test_auto_recomputes_the_products_at_full_resolution_only():
    net = _net()
    encoder, decoder = net.encoder, net.decoder
    assert encoder.stages[0][0].recompute == "cheap"  # the modality stem
    assert [unit.recompute for stage in encoder.stages for unit in stage[1:]] == ["cheap", "products", "products"]
    assert [f.recompute for f in decoder.fusions] == ["products", "cheap"]  # decoder stages: coarse first
    assert [unit.recompute for stage in decoder.stages for unit in stage] == ["products", "cheap"]
    assert {m.recompute for m in _net(recompute="all").modules() if hasattr(m, "recompute")} == {"all"}


class _CountProducts(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default, torch.ops.aten.mm.default,
                    torch.ops.aten.addmm.default):
            self.calls += 1
        return func(*args, **(kwargs or {}))


def _products_in_backward(mode: str) -> int:
    torch.manual_seed(0)
    unit = MultiScaleResidualBlock(nn.Conv2d, 8, norm_op=nn.InstanceNorm2d, norm_op_kwargs={"affine": True},
                                   nonlin=nn.LeakyReLU, recompute=mode)
    out = unit(torch.randn(2, 8, 12, 12, requires_grad=True))
    with _CountProducts() as counter:
        out.square().sum().backward()
    return counter.calls


def test_products_keeps_the_matrix_products_for_the_backward_pass():
    assert _products_in_backward("products") < _products_in_backward("cheap")
    assert _products_in_backward("products") == _products_in_backward("none")
