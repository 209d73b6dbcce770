"""Where the picture changes: an untrained per-frame boundary cue for the localizer.

rtdl's addition, not a paper component. The localizer's curves are windowed (the
desynchrony is averaged over 9 frames, the learned deviation over 5 and 15), so a
threshold crossing lands a few frames from a forgery's true start or end, and AR, averaged
over IoU 0.5-0.95, is lost at the high thresholds (BENCHMARKS.md, "Where recall is lost").
A face swap or a frozen span starts and ends with an abrupt change of the picture that no
window blurs: `feature_change` says, for each frame t, how different the `HALF_WINDOW`
frames from t on are from the `HALF_WINDOW` frames before it. `pipeline/proposals.py` moves
a proposal's start or end to a nearby frame where that change stands out in its clip
(`ProposalConfig.snap_frames`), and dev decides whether it does.

Measured on the 2,100-clip benchmark's dev split (BENCHMARKS.md, "Snapping boundaries to
where the picture changes"): within 6 frames of a true boundary, the largest visual change
lies within one frame of it for 65 % of face swap and 87 % of frozen frame boundaries
(chance 23 %). The same statistic on the audio features is at chance (14-27 %), so the
audio has no such cue here; a directional step of the raw desynchrony marks audio
boundaries above chance (31-48 %) but snapping to it lowered dev AR, so it is not offered.

Choices:
- Each clip's features are z-scored per dimension over its valid frames first (mean 0,
  std 1 within the clip), so the change is measured against how much each dimension moves
  in that clip; on dev this snapped better than the model's global standardisation
  (+1.4 against +0.9 dev avg AR, seeds 0-2).
- The change is the L2 norm of the difference of the two window means over sqrt(width), 0
  where either window would leave the clip (t < HALF_WINDOW or t > n - HALF_WINDOW).
- No training and no labels: the cue cannot learn the seen forgeries' direction.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

HALF_WINDOW = 4  # frames on each side of a candidate boundary (0.16 s at 25 fps)


def feature_change(features: Tensor, mask: Tensor, half_window: int = HALF_WINDOW) -> Tensor:
    """features [B, T, C], mask [B, T] (valid frames a prefix) -> [B, T] float32: at frame t,
    the distance between the mean of frames [t, t + k) and of [t - k, t) of the clip-z-scored
    features, over sqrt(C); 0 where a window leaves the clip and on padding."""
    if half_window < 1:
        raise ValueError(f"half_window: must be >= 1, got {half_window}")
    x = features.double()
    valid = mask[..., None].to(x.dtype)  # [B, T, 1]
    count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)  # [B, 1, 1]
    mean = (x * valid).sum(dim=1, keepdim=True) / count
    std = (((x - mean) * valid).pow(2).sum(dim=1, keepdim=True) / count).sqrt()
    z = (x - mean) / (std + 1e-6) * valid  # [B, T, C]
    k = half_window
    running = torch.cat([torch.zeros_like(z[:, :1]), z.cumsum(dim=1)], dim=1)  # [B, T + 1, C]
    batch, length, _ = z.shape
    out = torch.zeros(batch, length, dtype=torch.float64, device=features.device)
    t = torch.arange(k, max(k, length - k + 1), device=features.device)  # windows inside the array
    if len(t):
        after = running[:, t + k] - running[:, t]  # [B, n, C] sums of frames [t, t + k)
        before = running[:, t] - running[:, t - k]  # frames [t - k, t)
        out[:, t] = (after - before).norm(dim=-1) / (k * math.sqrt(z.shape[-1]))
    # a window must lie within the clip's valid frames: t + k <= n
    n = mask.sum(dim=1, keepdim=True)  # [B, 1]
    frames = torch.arange(length, device=features.device)[None]
    inside = (frames >= k) & (frames + k <= n)
    return (out * inside).float()
