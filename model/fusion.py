"""Multimodal feature encoding and fusion (paper Sec. 3.1).

    visual [B,T,Cv] --conv embedding--> F_v [B,T,d] --+-- visual attends to audio --> E_v
    audio  [B,T,Ca] --conv embedding--> F_a [B,T,d] --+-- audio attends to visual --> E_a
    F_m = [F_v, F_a, E_v, E_a]  [B,T,4d]

Choices (the paper gives no details):
- Embedding = a 'same' 1-D conv to d_model, GELU, LayerNorm. The final LayerNorm fixes the
  scale of F_v / F_a, which the MAE reconstructs and AICL measures distances in. There is no
  LayerNorm over the input channels: it would erase each frame's overall level (a shift of
  all channels at once, which a forgery can cause); TSN and wav2vec 2.0 features come in
  moderate ranges already.
- Cross-modal attention adds sinusoidal positions to queries and keys so that a visual frame
  can prefer the audio around the same instant (lip-sync mismatches are local in time); values
  carry no positions. Padded keys are excluded with key padding masks. Each direction is a
  residual block: E = LayerNorm(F + Attn(F + P, G + P, G)).
- F_m concatenates originals and enhanced outputs, modality by modality.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.layers import masked_conv, sinusoidal_positions


class ConvEmbedding(nn.Module):
    """Per-modality temporal embedding: `[B, T, C_in] -> [B, T, d_model]`, padding zeroed."""

    def __init__(self, in_dim: int, d_model: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, d_model, kernel, padding=kernel // 2)
        self.out_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = masked_conv(self.conv, x, mask)  # [B, T, d]
        h = self.out_norm(nn.functional.gelu(h))  # [B, T, d]
        return h * mask[..., None].to(h.dtype)


class CrossModalAttention(nn.Module):
    """One direction: queries from one modality attend to the other, residual + LayerNorm."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, query: Tensor, context: Tensor, mask: Tensor, positions: Tensor) -> Tensor:
        # query, context [B, T, d]; positions [T, d]; mask [B, T] True = valid
        attended, _ = self.attn(query + positions, context + positions, context,
                                key_padding_mask=~mask, need_weights=False)  # [B, T, d]
        out = self.norm(query + attended)  # [B, T, d]
        return out * mask[..., None].to(out.dtype)


@dataclass
class FusionOutput:
    visual: Tensor  # F_v [B, T, d]
    audio: Tensor  # F_a [B, T, d]
    fused: Tensor  # F_m [B, T, 4d]


class FusionEncoder(nn.Module):
    """Conv embeddings + bidirectional cross-modal attention, giving F_v, F_a and F_m."""

    def __init__(self, cfg: ModelConfig, visual_dim: int, audio_dim: int):
        super().__init__()
        self.visual_embed = ConvEmbedding(visual_dim, cfg.d_model, cfg.embed_kernel)
        self.audio_embed = ConvEmbedding(audio_dim, cfg.d_model, cfg.embed_kernel)
        self.visual_from_audio = CrossModalAttention(cfg.d_model, cfg.fusion_heads, cfg.dropout)
        self.audio_from_visual = CrossModalAttention(cfg.d_model, cfg.fusion_heads, cfg.dropout)
        self.d_model = cfg.d_model

    def forward(self, visual: Tensor, audio: Tensor, mask: Tensor) -> FusionOutput:
        # visual [B, T, Cv], audio [B, T, Ca], mask [B, T]
        f_v = self.visual_embed(visual, mask)  # [B, T, d]
        f_a = self.audio_embed(audio, mask)  # [B, T, d]
        positions = sinusoidal_positions(mask.shape[1], self.d_model, mask.device)  # [T, d]
        e_v = self.visual_from_audio(f_v, f_a, mask, positions.to(f_v.dtype))  # [B, T, d]
        e_a = self.audio_from_visual(f_a, f_v, mask, positions.to(f_a.dtype))  # [B, T, d]
        fused = torch.cat([f_v, f_a, e_v, e_a], dim=-1)  # [B, T, 4d]
        return FusionOutput(visual=f_v, audio=f_a, fused=fused)
