"""Per-dimension input standardisation of the visual and audio features.

The paper feeds pre-trained TSN / wav2vec 2.0 features to the conv embeddings as they are and
says nothing about normalising them. Those features come in moderate, comparable ranges, but
the weight-free extractors do not: the `lowlevel` descriptor mixes colour means in [0, 1],
log energies around -10 and DCT terms in the tens, and `logmel` is in log-power units around
-10 with a spread of a few units. With raw inputs the first conv sees a handful of large,
nearly constant dimensions (per-speaker appearance) and the small dimensions that carry the
forgery cues are lost in them; training then stays at chance (BENCHMARKS.md, "The demo's
recipe").

So the model standardises every input dimension with a mean and standard deviation computed
over all valid frames of the training split: x' = (x - mean) / std. They are buffers of the
model, hence saved in every checkpoint, so `predict` / `localize` apply exactly what training
used and need nothing else. A fresh model holds the identity (mean 0, std 1); the trainer
sets the statistics before the first step (`RTDeepLoc.set_input_statistics`). Standardising
is a fixed affine map in front of a linear conv, so it does not change what the model can
represent for features that are already well scaled (TSN / wav2vec); it changes how
quickly the optimiser finds it.

Choices: a dimension whose spread is (nearly) zero on the training frames gets std 1, so it
is only centred, never blown up. Statistics are float64 sums over frames (Welford is not
needed at these sizes). Checkpoints written before this module existed lack the buffers and
load with the identity, which is what those models were trained with.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import Tensor

from model.layers import KeepsBuffersMissingFromOldCheckpoints

MIN_STD = 1e-6  # below this a dimension counts as constant: centred, not scaled


def frame_statistics(arrays: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over all frames of all arrays.

    arrays: iterable of [T_i, D] -> (mean [D], std [D]) float32; std is 1 where the spread is
    below MIN_STD. Raises ValueError when there is no frame at all.
    """
    total, total_sq, count = None, None, 0
    for array in arrays:
        x = np.asarray(array, dtype=np.float64)  # [T, D]
        if x.ndim != 2:
            raise ValueError(f"frame_statistics expects [T, D] arrays, got shape {x.shape}")
        if total is None:
            total, total_sq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        total += x.sum(axis=0)
        total_sq += (x * x).sum(axis=0)
        count += x.shape[0]
    if not count:
        raise ValueError("frame_statistics: no frames to compute statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.where(std < MIN_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


class InputStandardizer(KeepsBuffersMissingFromOldCheckpoints):
    """x [B, T, C] -> (x - mean) / std, zero on padding; mean and std are buffers [C]."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))  # [C] identity until set
        self.register_buffer("std", torch.ones(dim))  # [C]

    @torch.no_grad()
    def set_statistics(self, mean, std) -> None:
        """Copy mean [C] and std [C] (numpy or tensor) into the buffers; std must be > 0."""
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"input statistics must be [{self.mean.shape[0]}], got mean "
                             f"{tuple(mean.shape)} and std {tuple(std.shape)}")
        if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("input statistics must be finite with std > 0")
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # x [B, T, C], mask [B, T] -> [B, T, C]
        out = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return out * mask[..., None].to(out.dtype)


def clip_median(x: Tensor, mask: Tensor) -> Tensor:
    """Per-dimension median over each clip's valid frames (lower median for even counts).

    x [B, T, C], mask [B, T] bool -> [B, 1, C].
    """
    ranked = x.masked_fill(~mask[..., None], float("inf")).sort(dim=1).values  # [B, T, C]
    middle = ((mask.sum(dim=1) - 1) // 2).clamp(min=0)  # [B]
    return ranked.gather(1, middle[:, None, None].expand(-1, 1, x.shape[2]))  # [B, 1, C]


def clip_contrast(x: Tensor, mask: Tensor) -> Tensor:
    """Deviation of every frame from its clip's median frame: x - median_t(x), zero on padding.

    x [B, T, C], mask [B, T] -> [B, T, C]. The median, not the mean, so that a forged span
    (often a third of a clip or more) does not drag the reference towards itself.
    """
    out = x - clip_median(x, mask)
    return out * mask[..., None].to(out.dtype)
