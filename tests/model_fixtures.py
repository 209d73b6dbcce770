"""Tiny RT-DeepLoc configs and a one-thread setting shared by the model tests."""
import pytest
import torch

from model.config import ModelConfig


def tiny_config(**overrides) -> ModelConfig:
    """A ModelConfig small enough for shape and loss tests (fields overridable)."""
    base = dict(d_model=8, mae_decoder_dim=8, mae_heads=2, fusion_heads=2, head_hidden=8,
                mae_encoder_layers=1, aicl_k=3, dropout=0.0)
    base.update(overrides)
    return ModelConfig(**base)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run far faster on one thread than on oversubscribed shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
