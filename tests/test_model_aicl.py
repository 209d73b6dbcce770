"""AICL (model/aicl.py, Eq. 3) against hand-computed batches and degenerate batches."""
import pytest
import torch

from model.aicl import aicl_loss, aicl_triplet_loss, local_features


def test_local_feature_is_mean_of_top_k_candidates_by_error():
    features = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0]]])  # [1, 5, 1]
    errors = torch.tensor([[0.1, 0.9, 0.5, 0.8, 0.0]])
    everything = torch.ones(1, 5, dtype=torch.bool)
    assert local_features(features, errors, everything, 2).tolist() == [[3.0]]  # frames 1, 3
    no_frame_1 = torch.tensor([[True, False, True, True, True]])
    assert local_features(features, errors, no_frame_1, 2).tolist() == [[3.5]]  # frames 3, 2


def test_local_feature_clamps_k_to_the_candidates():
    features = torch.tensor([[[2.0, 4.0], [6.0, 8.0], [100.0, 100.0]]])
    errors = torch.tensor([[0.3, 0.2, 9.0]])
    candidates = torch.tensor([[True, True, False]])  # e.g. frame 2 is padding
    assert local_features(features, errors, candidates, 10).tolist() == [[4.0, 6.0]]


def test_triplet_loss_matches_a_hand_computed_batch():
    # 1-D local features: authentic at 0, 1, 3; forged at 4, 10; margin 5
    local = torch.tensor([[0.0], [4.0], [1.0], [10.0], [3.0]], requires_grad=True)
    authentic = torch.tensor([True, False, True, False, True])
    # anchor 0: farthest real 3 (9), closest fake 4 (16): max(9 - 16 + 5, 0) = 0
    # anchor 1: farthest real 3 (4), closest fake 4 (9): max(4 - 9 + 5, 0) = 0
    # anchor 3: farthest real 0 (9), closest fake 4 (1): max(9 - 1 + 5, 0) = 13
    loss = aicl_triplet_loss(local, authentic, margin=5.0)
    assert loss.item() == pytest.approx(13.0 / 3.0)
    loss.backward()
    # only anchor 3's triplet is active: d/da [(a-p)^2 - (a-n)^2] = 2(a-p) - 2(a-n) = 2(n-p)
    expected = torch.zeros(5, 1)
    expected[4] = 2 * (4.0 - 0.0) / 3  # anchor at 3
    expected[0] = -2 * (3.0 - 0.0) / 3  # positive at 0
    expected[1] = 2 * (3.0 - 4.0) / 3  # negative at 4
    assert torch.allclose(local.grad, expected)


def test_triplet_loss_in_two_dimensions():
    local = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    authentic = torch.tensor([True, True, False])
    # anchor 0: pos (3,4) d2 25, neg (1,0) d2 1 -> 25 - 1 + 1 = 25
    # anchor 1: pos (0,0) d2 25, neg (1,0) d2 4 + 16 = 20 -> 25 - 20 + 1 = 6
    assert aicl_triplet_loss(local, authentic, 1.0).item() == pytest.approx((25 + 6) / 2)


@pytest.mark.parametrize("authentic", [
    [True, False, False],  # one real: no positive
    [True, True, True],  # no fake: no negative
    [False, False, False],  # no anchor
])
def test_degenerate_batches_give_zero_without_nan(authentic):
    features = torch.randn(3, 6, 4, requires_grad=True)
    errors = torch.rand(3, 6)
    loss = aicl_loss(features, errors, torch.ones(3, 6, dtype=torch.bool),
                     torch.tensor(authentic), k=2, margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(features.grad).all() and (features.grad == 0).all()


def test_selection_carries_no_gradient_into_the_errors():
    features = torch.randn(4, 5, 3)
    errors = torch.rand(4, 5, requires_grad=True)
    loss = aicl_loss(features, errors, torch.ones(4, 5, dtype=torch.bool),
                     torch.tensor([True, True, False, False]), k=2, margin=100.0)
    assert loss.item() > 0 and not loss.requires_grad
