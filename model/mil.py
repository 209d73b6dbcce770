"""Top-K multiple-instance pooling of frame scores into video scores (paper Sec. 3.4).

s_video = (1/K) * sum of the K largest frame scores, per class, over valid frames only, with
K = max(1, floor(ratio * L)) for a video of L valid frames. Scores are logits: the pooled
logits go to softmax / sigmoid losses, as in the weakly-supervised localization work the
paper follows (CoLA).
"""
from __future__ import annotations

import torch
from torch import Tensor


def mil_k(mask: Tensor, ratio: float) -> Tensor:
    """K per video: max(1, floor(ratio * valid_len)). mask [B, T] -> [B] long."""
    lengths = mask.sum(dim=1).double()
    return (lengths * ratio + 1e-9).floor().long().clamp(min=1)


def topk_mil_pool(frame_scores: Tensor, mask: Tensor, ratio: float) -> Tensor:
    """Mean of the top-K valid frame scores of each class.

    frame_scores [B, T, C], mask [B, T] bool -> video scores [B, C]. Each class ranks frames
    on its own. Padding never takes part, whatever its value.
    """
    k = mil_k(mask, ratio)  # [B]
    ranked = frame_scores.masked_fill(~mask[..., None], float("-inf"))  # [B, T, C]
    ordered = ranked.sort(dim=1, descending=True).values  # [B, T, C]
    take = torch.arange(mask.shape[1], device=mask.device)[None, :] < k[:, None]  # [B, T]
    # zero the untaken entries before summing: -inf * 0 would be NaN
    ordered = ordered.masked_fill(~take[..., None], 0.0)
    return ordered.sum(dim=1) / k[:, None].to(ordered.dtype)  # [B, C]


def authentic_frame_loss(frame_logits: Tensor, mask: Tensor, authentic: Tensor) -> Tensor:
    """Mean BCE against 0 over every valid frame of the videos marked authentic.

    frame_logits [B, T] (one binary head), mask [B, T] bool, authentic [B] bool -> scalar;
    zero (attached) when no video is authentic.
    """
    weight = (mask & authentic[:, None]).to(frame_logits.dtype)  # [B, T]
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        frame_logits, torch.zeros_like(frame_logits), reduction="none")  # [B, T]
    return (losses * weight).sum() / weight.sum().clamp_min(1.0)
