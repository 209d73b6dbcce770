"""Temporal forgery localization metrics (AP@IoU, AR@N) and video-level AUC, computed the
way the official LAV-DF / AV-Deepfake1M evaluators compute them, vectorised with numpy.

Pure functions over predictions and records; reading files and printing tables is the
`rtdl evaluate` command's part (pipeline/evaluate.py).

The protocol:
- temporal IoU = intersection / (max(end) - min(start)) in seconds, no "+1"; a proposal
  matches only when IoU > threshold (strictly);
- AP: per video, each ground-truth segment in order takes the first not-yet-taken proposal
  (video list order) with IoU > threshold; all other proposals, and every proposal on a
  real video, are false positives; proposals of all videos are pooled and stably sorted by
  score (ties keep metadata order, then list order); the official curve starts at
  (recall 1, precision 0), runs from the lowest score to the highest with a running
  maximum of precision, and has no recall-0 point;
- AR@N: each video's first N proposals in list order (N clamped to the list length); a
  segment is recalled when its best IoU among them is > threshold; recalled / all
  segments, averaged over the AR IoU thresholds.

Where this deliberately differs from the official code (which panics instead):
- a labelled video with an empty list, or absent from the predictions, has its segments
  counted as not found (denominator unchanged) and a warning is logged;
- no ground-truth segment at all raises ValueError (AP and AR are 0/0 there).

Other choices:
- precision: both official evaluators hold times, scores and IoU thresholds in float32
  (torch's default dtype; f32 in the Rust AV-Deepfake1M package), so IoU is computed and
  compared in float32 here too: an IoU that float32 rounds onto the threshold does not
  match, and scores equal in float32 are ties, exactly as there. Sums are float64;
- lists are evaluated in the order given, as the official code does; lists not sorted by
  score are reported in a warning but not re-sorted, so numbers stay comparable;
- predictions for files absent from the evaluated records are ignored with a warning;
- `video_probs` values are the 4 class probabilities in LABELS order, the fake score being
  1 - P(real); a single number is taken as the fake score directly; every evaluated video
  needs one (an AUC over a subset would not be comparable);
- AUC is the Mann-Whitney statistic with tied scores given their average rank (equal to
  the trapezoidal ROC area, as torchmetrics' AUROC used by the official code); it is None
  when the videos are all real or all fake.

Algorithm: proposals and segments are packed into flat arrays with per-video offsets; the
(segment, proposal) pairs of the same video are built chunk by chunk (IoU once per pair),
the greedy matching loops only over a segment's rank within its video (a handful), and
AP is computed from the pooled ranks of the true positives (binary search among sorted
score-and-index integer keys, several times faster than a stable argsort):
AP = (1 / n_labels) * sum over true positives t at pooled rank p_t >= 2 of
max_{s >= t} (s / p_s), which is the official curve's area without materialising it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from data.labels import fake_probability
from data.records import VideoRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    ap_iou: tuple[float, ...]  # IoU thresholds for AP
    ar_n: tuple[int, ...]  # proposal counts N for AR@N
    ar_iou: tuple[float, ...]  # IoU thresholds AR@N is averaged over


_AR_IOU = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95

PROTOCOLS: dict[str, Protocol] = {
    # RT-DeepLoc Table 1; AR IoU from the same group's earlier work (the paper is silent)
    "rtdeeploc": Protocol(ap_iou=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), ar_n=(20, 10, 5, 2),
                          ar_iou=_AR_IOU),
    "lavdf": Protocol(ap_iou=(0.5, 0.75, 0.95), ar_n=(100, 50, 20, 10), ar_iou=_AR_IOU),
    "avdeepfake1m": Protocol(ap_iou=(0.5, 0.75, 0.9, 0.95), ar_n=(50, 30, 20, 10, 5),
                             ar_iou=_AR_IOU),
}

_PAIRS_PER_CHUNK = 4_000_000  # (segment, proposal) pairs held at once, ~200 MB of arrays


# ---------------------------------------------------------------- packed inputs

@dataclass(frozen=True)
class PackedProposals:
    """All videos' proposals in flat arrays; video v owns rows offsets[v]:offsets[v+1]."""
    scores: np.ndarray  # float32 [P]
    starts: np.ndarray  # float32 [P] seconds
    ends: np.ndarray  # float32 [P] seconds
    offsets: np.ndarray  # int64 [V+1]


@dataclass(frozen=True)
class PackedSegments:
    """All videos' ground-truth segments; video v owns rows offsets[v]:offsets[v+1]."""
    starts: np.ndarray  # float32 [G]
    ends: np.ndarray  # float32 [G]
    offsets: np.ndarray  # int64 [V+1]


def pack_segments(records: Sequence[VideoRecord]) -> PackedSegments:
    counts = np.fromiter((len(r.fake_segments) for r in records), dtype=np.int64,
                         count=len(records))
    flat = np.fromiter((t for r in records for seg in r.fake_segments for t in seg),
                       dtype=np.float64, count=2 * int(counts.sum()))
    return PackedSegments(starts=flat[0::2].astype(np.float32),
                          ends=flat[1::2].astype(np.float32),
                          offsets=_offsets(counts))


def pack_predictions(predictions: Mapping[str, Any], files: Sequence[str],
                     source: str = "predictions") -> tuple[PackedProposals, list[str]]:
    """Validate `predictions` ({file: [[score, start, end], ...]}) and pack the lists of
    `files` in that order; returns the packed proposals and the files with no entry.

    Raises ValueError naming `source` and the key for: not a dict, a list that is not of
    [score, start, end] numbers, non-finite values, end < start.
    """
    if not isinstance(predictions, Mapping):
        raise ValueError(f"{source}: expected a JSON object mapping each video file to a "
                         f"list of [score, start, end], got {type(predictions).__name__}")
    arrays, missing = [], []
    counts = np.zeros(len(files), dtype=np.int64)
    unsorted = 0
    for v, file in enumerate(files):
        proposals = predictions.get(file)
        if proposals is None:
            missing.append(file)
            continue
        array = _proposal_array(proposals, source, file)
        if len(array) > 1 and np.any(np.diff(array[:, 0]) > 0):
            unsorted += 1
        counts[v] = len(array)
        arrays.append(array)
    if unsorted:
        log.warning("%s: %d video(s) have proposal lists not sorted by score (highest first); "
                    "they are evaluated in the order given, as the official evaluators do",
                    source, unsorted)
    flat = np.concatenate(arrays) if arrays else np.zeros((0, 3))
    return PackedProposals(scores=flat[:, 0].astype(np.float32),
                           starts=flat[:, 1].astype(np.float32),
                           ends=flat[:, 2].astype(np.float32),
                           offsets=_offsets(counts)), missing


def _proposal_array(proposals: Any, source: str, file: str) -> np.ndarray:
    """One video's list -> float64 [n, 3]; the slow per-item check runs only on failure."""
    where = f"{source}: key {file!r}"
    if not isinstance(proposals, (list, tuple)):
        raise ValueError(f"{where}: expected a list of [score, start, end], "
                         f"got {type(proposals).__name__}")
    if not proposals:
        return np.zeros((0, 3))
    try:
        array = np.asarray(proposals)
        ok = array.ndim == 2 and array.shape[1] == 3 and array.dtype.kind in "iuf"
    except (ValueError, TypeError):
        ok = False
    if not ok:
        for i, item in enumerate(proposals):
            if (not isinstance(item, (list, tuple)) or len(item) != 3
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                               for x in item)):
                raise ValueError(f"{where}: proposal {i}: expected [score, start, end] "
                                 f"(3 numbers), got {item!r}")
        raise ValueError(f"{where}: expected a list of [score, start, end] (3 numbers each)")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: proposal {i}: non-finite value in {proposals[i]!r}")
    backwards = array[:, 2] < array[:, 1]
    if backwards.any():
        i = int(np.flatnonzero(backwards)[0])
        raise ValueError(f"{where}: proposal {i}: end {array[i, 2]} is before start "
                         f"{array[i, 1]}")
    return array


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


# ---------------------------------------------------------------- metrics

def evaluate_predictions(predictions: Mapping[str, Any], records: Sequence[VideoRecord], *,
                         ap_iou: Sequence[float] = PROTOCOLS["rtdeeploc"].ap_iou,
                         ar_n: Sequence[int] = PROTOCOLS["rtdeeploc"].ar_n,
                         ar_iou: Sequence[float] = PROTOCOLS["rtdeeploc"].ar_iou,
                         video_probs: Mapping[str, Any] | None = None,
                         source: str = "predictions", probs_source: str = "probs") -> dict:
    """AP at each `ap_iou`, AR at each `ar_n` (averaged over `ar_iou`), their means, and the
    video-level AUC when `video_probs` is given, over `records`, as fractions 0-1:
    `{"ap": {"0.5": ...}, "ar": {"20": ...}, "ap_avg", "ar_avg", "auc", "counts"}`.
    """
    records = list(records)
    files = [r.file for r in records]
    known = set(files)
    unknown = [f for f in predictions if f not in known] if isinstance(predictions, Mapping) \
        else []
    proposals, missing = pack_predictions(predictions, files, source)
    if unknown:
        log.warning("%s: %d file(s) are not among the %d evaluated videos and are ignored, "
                    "e.g. %s", source, len(unknown), len(records), unknown[:3])
    segments = pack_segments(records)
    n_segments = np.diff(segments.offsets)
    n_proposals = np.diff(proposals.offsets)
    present = np.fromiter((f in predictions for f in files), dtype=bool, count=len(files))
    if missing:
        log.warning("%s: %d evaluated video(s) have no entry (e.g. %s); their %d segment(s) "
                    "count as not found", source, len(missing), missing[:3],
                    int(n_segments[~present].sum()))
    empty = present & (n_proposals == 0) & (n_segments > 0)
    if empty.any():
        log.warning("%s: %d fake video(s) have an empty proposal list; their %d segment(s) "
                    "count as not found", source, int(empty.sum()), int(n_segments[empty].sum()))
    ap, ar = localization_metrics(proposals, segments, ap_iou=ap_iou, ar_n=ar_n,
                                  ar_iou=ar_iou)
    auc = None
    if video_probs is not None:
        fake_scores = video_fake_scores(video_probs, files, probs_source)
        auc = roc_auc(n_segments > 0, fake_scores)
    return {
        "ap": {_key(t): v for t, v in zip(ap_iou, ap)},
        "ar": {_key(n): v for n, v in zip(ar_n, ar)},
        "ap_avg": float(np.mean(ap)) if len(ap) else None,
        "ar_avg": float(np.mean(ar)) if len(ar) else None,
        "auc": auc,
        "counts": {"videos": len(records), "fake_videos": int((n_segments > 0).sum()),
                   "segments": int(n_segments.sum()), "proposals": int(len(proposals.scores)),
                   "missing_videos": len(missing), "unknown_files": len(unknown)},
        "settings": {"ap_iou": [float(t) for t in ap_iou], "ar_n": [int(n) for n in ar_n],
                     "ar_iou": [float(t) for t in ar_iou]},
    }


@dataclass(frozen=True)
class ChallengeScore:
    """0.5 x mean AP + 0.5 x mean AR of {file: proposals} over `records` under `protocol`
    (a key of PROTOCOLS): the AV-Deepfake1M challenge score, which weighs ranking and recall
    alike; what proposal tuning maximises. A class, not a closure, so that tuning's worker
    processes can receive it (pipeline/grid_workers.py)."""
    records: tuple[VideoRecord, ...]
    protocol: str = "rtdeeploc"

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {list(PROTOCOLS)}")

    def __call__(self, predictions: Mapping[str, Any]) -> float:
        chosen = PROTOCOLS[self.protocol]
        metrics = evaluate_predictions(predictions, self.records, ap_iou=chosen.ap_iou,
                                       ar_n=chosen.ar_n, ar_iou=chosen.ar_iou)
        return 0.5 * metrics["ap_avg"] + 0.5 * metrics["ar_avg"]


def _key(value: float | int) -> str:
    return f"{value:g}"


def temporal_iou(starts_a: np.ndarray, ends_a: np.ndarray, starts_b: np.ndarray,
                 ends_b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of intervals [N] x [N] in seconds: intersection / (max(end) -
    min(start)); 0 where that span is 0 (two identical points)."""
    inter = np.clip(np.minimum(ends_a, ends_b) - np.maximum(starts_a, starts_b), 0.0, None)
    span = np.maximum(ends_a, ends_b) - np.minimum(starts_a, starts_b)
    return np.divide(inter, span, out=np.zeros_like(inter), where=span > 0)


def localization_metrics(proposals: PackedProposals, segments: PackedSegments, *,
                         ap_iou: Sequence[float], ar_n: Sequence[int],
                         ar_iou: Sequence[float]) -> tuple[list[float], list[float]]:
    """(AP per ap_iou, AR per ar_n) for packed inputs of the same videos, in order."""
    n_videos = len(segments.offsets) - 1
    if len(proposals.offsets) - 1 != n_videos:
        raise ValueError("proposals and segments cover different numbers of videos")
    n_labels = int(segments.offsets[-1])
    if n_labels == 0:
        raise ValueError("the evaluated videos have no fake segments: AP and AR are undefined "
                         "(is this a split of real videos only?)")
    ap_iou = [np.float32(t) for t in ap_iou]
    ar_n = [int(n) for n in ar_n]
    ar_iou_arr = np.asarray([float(t) for t in ar_iou], dtype=np.float32)
    if any(n < 1 for n in ar_n):
        raise ValueError(f"AR@N needs N >= 1, got {ar_n}")
    if any(not 0.0 <= t < 1.0 for t in list(ap_iou) + list(ar_iou_arr)):
        raise ValueError(f"IoU thresholds must lie in [0, 1), got AP {[float(t) for t in ap_iou]}"
                         f" and AR {ar_iou_arr.tolist()}")

    tp_chunks: list[list[np.ndarray]] = [[] for _ in ap_iou]  # TP proposal indices
    recalled = np.zeros((len(ar_n), len(ar_iou_arr)), dtype=np.int64)
    for v0, v1 in _video_chunks(proposals.offsets, segments.offsets):
        pairs = _pairs(proposals, segments, v0, v1)
        for k, threshold in enumerate(ap_iou):
            tp_chunks[k].append(_greedy_true_positives(pairs, threshold))
        recalled += _recalled_counts(pairs, ar_n, ar_iou_arr)

    keys = _pooled_sort_keys(proposals.scores)  # [P]
    tp_keys = [keys[np.concatenate(chunks)] for chunks in tp_chunks]
    keys.sort()  # the pooled order; a TP's 1-based rank is its key's position + 1
    ap = [_average_precision(np.searchsorted(keys, k) + 1, n_labels) for k in tp_keys]
    ar = (recalled / n_labels).mean(axis=1).tolist()
    return ap, ar


def _video_chunks(prop_offsets: np.ndarray, seg_offsets: np.ndarray):
    """Ranges of videos whose (segment, proposal) pairs fit in one chunk."""
    pairs_per_video = np.diff(prop_offsets) * np.diff(seg_offsets)
    cumulative = np.cumsum(pairs_per_video)
    n_videos = len(pairs_per_video)
    v0 = 0
    while v0 < n_videos:
        done = cumulative[v0 - 1] if v0 else 0
        v1 = int(np.searchsorted(cumulative, done + _PAIRS_PER_CHUNK, side="right"))
        v1 = max(v1, v0 + 1)  # one huge video still makes progress
        yield v0, min(v1, n_videos)
        v0 = v1


@dataclass
class _Pairs:
    """(segment, proposal) pairs of the same video for a chunk of videos, ordered by
    segment (global index) then by the proposal's position in its video's list."""
    segment: np.ndarray  # int64 [Q] global segment index
    segment_rank: np.ndarray  # int64 [Q] segment's position within its video
    proposal: np.ndarray  # int64 [Q] global proposal index
    proposal_rank: np.ndarray  # int64 [Q] proposal's position within its video's list
    iou: np.ndarray  # float64 [Q]
    group_start: np.ndarray  # int64 [G'] first pair of each segment with >= 1 proposal
    group_size: np.ndarray  # int64 [G'] its video's proposal count
    first_segment: int  # global index of the chunk's first segment
    n_segments: int  # segments in the chunk


def _pairs(proposals: PackedProposals, segments: PackedSegments, v0: int, v1: int) -> _Pairs:
    g0, g1 = int(segments.offsets[v0]), int(segments.offsets[v1])
    seg_counts = np.diff(segments.offsets[v0:v1 + 1])
    seg_video = np.repeat(np.arange(v0, v1), seg_counts)  # [G] video of each segment
    seg_rank = np.arange(g1 - g0) - np.repeat(segments.offsets[v0:v1] - g0, seg_counts)
    per_segment = (proposals.offsets[seg_video + 1] - proposals.offsets[seg_video])  # [G]
    segment = np.repeat(np.arange(g0, g1), per_segment)  # [Q]
    pair_starts = _offsets(per_segment)[:-1]
    proposal_rank = np.arange(len(segment)) - np.repeat(pair_starts, per_segment)
    proposal = np.repeat(proposals.offsets[seg_video], per_segment) + proposal_rank
    iou = temporal_iou(proposals.starts[proposal], proposals.ends[proposal],
                       segments.starts[segment], segments.ends[segment])
    has = per_segment > 0
    return _Pairs(segment=segment, segment_rank=np.repeat(seg_rank, per_segment),
                  proposal=proposal, proposal_rank=proposal_rank, iou=iou,
                  group_start=pair_starts[has], group_size=per_segment[has],
                  first_segment=g0, n_segments=g1 - g0)


def _greedy_true_positives(pairs: _Pairs, threshold: float) -> np.ndarray:
    """Global indices of the proposals taken as true positives at `threshold`: each
    segment, in order within its video, takes the first untaken proposal with IoU >
    threshold. Videos are independent, so all videos advance one segment rank at a time."""
    candidate = np.flatnonzero(pairs.iou > threshold)  # pair indices, still ordered
    if len(candidate) == 0:
        return np.zeros(0, dtype=np.int64)
    taken = []
    base = int(pairs.proposal[candidate].min())
    taken_mask = np.zeros(int(pairs.proposal[candidate].max()) - base + 1, dtype=bool)
    ranks = pairs.segment_rank[candidate]
    for rank in range(int(ranks.max()) + 1):
        at_rank = candidate[ranks == rank]
        free = at_rank[~taken_mask[pairs.proposal[at_rank] - base]]
        if len(free) == 0:
            continue
        seg = pairs.segment[free]
        first = np.ones(len(free), dtype=bool)
        first[1:] = seg[1:] != seg[:-1]  # the first free candidate of each segment
        chosen = pairs.proposal[free[first]]
        taken_mask[chosen - base] = True
        taken.append(chosen)
    return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


def _recalled_counts(pairs: _Pairs, ar_n: Sequence[int], ar_iou: np.ndarray) -> np.ndarray:
    """[len(ar_n), len(ar_iou)] number of segments whose best IoU among their video's first
    N proposals is > threshold."""
    counts = np.zeros((len(ar_n), len(ar_iou)), dtype=np.int64)
    if len(pairs.group_start) == 0:
        return counts
    for i, n in enumerate(ar_n):
        within = np.where(pairs.proposal_rank < n, pairs.iou, np.float32(-1.0))
        best = np.maximum.reduceat(within, pairs.group_start)  # [G'] best IoU in first N
        counts[i] = (best[:, None] > ar_iou[None, :]).sum(axis=0)
    return counts


def _pooled_sort_keys(scores: np.ndarray) -> np.ndarray:
    """uint64 [P] keys whose ascending order is the official pooled order: score descending,
    ties by index (video, then list order), as a stable descending sort gives. The high 32
    bits are the float32 score mapped to an order-reversing integer, the low 32 the index,
    so a plain (fast, unstable) integer sort of the keys replaces a stable argsort."""
    bits = (scores.astype(np.float32) + np.float32(0.0)).view(np.uint32)  # -0.0 -> +0.0
    negative = (bits & np.uint32(0x80000000)) != 0
    ascending = np.where(negative, ~bits, bits | np.uint32(0x80000000))  # order of the score
    keys = (~ascending).astype(np.uint64) << np.uint64(32)  # [P] higher score, smaller key
    keys |= np.arange(len(scores), dtype=np.uint64)
    return keys


def _average_precision(tp_ranks: np.ndarray, n_labels: int) -> float:
    """The official curve's area from the pooled 1-based ranks of the true positives (see
    module docstring): (1 / n_labels) * sum_{t: p_t >= 2} max_{s >= t} s / p_s."""
    if len(tp_ranks) == 0:
        return 0.0
    ranks = np.sort(tp_ranks)  # [T] p_t ascending
    precision = np.arange(1, len(ranks) + 1) / ranks  # [T] precision at each TP
    best_after = np.maximum.accumulate(precision[::-1])[::-1]  # [T] max_{s >= t}
    counted = ranks >= 2  # no recall-0 point: the top-ranked proposal's step is not counted
    return float(best_after[counted].sum() / n_labels)


# ---------------------------------------------------------------- video level

def video_fake_scores(video_probs: Mapping[str, Any], files: Sequence[str],
                      source: str = "probs") -> np.ndarray:
    """[V] fake score per file: 1 - P(real) from [p_real, p_visual_only, p_audio_only,
    p_both], or the number itself when a single number is given."""
    if not isinstance(video_probs, Mapping):
        raise ValueError(f"{source}: expected a JSON object mapping each video file to its "
                         f"class probabilities, got {type(video_probs).__name__}")
    scores = np.empty(len(files))
    missing = []
    for v, file in enumerate(files):
        value = video_probs.get(file)
        if value is None:
            missing.append(file)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers, scores[v] = [value], float(value)
        elif (isinstance(value, (list, tuple)) and len(value) == 4
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            numbers, scores[v] = value, fake_probability(value)
        else:
            raise ValueError(f"{source}: key {file!r}: expected [p_real, p_visual_only, "
                             f"p_audio_only, p_both] or one fake score, got {value!r}")
        # AUC only ranks the scores, so values outside [0, 1] (logits, a wrong file) would
        # still give a plausible number
        if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in numbers):
            raise ValueError(f"{source}: key {file!r}: probabilities must be finite and within "
                             f"[0, 1], got {value!r}")
    if missing:
        raise ValueError(f"{source}: {len(missing)} evaluated video(s) have no probabilities, "
                         f"e.g. {missing[:3]}")
    return scores


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Video-level ROC AUC (`rank_auc`); None, with a warning, if one class is absent."""
    auc = rank_auc(labels, scores)
    if auc is None:
        log.warning("AUC is undefined: the evaluated videos are all %s",
                    "real" if not np.asarray(labels, dtype=bool).any() else "fake")
    return auc


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each value of scores [N] in ascending order, tied values sharing the
    mean of their ranks: [N] float64."""
    _, inverse, counts = np.unique(np.asarray(scores, dtype=np.float64).reshape(-1),
                                   return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve: Mann-Whitney U / (n_pos * n_neg) with tied scores given
    their average rank. labels bool [V], scores float [V]; None if one class is absent."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
