"""Forgery Discovery Network (model/fdn.py): masking, the MAE, Eq. 2."""
import math

import pytest
import torch

from model.config import ModelConfig
from model.fdn import (ForgeryDiscoveryNetwork, MaskedAutoencoder1d, complementary_masks,
                       frame_errors, random_masking, reconstruction_loss)
from numerics import FP32_SHALLOW, assert_close_to_scale


def lengths_mask(lengths, total):
    return torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]  # [B, T]


def tiny_fdn_config(**overrides):
    base = dict(d_model=8, mae_decoder_dim=8, mae_heads=2, fusion_heads=2, head_hidden=8,
                dropout=0.0)
    base.update(overrides)
    return ModelConfig(**base)


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.29, 0.0])
def test_random_masking_hides_floor_ratio_of_valid_frames_only(ratio):
    lengths = [20, 13, 7, 1, 100]
    valid = lengths_mask(lengths, 100)
    hidden = random_masking(valid, ratio, torch.Generator().manual_seed(3))
    expected = [math.floor(round(ratio * n, 9)) for n in lengths]
    assert hidden.sum(dim=1).tolist() == expected
    assert not (hidden & ~valid).any(), "padding must never be hidden"


def test_random_masking_is_reproducible_with_a_seeded_generator():
    valid = lengths_mask([30, 17], 30)
    first = random_masking(valid, 0.75, torch.Generator().manual_seed(7))
    again = random_masking(valid, 0.75, torch.Generator().manual_seed(7))
    other = random_masking(valid, 0.75, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_complementary_masks_show_each_frame_once_and_hide_it_otherwise():
    valid = lengths_mask([9, 3, 1], 9)
    hidden = complementary_masks(valid, 4)  # [4, B, T]
    assert hidden.shape == (4, 3, 9)
    assert not (hidden & ~valid[None]).any()
    visible = valid[None] & ~hidden
    # video of 9 frames: 4 residues, frame i visible in pass i % 4 only
    assert visible[:, 0].sum(dim=0).tolist() == [1] * 9
    assert visible[:, 0, 5].tolist() == [False, True, False, False]
    # 3 frames, 4 passes: n_eff = 3, pass 3 repeats pass 0; every frame still hidden somewhere
    assert hidden[:, 1, :3].any(dim=0).all()
    assert visible[:, 1, :3].any(dim=0).all()
    # one-frame video: never hidden, visible in every pass
    assert not hidden[:, 2].any() and visible[:, 2, 0].all()


def test_mae_output_ignores_padding_content_and_is_zero_there():
    torch.manual_seed(0)
    mae = MaskedAutoencoder1d(8, 8, 1, 1, 2, 2, 0.0).eval()
    valid = lengths_mask([6, 4], 6)
    hidden = random_masking(valid, 0.5, torch.Generator().manual_seed(0))
    x = torch.randn(2, 6, 8)
    noisy = x.clone()
    noisy[1, 4:] = 1000.0  # padding of the second video
    out, out_noisy = mae(x, valid, hidden), mae(noisy, valid, hidden)
    assert_close_to_scale(out_noisy, out, FP32_SHALLOW)
    assert (out[1, 4:] == 0).all()


def test_frame_errors_are_mean_squares_and_zero_on_padding():
    features = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]]])
    recon = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, False]])
    assert frame_errors(features, recon, valid).tolist() == [[2.5, 1.0, 0.0]]


def test_reconstruction_loss_averages_hidden_frames_of_real_videos_only():
    errors = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [4.0, 6.0, 0.0]])
    hidden = torch.tensor([[True, False, True], [True, True, True], [True, True, False]])
    is_real = torch.tensor([True, False, True])
    # real hidden frames: 1, 3 (video 0) and 4, 6 (video 2) -> (1 + 3 + 4 + 6) / 4
    assert reconstruction_loss(errors, hidden, is_real).item() == pytest.approx(3.5)


def test_reconstruction_loss_is_zero_not_nan_without_real_videos():
    errors = torch.rand(2, 5, requires_grad=True)
    loss = reconstruction_loss(errors, torch.ones(2, 5, dtype=torch.bool),
                               torch.tensor([False, False]))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(errors.grad, torch.zeros(2, 5))


def test_fdn_deterministic_mode_reconstructs_every_frame_while_hidden():
    torch.manual_seed(0)
    fdn = ForgeryDiscoveryNetwork(tiny_fdn_config(mae_encoder_layers=1)).eval()
    valid = lengths_mask([10, 5], 10)
    x = torch.randn(2, 10, 8)
    first = fdn(x, valid, deterministic=True)
    torch.manual_seed(123)  # global RNG state must not matter
    second = fdn(x, valid, deterministic=True)
    assert torch.equal(first.recon, second.recon)
    assert torch.equal(first.hidden, valid)
    assert (first.errors[1, 5:] == 0).all() and (first.errors[:, :5] > 0).all()


def test_fdn_training_mode_follows_the_generator():
    fdn = ForgeryDiscoveryNetwork(tiny_fdn_config(mae_encoder_layers=1)).train()
    valid = lengths_mask([12, 8], 12)
    x = torch.randn(2, 12, 8)
    a = fdn(x, valid, torch.Generator().manual_seed(5))
    b = fdn(x, valid, torch.Generator().manual_seed(5))
    assert torch.equal(a.hidden, b.hidden) and torch.equal(a.recon, b.recon)
    assert a.hidden.sum(dim=1).tolist() == [9, 6]


def test_inference_mask_count_is_derived_from_the_ratio():
    assert ModelConfig(mask_ratio=0.75).inference_mask_count == 4
    assert ModelConfig(mask_ratio=0.5).inference_mask_count == 2
    assert ModelConfig(mask_ratio=0.9).inference_mask_count == 10
    assert ModelConfig(mask_ratio=0.0).inference_mask_count == 2
    assert ModelConfig(n_inference_masks=3).inference_mask_count == 3


def test_input_target_measures_the_error_against_the_model_inputs():
    """fdn_target='input': the error is that of a linear read-out to the inputs, so a frame
    whose input is shifted shows it even when the embedding is unchanged."""
    import torch

    from model.config import ModelConfig
    from model.fdn import ForgeryDiscoveryNetwork

    torch.manual_seed(0)
    cfg = ModelConfig(d_model=8, mae_decoder_dim=8, mae_heads=2, fusion_heads=2, fdn_target="input")
    fdn = ForgeryDiscoveryNetwork(cfg, input_dim=5).eval()
    features = torch.randn(1, 12, 8)
    valid = torch.ones(1, 12, dtype=torch.bool)
    inputs = torch.zeros(1, 12, 5)
    base = fdn(features, valid, deterministic=True, inputs=inputs).errors
    inputs[0, 6] = 10.0  # only frame 6's target moves
    moved = fdn(features, valid, deterministic=True, inputs=inputs).errors
    changed = (moved - base).abs() > 1e-6
    assert changed[0].tolist() == [i == 6 for i in range(12)]
    import pytest

    with pytest.raises(ValueError, match="inputs"):
        fdn(features, valid, deterministic=True)


def test_own_view_embeds_the_inputs_itself_and_ignores_the_shared_features():
    """fdn_view='own': the FDN's own embedding of the inputs is what it reconstructs from,
    so the shared features play no part, and the error is against the inputs."""
    import pytest
    import torch

    from model.config import ModelConfig
    from model.fdn import ForgeryDiscoveryNetwork

    torch.manual_seed(0)
    cfg = ModelConfig(d_model=8, mae_decoder_dim=8, mae_heads=2, fusion_heads=2,
                      fdn_target="input", fdn_view="own")
    fdn = ForgeryDiscoveryNetwork(cfg, input_dim=5).eval()
    valid = torch.ones(1, 12, dtype=torch.bool)
    inputs = torch.randn(1, 12, 5)
    own = fdn(None, valid, deterministic=True, inputs=inputs).errors
    ignored = fdn(torch.randn(1, 12, 8), valid, deterministic=True, inputs=inputs).errors
    assert torch.equal(own, ignored)
    inputs[0, 3] += 5.0  # a frame that stands out changes the error
    assert not torch.allclose(fdn(None, valid, deterministic=True, inputs=inputs).errors, own)
    with pytest.raises(ValueError, match="inputs"):
        fdn(None, valid, deterministic=True)
    with pytest.raises(ValueError, match="fdn_view"):
        ModelConfig(fdn_view="own")  # the own view reconstructs the input: fdn_target='input'
    with pytest.raises(ValueError, match="fdn_view"):
        ModelConfig(fdn_view="separate", fdn_target="input")
