"""Calibrated frame evidence for the localizer: reconstruction error and clip deviation.

The paper's premise (Sec. 3.2) is that the FDN, trained on authentic videos only, cannot
reconstruct forged frames, so its per-frame error marks them; it never says how the error
reaches a proposal. Raw errors are not comparable with the heads' probabilities, and their
scale depends on the modality and on how far training went, so each modality's error is
mapped to its percentile among the errors of *authentic training videos*:

    evidence(e) = fraction of authentic training frames whose error is below e, in [0, 1].

0.99 then reads "higher than 99 % of what authentic footage produces", whatever the
modality or the run, and can be mixed with head scores (`pipeline/proposals.py`,
`error_weight`). The reference is a vector of `N_QUANTILES` quantiles held as a buffer, so
checkpoints carry it and `predict` / `localize` need nothing else; the trainer sets it from
the training split's real videos (`pipeline/train.py`). Until it is set (a fresh model, or
a checkpoint from before this module) the evidence is 0 everywhere, so `error_weight` then
only scales the head scores down and the tuning on dev finds it useless.

Clip deviation (`clip_deviation`) is a second, untrained kind of evidence calibrated the
same way: each frame's distance from its clip's median frame in the standardised input,
divided by sqrt(width). It needs no learning, so it cannot learn the wrong direction: on
rtdl synth the heads and the FDN, trained on the seen forgery types, rank held-out face
blur *inverted* (blur removes detail; the seen types add change), while the distance
from the clip's median marks it at 0.99 wherever the blur covers less than half of the
clip (BENCHMARKS.md, "Why held-out blur came out inverted"). It is no paper component;
the localizer mixes it in only where dev says it helps (`evidence="deviation"`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from model.layers import KeepsBuffersMissingFromOldCheckpoints
from model.normalize import clip_contrast

N_QUANTILES = 201  # the 0, 0.5, ..., 100 th percentiles


class ErrorCalibration(KeepsBuffersMissingFromOldCheckpoints):
    """errors [B, T] -> percentile among authentic training frames, in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("quantiles", torch.zeros(N_QUANTILES))  # [Q] ascending
        self.register_buffer("is_set", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def set_reference(self, errors) -> None:
        """Take the quantiles of these authentic-frame errors (any shape, numpy or tensor)."""
        values = np.asarray(torch.as_tensor(errors).float().cpu()).reshape(-1)
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError("reference errors must be a non-empty set of finite values")
        levels = np.linspace(0.0, 1.0, N_QUANTILES)
        self.quantiles.copy_(torch.as_tensor(np.quantile(values, levels), dtype=torch.float32))
        self.is_set.fill_(True)

    def forward(self, errors: Tensor) -> Tensor:
        # errors [B, T] -> [B, T]: linear interpolation of the empirical CDF between quantiles
        if not bool(self.is_set):
            return torch.zeros_like(errors)
        q = self.quantiles.to(errors.dtype)
        flat = errors.reshape(-1).contiguous()
        upper = torch.searchsorted(q, flat, right=True).clamp(1, len(q) - 1)  # [N]
        lo, hi = q[upper - 1], q[upper]
        frac = ((flat - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
        cdf = (upper - 1 + frac).to(errors.dtype) / (len(q) - 1)
        cdf = torch.where(flat <= q[0], torch.zeros_like(cdf), cdf)
        cdf = torch.where(flat >= q[-1], torch.ones_like(cdf), cdf)
        return cdf.reshape(errors.shape)


def clip_deviation(standardised: Tensor, mask: Tensor) -> Tensor:
    """standardised inputs [B, T, C], mask [B, T] -> [B, T]: L2 distance of each frame from
    its clip's median frame over sqrt(C), so widths of different modalities compare; 0 on padding."""
    return clip_contrast(standardised, mask).float().norm(dim=-1) / float(np.sqrt(standardised.shape[-1]))
