"""Asymmetric Intra-video Contrastive Loss, AICL (paper Sec. 3.3, Eq. 3), as pure functions.

Per modality and per video, the local feature f_local is the mean of the original features
F at the K frames with the largest reconstruction error ("forgery hotspots"); K is clamped to
the number of candidate frames. Only authentic videos are anchors; each anchor's hardest
positive is the farthest other authentic video, its hardest negative the closest forged one;
the loss is the squared-distance triplet of Eq. 3 averaged over anchors.

Choices:
- The paper writes y in {0, 1}; with 4-class labels and one loss per modality, "authentic"
  means "this modality is not modified" (so the visual stream of an audio-only fake is an
  authentic visual sample) and "forged" means "this modality is modified". The caller
  (`model/rtdeeploc.py`) passes that per-modality flag.
- Hotspots are chosen among `candidates` frames: the frames the FDN reconstructed while
  hidden (at training time the visible frames' errors say nothing about forgery).
- The frame selection is discrete (no gradient); gradients flow into the selected features.
- A batch with fewer than two authentic videos or no forged one returns an exact zero that
  stays attached to the graph (no NaN, and DDP sees a gradient for every parameter).
"""
from __future__ import annotations

import torch
from torch import Tensor


def local_features(features: Tensor, scores: Tensor, candidates: Tensor, k: int) -> Tensor:
    """Mean of each video's features at its top-k frames by score.

    features [B, T, D], scores [B, T] (reconstruction errors), candidates [B, T] bool
    -> f_local [B, D]. k is clamped to each video's number of candidates (at least 1 used:
    a video without candidates must not be passed).
    """
    batch, length, _ = features.shape
    k_max = min(k, length)
    ranked = scores.detach().masked_fill(~candidates, float("-inf"))  # [B, T]
    top = ranked.topk(k_max, dim=1).indices  # [B, K]
    k_each = candidates.sum(dim=1).clamp(min=1, max=k_max)  # [B]
    take = torch.arange(k_max, device=features.device)[None] < k_each[:, None]  # [B, K]
    picked = features.gather(1, top[..., None].expand(-1, -1, features.shape[2]))  # [B, K, D]
    picked = picked * take[..., None].to(picked.dtype)
    return picked.sum(dim=1) / k_each[:, None].to(picked.dtype)  # [B, D]


def aicl_triplet_loss(local: Tensor, is_authentic: Tensor, margin: float) -> Tensor:
    """Eq. 3 on local features: mean over authentic anchors of
    max(||a - p_hardest||^2 - ||a - n_hardest||^2 + m, 0).

    local [B, D], is_authentic [B] bool -> scalar; 0 when < 2 authentic or no forged videos.
    """
    n_auth = int(is_authentic.sum())
    if n_auth < 2 or n_auth == is_authentic.numel():
        return local.sum() * 0.0
    sq_dist = (local[:, None, :] - local[None, :, :]).pow(2).sum(dim=-1)  # [B, B]
    anchors = is_authentic.nonzero().flatten()  # [A]
    rows = sq_dist[anchors]  # [A, B]
    eye = torch.zeros_like(rows, dtype=torch.bool)
    eye[torch.arange(len(anchors)), anchors] = True  # j != i
    pos_ok = is_authentic[None, :] & ~eye  # [A, B]
    neg_ok = ~is_authentic[None, :].expand_as(rows)  # [A, B]
    hardest_pos = rows.masked_fill(~pos_ok, float("-inf")).max(dim=1).values  # [A] farthest real
    hardest_neg = rows.masked_fill(~neg_ok, float("inf")).min(dim=1).values  # [A] closest fake
    return torch.relu(hardest_pos - hardest_neg + margin).mean()


def aicl_loss(features: Tensor, errors: Tensor, candidates: Tensor, is_authentic: Tensor,
              k: int, margin: float) -> Tensor:
    """AICL of one modality: top-K hotspot pooling then the asymmetric triplet (Eq. 3).

    features [B, T, D] (original F), errors [B, T], candidates [B, T] bool (frames eligible as
    hotspots, each video needs at least one), is_authentic [B] bool -> scalar.
    """
    return aicl_triplet_loss(local_features(features, errors, candidates, k), is_authentic,
                             margin)
