"""Fusion encoder (model/fusion.py) and shared layers (model/layers.py)."""
import math

import torch

from model.config import ModelConfig
from model.fusion import FusionEncoder
from model.layers import sinusoidal_positions
from numerics import FP32_SHALLOW, assert_close_to_scale


def test_sinusoidal_table_matches_the_formula():
    table = sinusoidal_positions(5, 4)
    # channel pair j uses frequency 10000^(-j/2) for dim 4 (half = 2)
    assert abs(table[3, 0].item() - math.sin(3.0)) < 1e-6
    assert abs(table[3, 1].item() - math.cos(3.0)) < 1e-6
    assert abs(table[3, 2].item() - math.sin(3.0 / 100.0)) < 1e-6
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # odd widths work too


def test_fusion_shapes_padding_and_independence_from_padded_content():
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=8, fusion_heads=2, mae_heads=2, mae_decoder_dim=8, dropout=0.0)
    encoder = FusionEncoder(cfg, visual_dim=5, audio_dim=3).eval()
    mask = torch.arange(7)[None, :] < torch.tensor([7, 4])[:, None]
    visual, audio = torch.randn(2, 7, 5), torch.randn(2, 7, 3)
    out = encoder(visual, audio, mask)
    assert out.visual.shape == (2, 7, 8) and out.audio.shape == (2, 7, 8)
    assert out.fused.shape == (2, 7, cfg.fused_dim)
    assert (out.fused[1, 4:] == 0).all()
    assert torch.equal(out.fused[..., :8], out.visual)  # F_m starts with the original F_v
    noisy_v, noisy_a = visual.clone(), audio.clone()
    noisy_v[1, 4:], noisy_a[1, 4:] = 50.0, -50.0
    noisy = encoder(noisy_v, noisy_a, mask)
    assert_close_to_scale(noisy.fused, out.fused, FP32_SHALLOW)


def test_cross_modal_attention_lets_audio_change_the_enhanced_visual_stream():
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=8, fusion_heads=2, mae_heads=2, mae_decoder_dim=8, dropout=0.0)
    encoder = FusionEncoder(cfg, visual_dim=5, audio_dim=3).eval()
    mask = torch.ones(1, 6, dtype=torch.bool)
    visual = torch.randn(1, 6, 5)
    first = encoder(visual, torch.randn(1, 6, 3), mask)
    second = encoder(visual, torch.randn(1, 6, 3), mask)
    assert torch.equal(first.visual, second.visual)  # F_v depends on visual only
    assert not torch.allclose(first.fused[..., 16:24], second.fused[..., 16:24])  # E_v does not
