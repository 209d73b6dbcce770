"""A learned clip-deviation scorer per modality (rtdl's addition; not in the paper).

What it is: a frame score that is a weighted sum of how far each standardised input
dimension of a frame lies from its clip's median frame, alone and over 5 and 15 frames,
trained with the paper's Top-K MIL on the video labels (is this modality forged?).
A linear function of absolute deviations: it can weigh which dimensions and time scales
matter, and little else.

Why: measured per frame on `rtdl synth` (BENCHMARKS.md, "A learned deviation scorer"),
weak supervision loses most of the evidence the features hold. A frame-supervised MLP on
clip-deviation inputs reaches 0.79 visual / 0.81 audio frame AUC; the same MLP trained from
video labels by Top-K MIL fits the training videos one by one (in exploratory runs its loss
went towards zero) and reaches 0.69 / 0.61, with face swap at chance; RT-DeepLoc's heads
reach 0.67 / 0.53. The linear scorer on absolute deviations, same video labels, same MIL,
has too little capacity for that and reaches 0.79 / 0.68 (face swap 0.85, spectral
smoothing 0.72). The untrained reference (unweighted distance from the clip median) reads
0.61 / 0.52.

Choices:
- Input: the standardised input (after `InputStandardizer`), never the learned embedding,
  so nothing upstream is trained through it and the paper's network trains exactly as
  without it (same gradients, same random draws: the weights start at zero).
- Absolute values: a forgery can push a dimension either way (a face swap to a lighter or a
  darker skin), so the sign of the deviation says nothing about forgery; its size does.
- Weights of either sign: the scorer must be able to discount dimensions that vary in
  authentic footage too; with non-negative weights face swap falls from 0.85 to 0.54
  (`benchmarks/weak_probe.py`).
- Windows 5 and 15 frames (0.2 and 0.6 s at 25 fps): a forged span stands out over several
  frames where single frames are noisy; each window is over valid frames only.
- What a window takes: running medians (`deviation_window_statistic`; "mean" takes the
  running means rtdl used before). A forged span is a step; a 15-frame mean spreads its ends
  7 frames out (so the proposals' ends depend on where a threshold cuts the ramp), a median
  keeps them. On the 2,100-clip benchmark (3 seeds, localizer chosen on dev) the medians
  raised dev avg AP / AR from 54.0 / 44.1 to 55.3 / 45.5 (the tuning objective in every
  seed), the evidence's frame AUC on face swap from 0.735 to 0.764, and test avg AP / AR
  from 53.4 / 41.4 to 56.3 / 43.8, held-out types unchanged (44.9). They became the default
  once the demo chose its localizer on 102 dev clips instead of 50: on 50 clips the demo had
  chosen the learned deviation alone, which fails on held-out types (test / held-out avg AP
  31.8 / 16.5 against 40.0 / 35.6 with the means; BENCHMARKS.md, "Running medians in the
  learned deviation's windows" and "How many dev videos it takes to choose"). Checkpoints
  carry a `window_median` buffer; those written before it load with the means they were
  trained with.
- Views (`visual_deviation_view`, `audio_deviation_view`): "deviation_windows" is the
  above, the absolute deviation of each frame and its window statistics; "window_deviations"
  averages the frames over 1, 5, 15 and 25 frames first and takes each window-mean frame's
  absolute deviation from the clip median of such frames. Speech moves every log-mel band
  from frame to frame; an absolute value taken before the window adds that movement up,
  a mean taken before it lets it cancel and keeps what stays shifted for the whole window:
  another voice, a spliced recording. On the 2,100-clip benchmark (this module trained
  alone, the same Top-K MIL, 4 epochs; `benchmarks/deviation_views.py`) the audio scorer's
  dev frame AUC rose from 0.668 to 0.721 with the window means (revoice 0.585 -> 0.615,
  spectral smoothing 0.680 -> 0.723, splice 0.677 -> 0.723), the visual one's fell from
  0.785 to 0.771 (face swap 0.792 -> 0.754: a swapped face is a step in every frame, which
  the per-frame view keeps sharp). So the audio scorer reads the window means, the visual
  one the deviation windows; checkpoints from before the views read the deviation windows
  in both. Inside `rtdl train` the gain is smaller (the scorer is kept at the network's
  best epoch, the first in every run there): BENCHMARKS.md, "Three audio cues, and where
  recall is lost"; `train.deviation_scorer_epoch: own` keeps each scorer at its own best
  epoch instead (pipeline/scorer_epochs.py).
- Loss: binary cross-entropy of the Top-K MIL pooled logit against "this modality is
  modified" (data/labels.py), the same K as the heads, weighted by
  `deviation_scorer_weight` (0 = not built, the paper).
- Output: sigmoid of the frame logit, offered to the localizer as an evidence kind
  (`evidence="learned_deviation"`) and chosen on dev like the others.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from model.config import DEVIATION_VIEWS, DEVIATION_WINDOW_STATISTICS
from model.layers import KeepsBuffersMissingFromOldCheckpoints
from model.mil import topk_mil_pool
from model.normalize import clip_contrast

WINDOWS = (5, 15)  # frames of the centred windows next to the single-frame view
# frames of the centred windows whose mean frame the "window_deviations" view compares with
# its clip median (1: the frame itself)
MEAN_FRAME_WINDOWS = (1, 5, 15, 25)
# what each window summarises the deviation with unless told (module docstring, "What a
# window takes"; `ModelConfig.deviation_window_statistic`); checkpoints from before the
# median load with the mean they were trained with (`DeviationScorer`)
WINDOW_STATISTIC = "median"


def window_sums(x: Tensor, frames: int) -> Tensor:
    """Centred sums over `frames` (odd) neighbours along T of x [B, T, C], zero outside."""
    half = frames // 2
    padded = F.pad(x, (0, 0, half + 1, half))  # [B, T + frames, C]
    running = padded.cumsum(dim=1)
    return running[:, frames:] - running[:, :-frames]  # [B, T, C]


def masked_moving_average(x: Tensor, mask: Tensor, frames: int) -> Tensor:
    """Centred mean over the valid frames among `frames` neighbours: [B, T, C], 0 on padding."""
    valid = mask[..., None].to(x.dtype)  # [B, T, 1]
    total = window_sums(x * valid, frames)
    count = window_sums(valid, frames).clamp_min(1.0)
    return total / count * valid


def masked_moving_median(x: Tensor, mask: Tensor, frames: int) -> Tensor:
    """Centred median over the valid frames among `frames` (odd) neighbours: [B, T, C], 0 on
    padding (the lower middle value where the count of valid neighbours is even)."""
    half = frames // 2
    valid = mask[..., None]  # [B, T, 1]
    gaps = torch.where(valid, x, torch.full_like(x, float("nan"))).transpose(1, 2)  # [B, C, T]
    padded = F.pad(gaps, (half, half), value=float("nan"))  # [B, C, T + frames - 1]
    median = padded.unfold(2, frames, 1).nanmedian(dim=-1).values.transpose(1, 2)  # [B, T, C]
    return torch.nan_to_num(median, nan=0.0) * valid.to(x.dtype)


def deviation_views(standardised: Tensor, mask: Tensor, statistic: str = WINDOW_STATISTIC) -> Tensor:
    """[B, T, C] -> [B, T, V, C]: |frame - clip median| and its 5- and 15-frame medians (or
    means, `statistic`)."""
    contrast = clip_contrast(standardised, mask)  # [B, T, C]
    summarise = masked_moving_median if statistic == "median" else masked_moving_average
    views = [contrast] + [summarise(contrast, mask, w) for w in WINDOWS]
    return torch.stack(views, dim=2).abs()


def window_deviation_views(standardised: Tensor, mask: Tensor) -> Tensor:
    """[B, T, C] -> [B, T, V, C]: for each window of MEAN_FRAME_WINDOWS, |the window's mean
    frame - the clip median of those means| (module docstring, "Views")."""
    x = standardised.float()
    means = [x if frames == 1 else masked_moving_average(x, mask, frames) for frames in MEAN_FRAME_WINDOWS]
    return torch.stack([clip_contrast(m, mask) for m in means], dim=2).abs()


class DeviationScorer(KeepsBuffersMissingFromOldCheckpoints):
    """Frame logits [B, T] = sum over views and dimensions of weight x |deviation| + bias."""

    # a checkpoint written before `window_median` existed was trained on moving averages,
    # one written before `window_means` on the deviation windows
    OLD_CHECKPOINT_BUFFERS = {"window_median": False, "window_means": False}

    def __init__(self, dim: int, statistic: str = WINDOW_STATISTIC, view: str = "deviation_windows"):
        super().__init__()
        if statistic not in DEVIATION_WINDOW_STATISTICS:
            raise ValueError(f"DeviationScorer statistic: expected one of "
                             f"{DEVIATION_WINDOW_STATISTICS}, got {statistic!r}")
        if view not in DEVIATION_VIEWS:
            raise ValueError(f"DeviationScorer view: expected one of {DEVIATION_VIEWS}, got {view!r}")
        views = len(MEAN_FRAME_WINDOWS) if view == "window_deviations" else len(WINDOWS) + 1
        # zeros: no random draw, so the rest of the model initialises as without this module
        self.weight = nn.Parameter(torch.zeros(views, dim))
        self.bias = nn.Parameter(torch.zeros(()))
        # how the windows summarise and what they read (buffers, so a checkpoint says what
        # it was trained with)
        self.register_buffer("window_median", torch.tensor(statistic == "median"))
        self.register_buffer("window_means", torch.tensor(view == "window_deviations"))

    def forward(self, standardised: Tensor, mask: Tensor) -> Tensor:
        if bool(self.window_means):
            views = window_deviation_views(standardised, mask)  # [B, T, V, C]
        else:
            statistic = "median" if bool(self.window_median) else "mean"
            views = deviation_views(standardised.float(), mask, statistic)  # [B, T, V, C]
        logits = (views * self.weight).sum(dim=(2, 3)) + self.bias  # [B, T]
        return logits * mask.to(logits.dtype)


def deviation_mil_loss(frame_logits: Tensor, mask: Tensor, modified: Tensor, ratio: float) -> Tensor:
    """BCE of the Top-K MIL pooled logit of each video against `modified` [B] bool."""
    video = topk_mil_pool(frame_logits[..., None], mask, ratio)[:, 0]  # [B]
    return F.binary_cross_entropy_with_logits(video, modified.to(video.dtype))
