"""Top-K MIL pooling (model/mil.py) against hand computations."""
import pytest
import torch

from model.mil import mil_k, topk_mil_pool


def test_k_is_floor_ratio_of_valid_length_at_least_one():
    mask = torch.arange(20)[None, :] < torch.tensor([20, 9, 1])[:, None]
    assert mil_k(mask, 0.125).tolist() == [2, 1, 1]
    assert mil_k(mask, 0.5).tolist() == [10, 4, 1]


def test_pool_averages_top_k_per_class_over_valid_frames():
    scores = torch.tensor([[[1.0, -1.0], [5.0, 0.0], [3.0, 2.0], [-1.0, 7.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, True, True, False]])  # last frame is padding
    # ratio 0.5 of 4 valid frames -> K = 2; class 0: (5 + 3) / 2, class 1: (7 + 2) / 2
    assert topk_mil_pool(scores, mask, 0.5).tolist() == [[4.0, 4.5]]


def test_pool_handles_short_videos_and_extreme_padding_without_nan():
    scores = torch.tensor([[[2.0], [float("-inf")], [float("inf")]],
                           [[-3.0], [1.0], [0.5]]], requires_grad=True)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    pooled = topk_mil_pool(scores, mask, 0.5)  # K = 1 for both
    assert pooled.tolist() == [[2.0], [1.0]]
    pooled.sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[:, :, 0].tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


@pytest.mark.parametrize("ratio", [0.1, 1.0])
def test_ratio_one_is_the_masked_mean(ratio):
    scores = torch.randn(3, 7, 4)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 5])[:, None]
    pooled = topk_mil_pool(scores, mask, ratio)
    assert pooled.shape == (3, 4)
    if ratio == 1.0:
        mean = (scores * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        assert torch.allclose(pooled, mean, atol=1e-6)
