"""The untrained visual-change cue (model/boundaries.py) on hand-made feature sequences."""
import numpy as np
import pytest
import torch

from model.boundaries import feature_change


def step_features(length=30, at=12, dim=3, seed=0):
    """[1, length, dim]: small noise around one level before `at` and another from `at` on."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, size=(length, dim))
    x[at:] += np.array([1.0, -2.0, 0.5])[:dim]
    return torch.tensor(x[None], dtype=torch.float32)


def test_change_peaks_at_the_frame_the_features_jump_and_is_small_elsewhere():
    x = step_features()
    change = feature_change(x, torch.ones(1, 30, dtype=torch.bool), half_window=4)[0]
    assert int(change.argmax()) == 12
    # two frames from the jump the windows straddle it only partly; far from it, noise only
    assert change[12] > 2 * change[10] and change[12] > 2 * change[14]
    assert float(change[20]) < 0.2 * float(change[12])


def test_change_is_zero_where_a_window_leaves_the_clip_and_on_padding():
    x = step_features(length=30, at=12)
    mask = torch.ones(1, 30, dtype=torch.bool)
    mask[0, 25:] = False  # 25 valid frames
    change = feature_change(x, mask, half_window=4)[0]
    assert torch.all(change[:4] == 0)  # t < 4: no 4 frames before
    assert torch.all(change[22:] == 0)  # t + 4 > 25: the window after reaches the padding
    assert torch.all(change[4:22] > 0)


def test_change_ignores_a_per_dimension_scale_and_offset():
    # the features are z-scored within the clip first, so a global standardisation
    # (the model's inputs) or the raw features give the same change
    x = step_features()
    mask = torch.ones(1, 30, dtype=torch.bool)
    scaled = x * torch.tensor([10.0, 0.1, 3.0]) + torch.tensor([5.0, -1.0, 0.0])
    assert torch.allclose(feature_change(x, mask), feature_change(scaled, mask), atol=1e-5)


@pytest.mark.parametrize("length", [1, 4, 7, 8])
def test_a_clip_shorter_than_both_windows_has_no_change(length):
    # 8 frames is the shortest clip with one boundary (frame 4) that both windows fit
    change = feature_change(torch.randn(1, length, 3), torch.ones(1, length, dtype=torch.bool))
    assert change.shape == (1, length)
    assert torch.count_nonzero(change) == (1 if length == 8 else 0)


def test_each_video_of_a_batch_is_its_own_clip():
    a, b = step_features(at=12), step_features(at=20, seed=1)
    mask = torch.ones(2, 30, dtype=torch.bool)
    both = feature_change(torch.cat([a, b]), mask)
    assert int(both[0].argmax()) == 12 and int(both[1].argmax()) == 20
    assert torch.allclose(both[1], feature_change(b, mask[1:])[0])


def test_half_window_must_be_positive():
    with pytest.raises(ValueError, match="half_window"):
        feature_change(step_features(), torch.ones(1, 30, dtype=torch.bool), half_window=0)
