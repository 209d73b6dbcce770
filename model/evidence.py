"""Reconstruction error as calibrated frame evidence for the localizer.

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
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from model.layers import KeepsBuffersMissingFromOldCheckpoints

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
