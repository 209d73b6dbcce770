"""MTLR (model/mtlr.py): targets, auxiliary losses, KL consistency, head shapes."""
import math

import pytest
import torch
from torch.nn import functional as F

from model.mtlr import (AUX_HEADS, AuxiliaryHeads, auxiliary_cls_losses, bernoulli_kl,
                        kl_consistency, modality_targets)


def logit(p):
    return math.log(p / (1 - p))


def test_modality_bits_follow_the_label_layout():
    bits = modality_targets(torch.tensor([0, 1, 2, 3]))  # real, visual_only, audio_only, both
    assert bits["visual"].tolist() == [False, True, False, True]
    assert bits["audio"].tolist() == [False, False, True, True]


def test_bernoulli_kl_matches_hand_computation():
    p = torch.tensor([logit(0.8), logit(0.3)])
    q = torch.tensor([0.0, logit(0.6)])
    expected = [0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5),
                0.3 * math.log(0.3 / 0.6) + 0.7 * math.log(0.7 / 0.4)]
    assert bernoulli_kl(p, q).tolist() == pytest.approx(expected, rel=1e-5)


def test_kl_consistency_averages_modalities_and_is_zero_when_streams_agree():
    same = {name: torch.tensor([0.3, -2.0]) for name in AUX_HEADS}
    assert kl_consistency(same).item() == pytest.approx(0.0, abs=1e-7)
    logits = dict(same)
    logits["visual_original"] = torch.tensor([logit(0.8), logit(0.8)])
    logits["visual_reconstructed"] = torch.tensor([0.0, 0.0])
    one = 0.8 * math.log(1.6) + 0.2 * math.log(0.4)
    assert kl_consistency(logits).item() == pytest.approx(one / 2, rel=1e-5)


def test_auxiliary_losses_use_each_heads_modality_bit():
    labels = torch.tensor([0, 1, 2, 3])
    logits = {name: torch.tensor([0.5, -1.0, 2.0, 0.0]) for name in AUX_HEADS}
    losses = auxiliary_cls_losses(logits, labels)
    visual_target = torch.tensor([0.0, 1.0, 0.0, 1.0])
    audio_target = torch.tensor([0.0, 0.0, 1.0, 1.0])
    x = logits["visual_original"]
    assert losses["visual_combined"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x, visual_target).item())
    assert losses["audio_original"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x, audio_target).item())


def test_auxiliary_heads_give_one_frame_logit_per_head():
    heads = AuxiliaryHeads(d_model=6, hidden=5, kernel=3, dropout=0.0)
    v, a, rv, ra = (torch.randn(2, 9, 6) for _ in range(4))
    mask = torch.arange(9)[None, :] < torch.tensor([9, 4])[:, None]
    out = heads(v, a, rv, ra, mask)
    assert list(out) == list(AUX_HEADS)
    assert all(t.shape == (2, 9) for t in out.values())
