"""model/normalize.py: training-split input standardisation and clip-median contrast."""
import numpy as np
import pytest
import torch

from model.normalize import (InputStandardizer, clip_contrast, clip_median, frame_statistics)
from model.rtdeeploc import build_model
from model_fixtures import one_thread, tiny_config  # noqa: F401 (one_thread: fixture)
from numerics import FP32_DEEP, assert_close_to_scale, max_error_to_scale

# standardising undoes x * std + mean only up to rounding amplified by 1 / std (see below)
STANDARDISED = 1e-4

pytestmark = pytest.mark.usefixtures("one_thread")

CV, CA = 5, 3


def test_frame_statistics_by_hand_over_all_frames_of_all_videos():
    # dim 0: frames 1, 3, 5 -> mean 3, var (4 + 0 + 4) / 3; dim 1 constant 7 -> std 1
    mean, std = frame_statistics([np.array([[1.0, 7.0], [3.0, 7.0]]), np.array([[5.0, 7.0]])])
    np.testing.assert_allclose(mean, [3.0, 7.0])
    np.testing.assert_allclose(std, [np.sqrt(8.0 / 3.0), 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="no frames"):
        frame_statistics([])


def test_standardizer_maps_statistics_and_zeroes_padding():
    norm = InputStandardizer(2)
    norm.set_statistics(np.array([1.0, -2.0]), np.array([2.0, 0.5]))
    x = torch.tensor([[[3.0, -1.0], [9.0, 9.0]]])  # [1, 2, 2]
    mask = torch.tensor([[True, False]])
    out = norm(x, mask)
    assert torch.allclose(out, torch.tensor([[[1.0, 2.0], [0.0, 0.0]]]))
    with pytest.raises(ValueError, match=r"\[2\]"):
        norm.set_statistics(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="std > 0"):
        norm.set_statistics(np.zeros(2), np.array([1.0, 0.0]))


def test_model_with_statistics_sees_affinely_rescaled_features_as_standard_ones():
    """Features with huge offsets and scales (as the weight-free extractors give) reach the
    network exactly as unit-scale features do once the statistics are set."""
    torch.manual_seed(0)
    plain = build_model(tiny_config(), CV, CA).eval()
    scaled = build_model(tiny_config(), CV, CA).eval()
    scaled.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(1)
    visual, audio = torch.randn(2, 9, CV, generator=g), torch.randn(2, 9, CA, generator=g)
    mask = torch.ones(2, 9, dtype=torch.bool)
    vm, vs = torch.linspace(-10, 200, CV), torch.linspace(0.01, 50, CV)
    am, as_ = torch.linspace(-12, -3, CA), torch.linspace(2, 4, CA)
    scaled.set_input_statistics(vm, vs, am, as_)
    a = plain.predict(visual, audio, mask)
    b = scaled.predict(visual * vs + vm, audio * as_ + am, mask)
    # x * std + mean rounds to half an ulp of |mean| (~5e-7 at 10), which standardising
    # divides by std (down to 0.01): input errors up to ~5e-5, and outputs within
    # STANDARDISED of each other (measured 3e-6 of their scale)
    assert_close_to_scale(b.class_probs, a.class_probs, STANDARDISED)
    assert_close_to_scale(b.joint_scores, a.joint_scores, STANDARDISED)
    # and without them the raw features give something else
    c = plain.predict(visual * vs + vm, audio * as_ + am, mask)
    assert max_error_to_scale(c.class_probs, a.class_probs) > 100 * STANDARDISED


def test_statistics_travel_in_the_state_dict_and_old_state_dicts_load_as_identity():
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, CA)
    model.set_input_statistics(np.full(CV, 2.0), np.full(CV, 3.0), np.full(CA, -1.0),
                               np.full(CA, 0.5))
    clone = build_model(tiny_config(), CV, CA)
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone.visual_input_norm.std, torch.full((CV,), 3.0))
    assert torch.equal(clone.audio_input_norm.mean, torch.full((CA,), -1.0))
    old = {k: v for k, v in model.state_dict().items() if "input_norm" not in k}
    legacy = build_model(tiny_config(), CV, CA)
    legacy.load_state_dict(old)  # strict load of a checkpoint from before standardisation
    assert torch.equal(legacy.visual_input_norm.mean, torch.zeros(CV))
    assert torch.equal(legacy.visual_input_norm.std, torch.ones(CV))


def test_clip_median_and_contrast_by_hand_ignore_padding():
    x = torch.tensor([[[1.0], [5.0], [3.0], [100.0]], [[2.0], [9.0], [-50.0], [-50.0]]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    # clip 0: sorted 1, 3, 5, 100 -> lower median 3; clip 1: valid 2, 9 -> lower median 2
    assert clip_median(x, mask).flatten().tolist() == [3.0, 2.0]
    out = clip_contrast(x, mask)
    assert out[0, :, 0].tolist() == [-2.0, 2.0, 0.0, 97.0]
    assert out[1, :, 0].tolist() == [0.0, 7.0, 0.0, 0.0]


@pytest.mark.parametrize("mode", ["replace", "append"])
def test_clip_contrast_modes_build_and_replace_ignores_a_per_clip_offset(mode):
    torch.manual_seed(0)
    model = build_model(tiny_config(input_contrast=mode), CV, CA).eval()
    g = torch.Generator().manual_seed(2)
    visual, audio = torch.randn(2, 10, CV, generator=g), torch.randn(2, 10, CA, generator=g)
    mask = torch.arange(10)[None] < torch.tensor([[10], [7]])
    offset_v, offset_a = torch.randn(2, 1, CV, generator=g) * 5, torch.randn(2, 1, CA, generator=g) * 5
    a = model.predict(visual, audio, mask)
    b = model.predict(visual + offset_v, audio + offset_a, mask)
    same = max_error_to_scale(b.class_probs, a.class_probs) <= FP32_DEEP
    # replace sees only deviations from the clip's median frame, so a speaker's constant
    # appearance (a per-clip offset) cannot matter; append still sees the absolute values
    assert same == (mode == "replace")
    with pytest.raises(ValueError, match="input_contrast"):
        tiny_config(input_contrast="median")
