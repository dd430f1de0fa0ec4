"""``SpatialAttn.apply_gate``: the one-function gate and skip of CPU training computes what autograd computes for
``skip + f * sigmoid(conv([mean_c f, amax_c f]))``, ties included, and is taken only where it was measured."""
import pytest
import torch
from torch import nn

from nnunet_msfen.blocks.spatial_attention import SpatialAttn, _GateAndSkip

CONV = {2: nn.Conv2d, 3: nn.Conv3d}


def _reference(attn: SpatialAttn, features: torch.Tensor, skip) -> torch.Tensor:
    pooled = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)], dim=1)
    gate = torch.sigmoid(attn.conv(pooled))
    return features * gate if skip is None else skip + features * gate


def _outputs_and_gradients(fn, attn, features, skip):
    torch.manual_seed(1)
    out = fn(attn, features, skip)
    leaves = [features, attn.conv.weight, attn.conv.bias] + ([] if skip is None else [skip])
    return [out] + list(torch.autograd.grad(out, leaves, torch.randn_like(out)))


def _is_fused(out: torch.Tensor) -> bool:
    return out.grad_fn is not None and type(out.grad_fn).__name__ == f"{_GateAndSkip.__name__}Backward"


@pytest.mark.parametrize("dim, kernel", [(2, 7), (3, 3), (3, [1, 3, 3])])
@pytest.mark.parametrize("with_skip", [True, False])
def test_apply_gate_has_autograds_outputs_and_gradients(dim, kernel, with_skip):
    torch.manual_seed(0)
    attn = SpatialAttn(CONV[dim], 5, kernel).double()
    features = torch.randn(2, 5, *[6] * dim, dtype=torch.float64, requires_grad=True)
    skip = torch.randn_like(features, requires_grad=True) if with_skip else None
    assert _is_fused(attn.apply_gate(features, skip))
    got = _outputs_and_gradients(lambda a, f, s: a.apply_gate(f, s), attn, features, skip)
    want = _outputs_and_gradients(_reference, attn, features, skip)
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(got, want))


def test_apply_gate_passes_gradcheck():
    torch.manual_seed(0)
    attn = SpatialAttn(nn.Conv2d, 3, 3).double()
    features = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    skip = torch.randn_like(features, requires_grad=True)
    weight, bias = attn.conv.weight, attn.conv.bias
    assert torch.autograd.gradcheck(lambda f, s, w, b: _GateAndSkip.apply(f, s, w, b, attn.conv.padding),
                                    (features, skip, weight, bias))


def test_a_tie_shares_its_gradient_as_amax_does():
    """Two channels equal everywhere (and a third below them): each gets half the maximum's gradient."""
    torch.manual_seed(0)
    attn = SpatialAttn(nn.Conv2d, 3, 3).double()
    base = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    features = torch.cat([base, base, base - 1], dim=1).requires_grad_()
    got = _outputs_and_gradients(lambda a, f, s: a.apply_gate(f, s), attn, features, None)
    want = _outputs_and_gradients(_reference, attn, features, None)
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(got, want))


def test_the_function_is_taken_in_cpu_training_only():
    """Without gradients, for features that need none, and for another gate than the sigmoid: autograd's ops."""
    torch.manual_seed(0)
    attn = SpatialAttn(nn.Conv2d, 4, 3)
    features = torch.randn(1, 4, 6, 6, requires_grad=True)
    with torch.no_grad():
        assert attn.apply_gate(features).grad_fn is None
    assert not _is_fused(attn.apply_gate(features.detach()))
    assert not _is_fused(SpatialAttn(nn.Conv2d, 4, 3, gate_layer=nn.Hardsigmoid).apply_gate(features))
    assert torch.allclose(attn(features), _reference(attn, features, None), atol=1e-6)
