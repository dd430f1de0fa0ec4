"""Missing MRI sequences: the stem's masked softmax, the modality-dropout recipe and its trainers."""
import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_msfen import MSFENUNet
from nnunet_msfen.blocks.modality_stem import ModalityAwareStem
from nnunet_msfen.training.modality_dropout import (ModalityDropout, drop_modalities, nnUNetTrainer_ModalityDropout,
                                                    nnUNetTrainerMSFEN_ModalityDropout)

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
NORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def _stem(dim, attention=True):
    torch.manual_seed(0)
    return ModalityAwareStem(CONV[dim], 4, 8, features_per_modality=2, cross_modal_attention=attention,
                             conv_bias=True, norm_op=NORM[dim], norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU)


def _batch_with_missing(dim):
    torch.manual_seed(1)
    x = torch.randn(3, 4, *[6] * dim)
    x[0, 1] = 0  # case 0 without T1ce
    x[1, [0, 3]] = 0  # case 1 without T1 and FLAIR; case 2 complete
    return x


@pytest.mark.parametrize("dim", [2, 3])
def test_absent_sequences_get_zero_weight_and_the_others_renormalise(dim):
    stem = _stem(dim)
    stem(_batch_with_missing(dim))
    w = stem.last_modality_weights
    assert w[0, 1] == 0 and (w[0, [0, 2, 3]] > 0).all()
    assert (w[1, [0, 3]] == 0).all() and (w[1, [1, 2]] > 0).all()
    assert (w[2] > 0).all()
    assert torch.allclose(w.sum(dim=1), torch.full((3,), 4.0))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("attention", [True, False])
def test_an_absent_sequence_contributes_nothing(dim, attention):
    # whatever the absent sequence's own filters and norm make of its zeros (a constant: the norm's shift) must
    # not reach the output of the cases that lack it, and must reach the cases that have it
    stem = _stem(dim, attention)
    x = _batch_with_missing(dim)
    before = stem(x)
    with torch.no_grad():
        stem.per_modality.bias[2:4] += 5  # T1ce's two maps
        stem.per_modality_norm.bias[2:4] += 5
    after = stem(x)
    assert torch.allclose(before[0], after[0], atol=1e-5)
    assert not torch.allclose(before[2], after[2], atol=1e-3)


def test_a_case_without_any_sequence_counts_all_present_and_gives_no_nan():
    stem = _stem(3)
    out = stem(torch.zeros(2, 4, 6, 6, 6))
    w = stem.last_modality_weights
    assert torch.isfinite(out).all() and (w > 0).all() and torch.allclose(w.sum(dim=1), torch.full((2,), 4.0))


@pytest.mark.parametrize("dim", [2, 3])
def test_network_with_deep_supervision_trains_on_cases_with_different_missing_sets(dim):
    torch.manual_seed(0)
    net = MSFENUNet(4, 3, [8, 16, 16], CONV[dim], 3, [1, 2, 2], 2, 3, 2, conv_bias=True, norm_op=NORM[dim],
                    norm_op_kwargs={"affine": True}, nonlin=nn.LeakyReLU, deep_supervision=True)
    net.apply(net.initialize)
    x = torch.randn(3, 4, *[16] * dim)
    x[0, 1], x[1, [0, 3]] = 0, 0
    out = net(x)
    assert [o.shape[-1] for o in out] == [16, 8]
    sum(o.pow(2).mean() for o in out).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
    assert (net.encoder.stages[0][0].last_modality_weights[1, [0, 3]] == 0).all()


def test_drop_modalities_never_drops_every_sequence_and_drops_at_the_rate_asked():
    g = torch.Generator().manual_seed(0)
    data = torch.ones(4000, 4, 2, 2)
    out = drop_modalities(data, 0.5, generator=g)
    kept = out[:, :, 0, 0]
    assert set(kept.unique().tolist()) <= {0.0, 1.0}
    assert (kept.sum(dim=1) >= 1).all()  # never all four
    assert 0.40 < 1 - kept.mean().item() < 0.50  # ~0.5, a little less: all-dropped samples keep one
    assert torch.equal(drop_modalities(data, 0.0), data)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=str(bad)):
            drop_modalities(data, bad)


@pytest.mark.parametrize("cls", [nnUNetTrainerMSFEN_ModalityDropout, nnUNetTrainer_ModalityDropout])
def test_dropout_trainers_drop_sequences_in_the_training_step_only(cls, monkeypatch):
    seen = []
    monkeypatch.setattr(nnUNetTrainer, "train_step", lambda self, batch: seen.append(batch["data"]) or {"loss": 0})
    trainer = object.__new__(cls)  # train_step needs nothing from __init__
    trainer.modality_dropout_probability = 0.5
    torch.manual_seed(0)
    data = torch.randn(64, 4, 3, 3)
    trainer.train_step({"data": data, "target": None})
    dropped = (seen[0].flatten(2).abs().amax(dim=2) == 0)
    assert dropped.any() and not dropped.all(dim=1).any()
    assert torch.equal(seen[0][~dropped], data[~dropped])  # the kept sequences are untouched
    assert issubclass(cls, ModalityDropout) and "validation_step" not in ModalityDropout.__dict__
    import nnunet_msfen.training as training
    assert cls.__name__ in training.__all__
