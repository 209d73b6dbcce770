"""From frame-level forgery scores to scored temporal proposals (paper Sec. 3.1).

The paper says only that "the model dynamically routes the localization task to the most
pertinent modality branch (visual, audio, or joint) based on the predicted video-level
label" and that "the final temporal boundaries are then determined by thresholding and
merging the predicted frame-level scores". Everything else here is our choice, written
down so it can be changed in one place:

Routing (`route`): argmax of the 4 class probabilities (order of `data.labels.LABELS`):
visual_only -> visual frame scores, audio_only -> audio scores, both -> joint scores.
A video predicted *real* still gets proposals, from the joint scores, so that AR is
meaningful; their scores are multiplied by the video's fake probability
(1 - p_real, see `_final_score`) so that AP is honest: a confident "real" puts them at
the bottom of the pooled ranking (unless `down_weight_real` is off, see "Score").

Evidence (`branch_curve`): each branch's curve is (1 - error_weight) x the head score +
error_weight x the reconstruction-error percentile among authentic training frames
(`model/evidence.py`; the joint branch takes the larger of the two modalities'), then a
centred moving average over `smooth_frames` frames. The paper says the FDN's errors provide
the fine-grained cues but not how they reach a segment; mixing them in with a weight chosen
on dev lets the data decide, and 0 keeps the paper's heads-only reading. Smoothing is the
training-free temporal consistency step that weakly-supervised localization work uses
against isolated frame spikes. `evidence="deviation"` mixes in, instead of the FDN's error,
the untrained clip deviation of the input (each frame's distance from its clip's median
frame, as a percentile among authentic training frames): a cue no training can turn
around, chosen on dev like the rest. `error_modalities` mixes the evidence into one
modality's curve only: on recorded footage the audio reconstruction error marked forged
audio at 0.80 frame AUC while the visual one sat at chance, and on rtdl synth the audio
error marks held-out time stretch (0.58-0.65) while the visual error ranks held-out blur
inverted (0.19-0.26), so one weight for both would have to give up one of them; on the
2,100-clip benchmark dev chose the clip deviation for the visual curve only in 4 of 6
runs (BENCHMARKS.md, "Real words in the synth").

The FDN's error as an outlier (`evidence="sync_and_learned_deviation_or_reconstruction_outlier"`):
an FDN trained on authentic clips alone (`model.fdn_view: own`) marks what breaks the
footage's own continuity (held-out blur at frame AUC 0.99, frozen frames 0.94) and nothing
of a plausible other face or voice (0.45-0.59), so averaging its error in with the other
cues dilutes them wherever it has nothing to say. This kind keeps the mean of the
desynchrony and the learned deviation and raises a frame to the error's percentile only
where the error is above RECONSTRUCTION_OUTLIER_LEVEL (0.99) of authentic training frames'.
0.99 is a false-alarm rate fixed in advance (1 % of authentic frames), not a value chosen on
any split: dev holds no forgery that only the FDN marks, so it could not choose it. Per
frame on the 2,100-clip benchmark (own-view FDN, seeds 0-2) it lifts held-out blur from
0.69 to 0.82 and costs the seen visual forgeries 0.01; dev, which holds no blur, chose it
in none of three runs (BENCHMARKS.md, "A second pass over the evidence, and the FDN's
outliers").

Curve normalisation (`curve_normalization`): proposal scores are pooled over all videos
before AP is computed, so a curve's *level* matters as much as its shape. A trained head's
frame probabilities are calibrated differently from video to video (saturated near 1 in
some, flat near 0 in others) and from seed to seed, which makes the inner-minus-outer
contrast of one video incomparable with another's. "rank" replaces each curve by its
within-video ranks scaled to [0, 1] (ties share their average rank): the ordering of
frames, which is all the frame AUC measures, is kept; the per-video scale is dropped and the
video-level probability alone says how likely a video is to hold a forgery. Measured on
rtdl synth (BENCHMARKS.md): training a few epochs longer left the routed curve's frame AUC
unchanged but lowered tuned test AP from 31.4 to 18.4; ranks brought it back to 31.0.

Routing alternatives (`routing`): a wrong class prediction sends a video to the wrong
branch (routing accuracy is 0.3-0.45 on rtdl synth, see BENCHMARKS.md), so besides the
paper's argmax there is "soft" (both modality curves propose, each proposal scored as for a
predicted-real video with P(modality modified) in place of the fake probability, then
suppressed together) and "joint" (the joint curve for every video). Which one is used is
chosen on dev with the other settings.

Evidence in soft routing (`routing_evidence_weight`): P(modality modified) comes from the
class head, which on the 2,100-clip benchmark tells the forged modality apart from the
untouched one poorly (dev video-level ROC AUC 0.74-0.81 visual, 0.61-0.69 audio, seeds
0-2), while the highest value of the modality's own curve tells it better (0.88-0.91
visual, 0.73-0.81 audio; a forgery leaves a peak, an untouched stream rarely does). With
weight w the probability soft routing weighs a modality's proposals by is (1 - w) * the
class head's + w * the curve's maximum (both in [0, 1]; not with rank-normalized curves,
whose maximum is 1 in every video and says nothing). It moves proposals of videos whose
curve has no peak below those of videos whose curve has one, which the pooled AP ranks
across videos; within one video the order hardly changes (the run's own level is already
in its score). Held fixed on each seed's dev-chosen settings, w = 0.25 raised dev avg AP
by +1.5 / +2.1 / +1.3 (avg AR -0.5 to +0.2); 0.5 and 0.75 did better in one seed and worse
in the others. It is in the dev grid (0 or 0.25) and counts only with soft routing on curves
kept as they are (`curve_normalization` "none"). On the
benchmark dev chose 0.25 in every seed, and test avg AP moved by +0.4, avg AR by -0.4, both
inside the spread over seeds (BENCHMARKS.md, "Evidence in the routing").

Candidates: the score curve is thresholded at several levels: absolute levels
(`thresholds`, scores are probabilities in [0, 1]) and levels relative to the video's own
score range (`relative_thresholds`, lo + t * (hi - lo)), because an under-trained or
mis-calibrated model can put every frame of a video above (or below) every absolute
level. Above-threshold frames are grouped into runs; runs separated by fewer than
`merge_gap_frames` frames are merged (the gap frames join the run); runs shorter than
`min_frames` are dropped. Each threshold contributes its runs; exact duplicates (same
start and end frame) keep only their best score.

Score: inner-minus-outer contrast (the mean score inside the run minus the mean score in
a context window on both sides, each `outer_ratio` x run length wide, at least one frame,
clipped to the video; a run covering the whole video has no context, so its contrast is
0: otherwise an untrained, uniformly high curve would rank "the whole video" first) plus
`level_weight` x the run's level plus `video_weight` x the video-level fake
probability. The level matters once the curve is evidence calibrated against authentic
frames: a run at the 99th percentile of authentic footage is more telling than one with the
same contrast at the 60th, and proposal scores are pooled over videos (0 keeps the
contrast alone; on the 2,100-clip benchmark dev chose 0.5 or 1 in every run, and the grid
with it raised dev avg AP from 43.9 to 47.8, BENCHMARKS.md "Audio-visual desynchrony").
The level is the run's 10th-percentile curve value (`level_quantile`), not its mean: a run
that swallowed the dip between two forged spans (a low threshold merges them) keeps a high
mean but not a high low quantile, so the spans themselves rank above it. On the 2,100-clip
benchmark's dev split, with each seed's dev-chosen settings, the 10th percentile raised avg
AP by +0.8 / +1.1 / +2.1 and avg AR by +1.0 / +0.5 / +2.4 over the mean (the minimum and
the 5th or 20th percentile were within 0.4 avg AP and 1.0 avg AR of it; BENCHMARKS.md,
"The level of a run").
The valley (`valley_weight`, `run_valley`): a low quantile still misses a short dip in a
long run (a 5-frame gap is 5 % of a 100-frame run), and on the 2,100-clip benchmark's dev
split the top proposal that cost recall at 2 proposals was most often twice as long as the
forged span it overlapped, a run over two spans and the gap between them (seed 0: 62 of 85
spans missed at IoU 0.7 that a candidate held). So the run's deepest dip, how far its curve
falls below the lower of the peaks on either side, is subtracted from the score: one hump
costs nothing, two humps cost their gap's depth. Held fixed on each seed's dev-chosen
settings, a weight of 1 raised dev's objective by +1.1 / +0.7 / +2.8 (seeds 0-2), mostly in
avg AP, and halved the top proposals over two spans; in the dev grid, dev chose 1 in all
three seeds, and test avg AP rose in every seed (+1.2 seen, +2.5 held-out on the mean, within
the spread over seeds; BENCHMARKS.md, "The valley of a run").
The length (`length_weight`): contrast and level are means, so a 10-frame blip of noise
that happens to rise as high as a forged span scores as high as a 40-frame one. Adding
length_weight x ln(the run's seconds) gives a longer run of the same contrast the edge
(a 0.4 s run loses 0.09 at weight 0.1, a 2 s one gains 0.07). Held fixed on each seed's
dev-chosen settings on the 2,100-clip benchmark, 0.1 raised the dev objective by +0.9 / +0.9
/ +0.7 (avg AP +1.4 / +0.7 / +0.8, avg AR +0.3 / +1.2 / +0.7), 0.05 by less and 0.2 lowered
it in two seeds. In the dev grid dev chose 0.1 in all three seeds, and test avg AP rose in
every seed (+2.2 seen, +3.2 held-out on the mean, more than the spread over seeds;
BENCHMARKS.md, "Where the search starts, and the length of a run"). A prior on length is a
property of the data (LAV-DF's forged words are short), so it is chosen on dev (0 or 0.1)
like the rest; a negative weight prefers short runs.
For a video predicted real: score = p_fake * max(contrast + level_weight * level -
valley_weight * valley + length_weight * ln(seconds) + video_weight * p_fake, 0), which
keeps the order of its own proposals. `down_weight_real=False` drops that factor (argmax
and joint routing; soft routing always weighs each modality's proposals by its
probability): on the 2,100-clip benchmark, whose classifier routes 40 % of videos right,
the factor cost 4 dev avg AP with each seed's dev-chosen settings held fixed (49.2 -> 53.3
without it), so it is in the dev grid (BENCHMARKS.md, "Trusting the class prediction
less").

Boundaries (`snap_frames`): the curves are windowed (the desynchrony over 9 frames, the
learned deviation over 5 and 15), so a threshold crossing lands a few frames from where a
forgery starts or ends, and AR, averaged over IoU 0.5-0.95, is lost at the high
thresholds. A face swap or a frozen span starts and ends with an abrupt change of the
picture (`VideoScores.visual_change`, model/boundaries.py): with `snap_frames` > 0 each
candidate run's start and end move to the frame within that many frames where the change
is largest, if it is at least the clip's `snap_quantile` (0.95: among the clip's largest
5 %); otherwise the end stays. Only the picture's change is used: on the 2,100-clip
benchmark the audio features show no change at audio boundaries, and snapping to a step of
the desynchrony lowered dev AR. Held fixed on each seed's dev-chosen settings, snapping by
up to 2-4 frames raised dev avg AR by +1.4 (seeds 0-2) with avg AP unchanged; with
`snap_frames` in the dev grid (0 keeps the threshold's ends), dev chose 3 in 3 of 3 runs,
and test avg AR rose by +1.2 on seen and +2.8 on held-out types while avg AP fell by 0.5,
inside its spread (BENCHMARKS.md, "Snapping boundaries to where the picture changes").

Suppression: class-agnostic NMS, `nms="hard"` (drop a proposal whose IoU with a kept one
is > `nms_iou`), `"soft"` (Gaussian soft-NMS: score *= exp(-IoU^2 / `soft_sigma`)) or
`"none"`. IoU is computed in seconds, intersection over union, no "+1". At most
`max_proposals` proposals (100, what the official evaluators read at most) per video,
sorted by score, highest first. Times are frame index / fps (a run of frames [s, e) spans
[s / fps, e / fps)), clipped to the video's duration.

Defaults: the values below were set by reasoning, not measured; they are meant to be
chosen on a validation split (`grid_search`, run by the demo / ablation on the dev split,
never on test), and the chosen values recorded with the results that use them.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from data.labels import LABEL_INDEX, LABELS, REAL, branch_of, fake_probability, modality_probabilities
from pipeline.metrics import average_ranks

log = logging.getLogger(__name__)

NMS_MODES = ("hard", "soft", "none")
ROUTING_MODES = ("argmax", "soft", "joint")
CURVE_NORMALIZATIONS = ("none", "rank")
EVIDENCE_KINDS = ("reconstruction", "deviation", "learned_deviation", "sync",
                  "sync_and_learned_deviation", "sync_learned_deviation_and_reconstruction",
                  "sync_and_learned_deviation_or_reconstruction_outlier",
                  "sync_or_spectral_detail", "sync_and_learned_deviation_or_spectral_detail",
                  "sync_and_learned_deviation_or_audio_cues")
# the VideoScores field (after "<modality>_") each per-modality evidence kind reads; "sync"
# reads the shared `sync_evidence`; the other kinds combine two or three of them
# (`evidence_curve`)
EVIDENCE_FIELDS = {"reconstruction": "evidence", "deviation": "deviation_evidence",
                   "learned_deviation": "learned_deviation"}
ERROR_MODALITIES = ("both", "audio", "visual")
# a reconstruction error above this share of authentic training frames' is an outlier
# (module docstring, "Evidence"): a fixed false-alarm rate of 1 % of authentic frames
RECONSTRUCTION_OUTLIER_LEVEL = 0.99


@dataclass(frozen=True)
class ProposalConfig:
    # absolute threshold levels on frame forgery probabilities in [0, 1]
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    # levels as fractions of the video's own score range: lo + t * (hi - lo); () disables
    relative_thresholds: tuple[float, ...] = (0.25, 0.5, 0.75)
    # runs separated by a gap of fewer than this many frames are merged (<= 1: no merging)
    merge_gap_frames: int = 3
    # runs (after merging) shorter than this many frames are dropped
    min_frames: int = 2
    # width of the outer context window on each side, as a fraction of the run length
    outer_ratio: float = 0.25
    # weight of the video-level fake probability (1 - p_real) added to each proposal score
    video_weight: float = 0.5
    # weight of the run's level (not only its contrast) in the score
    level_weight: float = 0.0
    # the run's level is this quantile of its curve values (None: their mean, what rtdl
    # used before); a low quantile keeps a run that swallowed a dip between two forged spans
    # below the spans themselves (module docstring, "Score")
    level_quantile: float | None = 0.1
    # weight of the run's deepest dip (`run_valley`), subtracted from its score: a run that
    # swallowed the gap between two forged spans ranks below the spans (module docstring, "Score")
    valley_weight: float = 0.0
    # weight of the natural log of the run's length in seconds, added to its score: at an equal
    # contrast, a longer run is less likely a blip of noise (module docstring, "Score"); a
    # negative weight prefers short runs
    length_weight: float = 0.0
    # argmax / joint routing: multiply the proposal scores of a video predicted real by its
    # fake probability (True, the module docstring's reading); False scores them like any
    # other video's, for when the curves are more reliable than the class prediction
    down_weight_real: bool = True
    # "hard", "soft" (Gaussian) or "none"
    nms: str = "soft"
    # hard NMS: drop a proposal whose IoU with a higher-scored kept one is > this
    nms_iou: float = 0.5
    # soft NMS: Gaussian decay width, score *= exp(-iou^2 / soft_sigma)
    soft_sigma: float = 0.5
    # at most this many proposals per video
    max_proposals: int = 100
    # weight of the calibrated reconstruction-error evidence in every branch's frame curve:
    # curve = (1 - w) * head score + w * error percentile (0: heads only, as the paper reads)
    error_weight: float = 0.0
    # centred moving average over this many frames before thresholding (1: none)
    smooth_frames: int = 1
    # "argmax": one branch chosen by the predicted class (the paper); "soft": the visual and
    # audio curves both give proposals, each scored by its modality's probability; "joint":
    # the joint curve for every video (no routing decision to get wrong)
    routing: str = "argmax"
    # soft routing: P(modality modified) = (1 - w) * the class head's + w * the maximum of
    # the modality's curve (module docstring, "Evidence in soft routing"); 0: the class only;
    # ignored with curve_normalization "rank"
    routing_evidence_weight: float = 0.0
    # "none": the curve's values as they are (the paper); "rank": each frame's rank within
    # its video's curve, scaled to [0, 1], so proposal scores are comparable across videos
    # whatever the head's calibration (see the module docstring)
    curve_normalization: str = "none"
    # which evidence `error_weight` mixes in: "reconstruction" (the FDN's error, the paper's
    # cue), "deviation" (the untrained clip deviation of the input), "learned_deviation"
    # (the learned deviation scorer's frame probability, model/deviation_scorer.py), "sync"
    # (the audio-visual desynchrony, model/av_sync.py), "sync_and_learned_deviation"
    # (the mean of the last two), "sync_learned_deviation_and_reconstruction" (the mean of
    # those two and the FDN's error) or "sync_and_learned_deviation_or_reconstruction_outlier"
    # (that mean of two, raised to the FDN's error where the error is an outlier among
    # authentic training frames, `evidence_curve`); "sync_or_spectral_detail" (the audio
    # curve takes the larger of the desynchrony and the spectral detail, model/spectral_detail.py,
    # squared, the visual curve the desynchrony) or "sync_and_learned_deviation_or_spectral_detail"
    # (the same audio curve, the visual curve the mean of the desynchrony and its learned
    # deviation)
    evidence: str = "reconstruction"
    # which modalities' curves the evidence is mixed into: "both", or only "audio" / "visual"
    # (the other branch keeps its head score; the joint branch takes the chosen modality's
    # evidence). One modality's error can mark forgeries while the other's points the wrong
    # way (module docstring, "Evidence")
    error_modalities: str = "both"
    # move each run's start and end to the frame within this many frames where the picture
    # changes most (`VideoScores.visual_change`), when that change is at least the clip's
    # `snap_quantile`; 0: the ends where the threshold put them (module docstring, "Boundaries")
    snap_frames: int = 0
    snap_quantile: float = 0.95

    def __post_init__(self) -> None:
        if self.nms not in NMS_MODES:
            raise ValueError(f"ProposalConfig.nms: expected one of {NMS_MODES}, got {self.nms!r}")
        if not self.thresholds and not self.relative_thresholds:
            raise ValueError("ProposalConfig: thresholds and relative_thresholds are both empty")
        if self.min_frames < 1:
            raise ValueError(f"ProposalConfig.min_frames: must be >= 1, got {self.min_frames}")
        if self.max_proposals < 1:
            raise ValueError(f"ProposalConfig.max_proposals: must be >= 1, got {self.max_proposals}")
        if self.level_weight < 0:
            raise ValueError(f"ProposalConfig.level_weight: must be >= 0, got {self.level_weight}")
        if self.valley_weight < 0:
            raise ValueError(f"ProposalConfig.valley_weight: must be >= 0, got {self.valley_weight}")
        if not math.isfinite(self.length_weight):
            raise ValueError(f"ProposalConfig.length_weight: must be finite, got {self.length_weight}")
        if self.level_quantile is not None and not 0.0 <= self.level_quantile <= 1.0:
            raise ValueError(f"ProposalConfig.level_quantile: must be in [0, 1] or None, "
                             f"got {self.level_quantile}")
        if self.outer_ratio < 0:
            raise ValueError(f"ProposalConfig.outer_ratio: must be >= 0, got {self.outer_ratio}")
        if self.soft_sigma <= 0:
            raise ValueError(f"ProposalConfig.soft_sigma: must be > 0, got {self.soft_sigma}")
        if not 0.0 <= self.error_weight <= 1.0:
            raise ValueError(f"ProposalConfig.error_weight: must be in [0, 1], got {self.error_weight}")
        if self.smooth_frames < 1:
            raise ValueError(f"ProposalConfig.smooth_frames: must be >= 1, got {self.smooth_frames}")
        if not 0.0 <= self.routing_evidence_weight <= 1.0:
            raise ValueError(f"ProposalConfig.routing_evidence_weight: must be in [0, 1], "
                             f"got {self.routing_evidence_weight}")
        if self.routing not in ROUTING_MODES:
            raise ValueError(f"ProposalConfig.routing: expected one of {ROUTING_MODES}, got {self.routing!r}")
        if self.evidence not in EVIDENCE_KINDS:
            raise ValueError(f"ProposalConfig.evidence: expected one of {EVIDENCE_KINDS}, "
                             f"got {self.evidence!r}")
        if self.error_modalities not in ERROR_MODALITIES:
            raise ValueError(f"ProposalConfig.error_modalities: expected one of {ERROR_MODALITIES}, "
                             f"got {self.error_modalities!r}")
        if self.snap_frames < 0:
            raise ValueError(f"ProposalConfig.snap_frames: must be >= 0, got {self.snap_frames}")
        if not 0.0 <= self.snap_quantile <= 1.0:
            raise ValueError(f"ProposalConfig.snap_quantile: must be in [0, 1], got {self.snap_quantile}")
        if self.curve_normalization not in CURVE_NORMALIZATIONS:
            raise ValueError(f"ProposalConfig.curve_normalization: expected one of "
                             f"{CURVE_NORMALIZATIONS}, got {self.curve_normalization!r}")


@dataclass(frozen=True)
class VideoScores:
    """Everything proposal generation needs for one video (numpy, valid frames only)."""
    class_probs: np.ndarray  # [4] in the order of LABELS
    visual_scores: np.ndarray  # [T] frame forgery probabilities of the visual branch
    audio_scores: np.ndarray  # [T] audio branch
    joint_scores: np.ndarray  # [T] joint (fused) branch
    fps: float
    duration: float  # seconds
    # [T] reconstruction-error percentiles among authentic training frames (model/evidence.py);
    # None: no evidence (treated as zeros)
    visual_evidence: np.ndarray | None = None
    audio_evidence: np.ndarray | None = None
    # [T] clip-deviation percentiles among authentic training frames (model/evidence.py);
    # None: treated as zeros
    visual_deviation_evidence: np.ndarray | None = None
    audio_deviation_evidence: np.ndarray | None = None
    # [T] the learned deviation scorer's frame probabilities; None: treated as zeros
    visual_learned_deviation: np.ndarray | None = None
    audio_learned_deviation: np.ndarray | None = None
    # [T] the audio one's percentile among authentic training frames; None: treated as zeros
    audio_learned_deviation_evidence: np.ndarray | None = None
    # [T] audio-visual desynchrony percentile among authentic training frames (one curve for
    # both modalities, model/av_sync.py); None: treated as zeros
    sync_evidence: np.ndarray | None = None
    # [T] the audio's spectral-detail percentile among authentic training frames
    # (model/spectral_detail.py, log-mel audio only); None: treated as zeros
    spectral_detail_evidence: np.ndarray | None = None
    # [T] how much the picture changes at each frame (model/boundaries.py), what
    # `snap_frames` moves boundaries onto; None: no snapping
    visual_change: np.ndarray | None = None


# ---------------------------------------------------------------- routing


def predicted_label(class_probs: Sequence[float]) -> str:
    """Name (from LABELS) of the argmax class."""
    probs = np.asarray(class_probs, dtype=np.float64).reshape(-1)  # [4]
    if probs.shape[0] != len(LABELS):
        raise ValueError(f"class_probs: expected {len(LABELS)} values {LABELS}, got {probs.shape[0]}")
    return LABELS[int(np.argmax(probs))]


def route(class_probs: Sequence[float]) -> str:
    """Which branch localizes this video: "visual", "audio" or "joint" (Sec. 3.1; a video
    predicted real is localized on the joint branch, see the module docstring)."""
    return branch_of(LABEL_INDEX[predicted_label(class_probs)])


# ---------------------------------------------------------------- candidate runs


def find_runs(above: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a bool [T] array, as (start, end) with end exclusive."""
    above = np.asarray(above, dtype=bool).reshape(-1)  # [T]
    padded = np.concatenate([[False], above, [False]]).astype(np.int8)  # [T+2]
    edges = np.diff(padded)  # [T+1]: +1 where a run starts, -1 one past where it ends
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def runs_per_level(scores: np.ndarray, levels: Sequence[float]) -> list[list[tuple[int, int]]]:
    """`find_runs(scores >= level)` for each of `levels`, all levels in one pass over the
    curve (tuning thresholds every video's curves at a dozen levels for each of about a
    thousand settings)."""
    if not len(levels):
        return []
    above = np.asarray(scores).reshape(1, -1) >= np.asarray(levels, dtype=np.float64)[:, None]  # [L, T]
    padded = np.zeros((above.shape[0], above.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = above
    edges = np.diff(padded, axis=1)  # [L, T + 1]: +1 where a run starts, -1 one past its end
    start_level, starts = np.nonzero(edges == 1)  # row-major: by level, then by frame
    _, ends = np.nonzero(edges == -1)  # each level's k-th end closes its k-th start
    bounds = [0, *np.cumsum(np.bincount(start_level, minlength=len(levels))).tolist()]
    runs = list(zip(starts.tolist(), ends.tolist()))
    return [runs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def merge_runs(runs: list[tuple[int, int]], merge_gap_frames: int) -> list[tuple[int, int]]:
    """Merge consecutive runs whose gap (frames between them) is < merge_gap_frames."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < merge_gap_frames:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def threshold_levels(scores: np.ndarray, cfg: ProposalConfig) -> list[float]:
    """Absolute levels plus levels relative to this curve's range (skipped when flat)."""
    levels = [float(t) for t in cfg.thresholds]
    if scores.size and cfg.relative_thresholds:
        lo, hi = float(scores.min()), float(scores.max())
        if hi - lo > 1e-6:
            levels += [lo + float(t) * (hi - lo) for t in cfg.relative_thresholds]
    return levels


def level_runs(scores: np.ndarray, cfg: ProposalConfig) -> list[list[tuple[int, int]]]:
    """Each threshold level's runs (`threshold_levels`), merged over gaps shorter than
    `cfg.merge_gap_frames` and without those shorter than `cfg.min_frames`."""
    return [[run for run in merge_runs(runs, cfg.merge_gap_frames) if run[1] - run[0] >= cfg.min_frames]
            for runs in runs_per_level(scores, threshold_levels(scores, cfg))]


def candidate_runs(scores: np.ndarray, cfg: ProposalConfig,
                   change: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Distinct frame runs (start, end exclusive) over all threshold levels, their ends
    moved onto `change` (`snap_runs`) when `cfg.snap_frames` > 0 and the video has it."""
    found = {run for runs in level_runs(scores, cfg) for run in runs}
    if cfg.snap_frames and change is not None:
        found = set(snap_runs(sorted(found), change, cfg))
    return sorted(found)


def snap_runs(runs: list[tuple[int, int]], change: np.ndarray,
              cfg: ProposalConfig) -> list[tuple[int, int]]:
    """Each run's start and end moved to the frame within `cfg.snap_frames` of it where
    `change` [T] (the picture's change at each frame, model/boundaries.py) is largest (the
    nearest of equal maxima), when that change is above 0 and at least the clip's
    `cfg.snap_quantile`; a run that would become shorter than `cfg.min_frames` keeps its
    ends (module docstring, "Boundaries")."""
    change = np.asarray(change, dtype=np.float64).reshape(-1)  # [T]
    if change.size == 0:
        return runs
    floor = linear_quantile(change, cfg.snap_quantile)
    target = snap_targets(change, cfg.snap_frames, floor, max((end for _, end in runs), default=0))
    snapped = []
    for start, end in runs:
        new_start, new_end = int(target[start]), int(target[end])
        snapped.append((new_start, new_end) if new_end - new_start >= cfg.min_frames else (start, end))
    return snapped


def snap_targets(change: np.ndarray, radius: int, floor: float, last_frame: int) -> np.ndarray:
    """[last_frame + 1]: where `snap_runs` moves a boundary at each frame 0..last_frame: the
    frame within `radius` of it (inside the clip) where `change` [T] is largest, the nearest
    of equal maxima and the earlier of two as near, when that change is above 0 and at least
    `floor`; otherwise the frame itself. One table per curve instead of a search per
    boundary: tuning snaps every candidate run of every video for each setting."""
    frames = np.arange(last_frame + 1)
    if radius < 1:
        return frames
    # -inf outside the clip, so a window clipped at an edge never picks a frame beyond it
    right = max(0, last_frame + radius + 1 - change.size)
    padded = np.concatenate([np.full(radius, -np.inf), change, np.full(right, -np.inf)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)[:last_frame + 1]
    offsets = np.arange(-radius, radius + 1)
    peak = windows.max(axis=1)  # [last_frame + 1]
    nearness = 2 * np.abs(offsets) + (offsets > 0)  # nearest first, then the earlier
    choice = np.argmin(np.where(windows == peak[:, None], nearness, np.iinfo(np.int64).max), axis=1)
    moves = np.isfinite(peak) & (peak >= floor) & (peak > 0)
    return np.where(moves, frames + offsets[choice], frames)


def run_contrasts(scores: np.ndarray, runs: Sequence[tuple[int, int]], outer_ratio: float) -> np.ndarray:
    """[N] inner-minus-outer contrast of each run (start, end exclusive) of `scores` [T]: the
    mean score in frames [start, end) minus the mean in the context window on both sides.

    The window is max(1, round(outer_ratio * length)) frames wide on each side, clipped to
    the video; with no outside frames at all there is no contrast to measure: 0. All runs at
    once: tuning scores every candidate run of every video for each of about a thousand
    settings, and a mean per slice made this the localizer's slowest step. Each slice is
    summed on its own (`slice_sums`), not read off one running total, so runs over equal
    values score exactly alike and ties keep their order (by start time).
    """
    if not runs:
        return np.zeros(0)
    starts, ends = np.asarray(runs, dtype=np.int64).T  # [N] each
    lengths = ends - starts
    width = np.maximum(1, np.floor(outer_ratio * lengths + 0.5).astype(np.int64))
    lo = np.maximum(0, starts - width)
    hi = np.minimum(len(scores), ends + width)
    outside = (starts - lo) + (hi - ends)
    inner = slice_sums(scores, starts, ends) / lengths
    outer_sum = slice_sums(scores, lo, starts) + slice_sums(scores, ends, hi)
    outer = np.divide(outer_sum, outside, out=np.zeros_like(outer_sum), where=outside > 0)
    return np.where(outside > 0, inner - outer, 0.0)


def slice_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """[N] sums of values[start:end] for each pair (0 for an empty slice)."""
    padded = np.append(np.asarray(values, dtype=np.float64), 0.0)  # an end may be len(values)
    bounds = np.column_stack([starts, ends]).ravel()
    sums = np.add.reduceat(padded, bounds)[::2]  # reduceat sums [bounds[i], bounds[i + 1])
    return np.where(ends > starts, sums, 0.0)  # an empty slice reads one value there


def run_level(inner: np.ndarray, quantile: float | None) -> float:
    """How high a run's curve sits: the `quantile` of its values (None: their mean)."""
    if quantile is None:
        return float(inner.mean())
    return linear_quantile(inner, quantile)


def linear_quantile(values: np.ndarray, quantile: float) -> float:
    """np.quantile's default (linear interpolation) of non-empty `values`, without its
    per-call overhead (about 30 us against 2 for 150 values): tuning asks for it for every
    candidate run and curve of every video under every setting."""
    ordered = np.sort(values)
    position = quantile * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (position - below) * (ordered[above] - ordered[below]))


def run_valley(inner: np.ndarray) -> float:
    """How deep the deepest dip inside a run is: over its frames, the largest drop below the
    lower of the highest value before it and the highest value after it (within the run).
    0 for a run with one hump (rising, then falling); a run over two forged spans and the
    authentic gap between them scores the gap's depth."""
    inner = np.asarray(inner, dtype=np.float64).reshape(-1)
    if inner.size < 3:
        return 0.0
    highest_before = np.maximum.accumulate(inner)
    highest_after = np.maximum.accumulate(inner[::-1])[::-1]
    return float(np.max(np.minimum(highest_before, highest_after) - inner))


def _final_score(contrast: float, p_fake: float, is_real: bool, cfg: ProposalConfig) -> float:
    score = contrast + cfg.video_weight * p_fake
    if is_real:
        # predicted real: keep the proposal for AR, rank it by how unsure "real" was
        score = p_fake * max(score, 0.0)
    return score


# ---------------------------------------------------------------- suppression


def interval_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two [start, end] intervals in seconds (no "+1"); 0 when the union is empty."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def hard_nms(proposals: list[list[float]], iou_threshold: float) -> list[list[float]]:
    """Greedy NMS on [score, start, end]: drop any proposal with IoU > threshold to a kept one."""
    kept: list[list[float]] = []
    for proposal in sorted(proposals, key=lambda p: -p[0]):
        if all(interval_iou(proposal[1:], k[1:]) <= iou_threshold for k in kept):
            kept.append(proposal)
    return kept


# soft-NMS of fewer proposals than this runs as a Python loop over lists: there its per-pick
# array operations cost more than the arithmetic itself (BENCHMARKS.md, "Faster proposals")
SOFT_NMS_LIST_BELOW = 64


def soft_nms(proposals: list[list[float]], sigma: float) -> list[list[float]]:
    """Gaussian soft-NMS (Bodla et al., 2017): each pick decays the rest by exp(-iou^2/sigma).

    Picks the highest score left (the first of equal maxima), so two implementations with
    the same arithmetic give the same list: lists for few proposals, arrays for many. Scores
    are finite (features with NaN or Inf are refused before the model, pipeline/dataset.py);
    the two would order a NaN differently."""
    table = np.asarray(proposals, dtype=np.float64).reshape(-1, 3)  # [N, 3] score, start, end
    scores, starts, ends = table[:, 0].copy(), table[:, 1], table[:, 2]
    # every pair's decay factor at once (row i: what picking i does to the others)
    inter = np.clip(np.minimum(ends[:, None], ends[None, :])
                    - np.maximum(starts[:, None], starts[None, :]), 0.0, None)  # [N, N]
    union = (ends - starts)[None, :] + (ends - starts)[:, None] - inter  # [N, N]
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # [N, N]
    decay = np.exp(-(iou * iou) / sigma)  # [N, N]
    if len(table) < SOFT_NMS_LIST_BELOW:
        return _soft_nms_lists(scores.tolist(), starts.tolist(), ends.tolist(), decay.tolist())
    alive = np.ones(len(table), dtype=bool)
    kept: list[list[float]] = []
    for _ in range(len(table)):
        pick = int(np.argmax(np.where(alive, scores, -np.inf)))  # first of equal maxima
        alive[pick] = False
        kept.append([float(scores[pick]), float(starts[pick]), float(ends[pick])])
        scores = np.where(alive, scores * decay[pick], scores)
    return kept


def _soft_nms_lists(scores: list[float], starts: list[float], ends: list[float],
                    decay: list[list[float]]) -> list[list[float]]:
    """`soft_nms`'s picks as a loop over Python floats (the same products, in the same order)."""
    alive = list(range(len(scores)))
    kept: list[list[float]] = []
    while alive:
        pick = alive[0]
        for i in alive:
            if scores[i] > scores[pick]:  # strictly: the first of equal maxima stays
                pick = i
        alive.remove(pick)
        kept.append([scores[pick], starts[pick], ends[pick]])
        row = decay[pick]
        for i in alive:
            scores[i] *= row[i]
    return kept


# ---------------------------------------------------------------- one video


def score_curve_proposals(scores: np.ndarray, fps: float, duration: float, p_fake: float,
                          is_real: bool, cfg: ProposalConfig,
                          change: np.ndarray | None = None) -> list[list[float]]:
    """Proposals [[score, start_s, end_s], ...] from one frame-score curve, sorted by score
    (`change`: the picture's change per frame, for `cfg.snap_frames`)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # [T]
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    best: dict[tuple[float, float], float] = {}
    runs, contrasts, levels, valleys = run_features(scores, cfg, change)
    for (start, end), contrast, level, valley in zip(runs, contrasts, levels, valleys):
        local = float(contrast)
        if cfg.level_weight:
            local += cfg.level_weight * float(level)
        if cfg.valley_weight:
            local -= cfg.valley_weight * float(valley)
        if cfg.length_weight:
            local += cfg.length_weight * math.log((end - start) / fps)
        score = _final_score(local, p_fake, is_real, cfg)
        t0 = min(start / fps, duration)
        t1 = min(end / fps, duration)
        if t1 <= t0:
            continue  # the run lies wholly past the end of the video
        key = (t0, t1)
        best[key] = max(score, best.get(key, -math.inf))
    return suppress_and_rank([[score, t0, t1] for (t0, t1), score in best.items()], cfg)


# `run_features` remembers its last results up to this many bytes of keys and values (0: it
# remembers nothing); a tuning stage re-scores the same curves under hundreds of settings
RUN_FEATURE_CACHE_BYTES = 64 * 2 ** 20
_run_feature_cache: dict[tuple, tuple] = {}
_run_feature_cache_bytes = 0
_run_feature_lock = threading.Lock()  # a localizer may run in threads


def run_features(scores: np.ndarray, cfg: ProposalConfig, change: np.ndarray | None = None
                 ) -> tuple[tuple[tuple[int, int], ...], np.ndarray, np.ndarray, np.ndarray]:
    """(candidate runs, their contrasts, levels and valleys [N] each) of one curve `scores`
    [T] float64: what `score_curve_proposals` weighs, none of it depending on the weights.

    Remembered (first in, first out, `RUN_FEATURE_CACHE_BYTES`) by the curve's and the
    change's bytes and the settings they depend on: of the 864 proposal settings of the
    default tuning grid only 12 differ in the runs they cut (merge gap, minimum length,
    snapping), so a tuning stage would otherwise find the same runs and measure the same
    levels and valleys again for every weight. The values are returned as stored: read
    them, do not change them."""
    global _run_feature_cache_bytes
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # [T]: the key's bytes are float64
    snapping = cfg.snap_frames and change is not None
    change_bytes = np.asarray(change, dtype=np.float64).tobytes() if snapping else b""
    key = (scores.tobytes(), change_bytes, cfg.thresholds, cfg.relative_thresholds,
           cfg.merge_gap_frames, cfg.min_frames, cfg.snap_frames if snapping else 0,
           cfg.snap_quantile if snapping else None, cfg.outer_ratio, cfg.level_quantile)
    with _run_feature_lock:
        found = _run_feature_cache.get(key)
    if found is not None:
        return found
    runs = candidate_runs(scores, cfg, change)
    found = (tuple(runs), run_contrasts(scores, runs, cfg.outer_ratio),
             np.array([run_level(scores[start:end], cfg.level_quantile) for start, end in runs]),
             np.array([run_valley(scores[start:end]) for start, end in runs]))
    size = _entry_bytes(key, found)
    with _run_feature_lock:
        if size <= RUN_FEATURE_CACHE_BYTES and key not in _run_feature_cache:
            while _run_feature_cache and _run_feature_cache_bytes + size > RUN_FEATURE_CACHE_BYTES:
                oldest = next(iter(_run_feature_cache))
                _run_feature_cache_bytes -= _entry_bytes(oldest, _run_feature_cache.pop(oldest))
            _run_feature_cache[key] = found
            _run_feature_cache_bytes += size
    return found


def forget_run_features() -> None:
    """Empty what `run_features` remembers (a benchmark timing it from nothing)."""
    global _run_feature_cache_bytes
    with _run_feature_lock:
        _run_feature_cache.clear()
        _run_feature_cache_bytes = 0


def _entry_bytes(key: tuple, value: tuple) -> int:
    """The bytes `run_features` counts for one remembered entry: the curve's and the change's,
    and about 40 per run (its ends and three float64 values), plus a fixed overhead."""
    return len(key[0]) + len(key[1]) + 40 * len(value[0]) + 200


def suppress_and_rank(proposals: list[list[float]], cfg: ProposalConfig) -> list[list[float]]:
    """`cfg.nms` over [score, start, end] proposals, then the best `cfg.max_proposals` by score."""
    if cfg.nms == "hard":
        proposals = hard_nms(proposals, cfg.nms_iou)
    elif cfg.nms == "soft":
        proposals = soft_nms(proposals, cfg.soft_sigma)
    # sort by score, ties broken by start time so the output is deterministic
    proposals.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [[float(s), float(a), float(b)] for s, a, b in proposals[:cfg.max_proposals]]


def smooth(scores: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average over `frames` frames (edges average over what exists)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if frames <= 1 or scores.size == 0:
        return scores
    kernel = np.ones(frames)
    total = np.convolve(scores, kernel, mode="same")
    count = np.convolve(np.ones_like(scores), kernel, mode="same")
    return total / count


def rank_normalize(scores: np.ndarray) -> np.ndarray:
    """Each value's rank within the curve scaled to [0, 1]; equal values share their average
    rank, so a flat curve stays flat (0.5) instead of becoming an arbitrary ramp."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # [T]
    if scores.size < 2:
        return np.full_like(scores, 0.5)
    return (average_ranks(scores) - 1) / (scores.size - 1)


def evidence_curve(scores: VideoScores, modality: str, kind: str, length: int) -> np.ndarray:
    """[length] evidence of `kind` (EVIDENCE_KINDS) for one modality's curve; zeros where the
    model has none. "sync" is the same curve for both modalities (the desynchrony says that
    the streams disagree, not which one was changed: routing says that);
    "sync_and_learned_deviation" is the mean of the desynchrony percentile and the
    modality's learned deviation probability, two cues that mark different forgeries;
    "sync_learned_deviation_and_reconstruction" adds the FDN's error percentile as a third
    (on rtdl's benchmark an FDN trained on authentic clips marks held-out forgeries that the
    other two miss: BENCHMARKS.md, "The FDN alone, trained to the end");
    "sync_and_learned_deviation_or_reconstruction_outlier" is the mean of two, raised to the
    FDN's error percentile on frames where that is at least RECONSTRUCTION_OUTLIER_LEVEL
    (module docstring, "Evidence"); "sync_or_spectral_detail" gives the audio curve the
    larger of the desynchrony and the spectral detail (two untrained cues that mark
    different audio forgeries: the detail marks a spectrum smoothed over frequency, which
    leaves picture and sound in step), squared, and the visual curve the desynchrony. The
    square makes the larger of two percentiles a percentile again: on authentic frames, where
    the two are about independent and uniform, P(max <= u) = u^2, so max^2 is uniform like
    every other evidence. Without it the audio curve sits higher than the visual one on
    authentic frames (above 0.5 on three frames in four), which matters wherever curves
    are compared across branches and videos (the joint branch's maximum, the pooled AP);
    on dev the squared form won in all three seeds of the benchmark and the plain one in
    none (BENCHMARKS.md, "Spectral detail");
    "sync_and_learned_deviation_or_spectral_detail" gives the visual curve the mean of the
    desynchrony and the visual learned deviation instead (BENCHMARKS.md, "Spectral
    detail": on dev the audio learned deviation added little to the desynchrony, the detail
    much); "sync_and_learned_deviation_or_audio_cues" gives the visual curve the same and
    the audio curve the largest of three percentiles, the desynchrony, the spectral detail
    and the audio learned deviation's, cubed (uniform again for the same reason as the
    square), for re-voiced and spliced speech that the other two partly miss: on the dev
    split of rtdl's benchmark it raised the audio curve's frame AUC from 0.835 to 0.853, on
    test not (0.869 -> 0.862; BENCHMARKS.md, "Three audio cues, and where recall is
    lost")."""
    def read(name: str) -> np.ndarray:
        values = getattr(scores, name)
        return np.zeros(length) if values is None else np.asarray(values, np.float64)[:length]

    if kind == "sync":
        return read("sync_evidence")
    if kind == "sync_and_learned_deviation":
        return 0.5 * (read("sync_evidence") + read(f"{modality}_learned_deviation"))
    if kind == "sync_and_learned_deviation_or_reconstruction_outlier":
        error = read(f"{modality}_evidence")
        outlier = np.where(error >= RECONSTRUCTION_OUTLIER_LEVEL, error, 0.0)
        return np.maximum(0.5 * (read("sync_evidence") + read(f"{modality}_learned_deviation")),
                          outlier)
    if kind == "sync_and_learned_deviation_or_audio_cues":
        if modality == "audio":  # the largest of three percentiles, as a percentile again
            return np.maximum.reduce([read("sync_evidence"), read("spectral_detail_evidence"),
                                      read("audio_learned_deviation_evidence")]) ** 3
        return evidence_curve(scores, modality, "sync_and_learned_deviation", length)
    if kind in ("sync_or_spectral_detail", "sync_and_learned_deviation_or_spectral_detail"):
        if modality == "audio":  # the larger of two percentiles, as a percentile again
            return np.maximum(read("sync_evidence"), read("spectral_detail_evidence")) ** 2
        # the picture has no spectral detail: its curve is the kind without it
        without = "sync" if kind == "sync_or_spectral_detail" else "sync_and_learned_deviation"
        return evidence_curve(scores, modality, without, length)
    if kind == "sync_learned_deviation_and_reconstruction":
        return (read("sync_evidence") + read(f"{modality}_learned_deviation")
                + read(f"{modality}_evidence")) / 3.0
    return read(f"{modality}_{EVIDENCE_FIELDS[kind]}")


def branch_curve(scores: VideoScores, branch: str, cfg: ProposalConfig) -> np.ndarray:
    """One branch's frame curve: head score mixed with error evidence, smoothed, and (with
    `curve_normalization="rank"`) replaced by its within-video ranks.

    branch: "visual", "audio" or "joint" (whose evidence is the larger of the mixed
    modalities'). A branch left out by `error_modalities` keeps its head score.
    """
    head = np.asarray(getattr(scores, f"{branch}_scores"), dtype=np.float64).reshape(-1)  # [T]
    mixed = ("visual", "audio") if cfg.error_modalities == "both" else (cfg.error_modalities,)
    w = cfg.error_weight
    if w > 0 and (branch == "joint" or branch in mixed):
        def evidence(modality):
            return evidence_curve(scores, modality, cfg.evidence, len(head))

        ev = np.max([evidence(m) for m in mixed], axis=0) if branch == "joint" else evidence(branch)
        head = (1 - w) * head + w * ev
    curve = smooth(head, cfg.smooth_frames)
    return rank_normalize(curve) if cfg.curve_normalization == "rank" else curve


def routed_branches(scores: VideoScores, cfg: ProposalConfig) -> tuple[str, ...]:
    """The branches whose curves propose segments for this video: the predicted class's
    (argmax routing, `route`), "joint" (joint routing), or "visual" and "audio" (soft)."""
    if cfg.routing == "soft":
        return tuple(modality_probabilities(scores.class_probs))
    return ("joint",) if cfg.routing == "joint" else (route(scores.class_probs),)


def soft_routing_probabilities(scores: VideoScores, cfg: ProposalConfig,
                               curves: Mapping[str, np.ndarray]) -> dict[str, float]:
    """{modality: P(modified)} that soft routing weighs each modality's proposals by: the
    class head's (`modality_probabilities`), mixed with the maximum of the modality's curve
    by `cfg.routing_evidence_weight` (module docstring, "Evidence in soft routing").
    curves: {modality: its `branch_curve`}."""
    # a rank-normalized curve peaks at 1 in every video: its peak says nothing
    w = cfg.routing_evidence_weight if cfg.curve_normalization == "none" else 0.0
    return {modality: (1 - w) * p + w * float(np.max(curves[modality], initial=0.0))
            for modality, p in modality_probabilities(scores.class_probs).items()}


def routed_curve(scores: VideoScores, cfg: ProposalConfig | None = None) -> np.ndarray:
    """The curve this video is localized with (for diagnostics); soft routing: the curve of
    the modality with the higher probability of being modified (`soft_routing_probabilities`)."""
    cfg = cfg or ProposalConfig()
    if cfg.routing == "soft":
        curves = localizer_curves(scores, cfg)
        probs = soft_routing_probabilities(scores, cfg, curves)
        return curves[max(probs, key=probs.get)]
    return branch_curve(scores, routed_branches(scores, cfg)[0], cfg)


def localizer_curves(scores: VideoScores, cfg: ProposalConfig | None = None) -> dict[str, np.ndarray]:
    """{branch: curve [T]} of the curves `labelled_proposals` thresholds for this video
    (`routed_branches`). What a plot of the evidence behind the segments must show."""
    cfg = cfg or ProposalConfig()
    return {branch: branch_curve(scores, branch, cfg) for branch in routed_branches(scores, cfg)}


def labelled_proposals(scores: VideoScores, cfg: ProposalConfig | None = None, *,
                       modality_probs: Mapping[str, float] | None = None) -> list[list]:
    """Proposals [[score, start, end, branch], ...] of one video, highest score first.

    argmax routing: the branch of the predicted class (Sec. 3.1); joint routing: the joint
    branch for every video, scored as argmax routing scores it. Soft routing: the visual
    and the audio curve each propose, scored as if the video were predicted real with fake
    probability P(modality modified), so a modality the model thinks untouched ranks low
    instead of being dropped; the two lists are then suppressed together. `branch` names
    the curve a proposal came from ("visual", "audio" or "joint").

    modality_probs: soft routing only, {modality: P(modified)} to weigh by instead of
    `soft_routing_probabilities` (benchmarks/proposal_ceiling.py asks what knowing which
    modality was forged would give).
    """
    cfg = cfg or ProposalConfig()
    if modality_probs is not None and cfg.routing != "soft":
        raise ValueError(f"modality_probs: only soft routing weighs by them, not {cfg.routing!r}")
    label = predicted_label(scores.class_probs)
    if cfg.routing in ("argmax", "joint"):
        branch, = routed_branches(scores, cfg)
        found = score_curve_proposals(branch_curve(scores, branch, cfg), scores.fps, scores.duration,
                                      fake_probability(scores.class_probs),
                                      LABEL_INDEX[label] == REAL and cfg.down_weight_real, cfg,
                                      scores.visual_change)
        return [[*p, branch] for p in found]
    unsuppressed = dataclasses.replace(cfg, nms="none", max_proposals=10 ** 9)
    pooled: list[list[float]] = []
    # suppression keeps spans and changes scores: a span's branch is that of its best entry
    span_branch: dict[tuple[float, float], tuple[float, str]] = {}
    curves = localizer_curves(scores, cfg)
    if modality_probs is None:
        modality_probs = soft_routing_probabilities(scores, cfg, curves)
    for modality, p_modified in modality_probs.items():
        for p in score_curve_proposals(curves[modality], scores.fps, scores.duration,
                                       p_modified, True, unsuppressed, scores.visual_change):
            pooled.append(p)
            span_branch[(p[1], p[2])] = max(span_branch.get((p[1], p[2]), (-math.inf, "")), (p[0], modality))
    return [[*p, span_branch[(p[1], p[2])][1]] for p in suppress_and_rank(pooled, cfg)]


def scores_to_proposals(scores: VideoScores, cfg: ProposalConfig | None = None) -> list[list[float]]:
    """Proposals [[score, start, end], ...] of one video, highest score first (`labelled_proposals`)."""
    return [p[:3] for p in labelled_proposals(scores, cfg)]


def video_proposals(class_probs: Sequence[float], visual_scores: np.ndarray, audio_scores: np.ndarray,
                    joint_scores: np.ndarray, fps: float, duration: float,
                    cfg: ProposalConfig | None = None) -> list[list[float]]:
    """`scores_to_proposals` from loose arrays (no error evidence).

    class_probs [4] (order of LABELS); visual/audio/joint_scores [T] in [0, 1].
    """
    return scores_to_proposals(VideoScores(np.asarray(class_probs), visual_scores, audio_scores,
                                           joint_scores, fps, duration), cfg)


# said where settings that read no network output are chosen (`reads_network`)
NETWORK_FREE_NOTE = ("the chosen settings read no output of the RT-DeepLoc network (joint "
                     "routing on the evidence alone, no class probability): its segments would "
                     "be the same without it")


def reads_network(cfg: ProposalConfig) -> bool:
    """Whether proposals made with `cfg` depend on any output of the RT-DeepLoc network
    (class probabilities, head scores, reconstruction errors). They do not with joint
    routing (no class decides the branch), `error_weight` 1 (the head score weighs nothing)
    on evidence other than the reconstruction error, no video term and no down-weighting of
    videos predicted real: the curve is then the desynchrony, the learned deviation scorers
    or the untrained clip deviation alone, which are all computed beside the network."""
    return not (cfg.routing == "joint" and cfg.error_weight == 1.0 and cfg.video_weight == 0
                and not cfg.down_weight_real and cfg.evidence != "reconstruction")


def all_proposals(videos: Mapping[str, VideoScores],
                  cfg: ProposalConfig | None = None) -> dict[str, list[list[float]]]:
    """{file: proposals} for every video (an empty list where a video has none)."""
    return {file: scores_to_proposals(scores, cfg) for file, scores in videos.items()}


# ---------------------------------------------------------------- tuning on validation


def effective_config(cfg: ProposalConfig) -> ProposalConfig:
    """`cfg` with the settings that cannot change its proposals reset to their defaults
    (the kind of evidence and where it goes when its weight is 0, the routing evidence
    outside soft routing and on rank-normalized curves), so equivalent candidates compare
    equal."""
    if ((cfg.routing != "soft" or cfg.curve_normalization != "none")
            and cfg.routing_evidence_weight != ProposalConfig.routing_evidence_weight):
        cfg = dataclasses.replace(cfg, routing_evidence_weight=ProposalConfig.routing_evidence_weight)
    if cfg.error_weight == 0:
        return dataclasses.replace(cfg, evidence=ProposalConfig.evidence,
                                   error_modalities=ProposalConfig.error_modalities)
    return cfg


def grid_search(videos: Mapping[str, VideoScores], evaluate: Callable[[dict], float],
                grid: Mapping[str, Iterable], base: ProposalConfig | None = None,
                workers: int | None = 1) -> tuple[ProposalConfig, list[tuple[dict, float]]]:
    """Pick ProposalConfig fields on a validation split by exhaustive search.

    videos: the model's per-video scores on the *validation* split (compute them once with
    `pipeline.inference.predict_scores`); evaluate: maps a predictions dict {file: proposals}
    to one number, higher is better (e.g. `pipeline.metrics.ChallengeScore`); grid: {field
    name: candidate values}; workers: processes that score the candidates (None: one per
    core for large searches, `pipeline/grid_workers.py`; above 1, `evaluate` must pickle).
    Returns the best config (first one wins ties, so list the default first) and every
    (overrides, value) tried, in order: the same whatever the number of workers.
    """
    from pipeline.grid_workers import score_candidates, worker_count

    base = base or ProposalConfig()
    names = list(grid)
    known = {f.name for f in dataclasses.fields(ProposalConfig)}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"grid_search: unknown ProposalConfig field(s) {unknown}; known: {sorted(known)}")
    candidates = []  # (overrides, config, the config its proposals are the same as)
    for values in itertools.product(*(list(grid[n]) for n in names)):
        overrides = dict(zip(names, values))
        cfg = dataclasses.replace(base, **overrides)
        candidates.append((overrides, cfg, effective_config(cfg)))
    # settings that give the same proposals are scored once
    distinct = list(dict.fromkeys(same for _, _, same in candidates))
    values = score_candidates(videos, evaluate, distinct,
                              worker_count(workers, len(videos), len(distinct)))
    value_of = dict(zip(distinct, values))
    results: list[tuple[dict, float]] = []
    best_cfg, best_value = base, -math.inf
    for overrides, cfg, same in candidates:
        value = value_of[same]
        results.append((overrides, value))
        log.info("proposal grid %s -> %.4f", overrides, value)
        if value > best_value:
            best_cfg, best_value = cfg, value
    return best_cfg, results
