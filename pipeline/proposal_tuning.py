"""Choosing proposal settings on a validation split, so a user never hand-tunes them.

`tune_on_scores` searches in two stages on the model's scores of the validation videos:
first the evidence the curves use (`SIGNAL_TUNING_GRID`: error weight, routing,
smoothing) with the other settings at their defaults, then the proposal settings
(`DEFAULT_TUNING_GRID`) for that evidence. Searching both jointly would multiply the grids
(about 370,000 candidates). But the best evidence under the default proposal settings is
not always the best under the chosen ones, so the search goes on by coordinate ascent
(`coordinate_search`): the evidence again, from the settings chosen, and, if that found a
better candidate, the proposal settings again (`DEFAULT_TUNING_PASSES` passes at most). On
the 2,100-clip benchmark the second pass moved the choice in 5 of 9 runs, and with the
default model test avg AP went from 51.8 to 52.8 on seen types and from 41.4 to 44.8 on
held-out ones, mean of 3 seeds (BENCHMARKS.md, "A second pass over the evidence, and the
FDN's outliers"), for one to two more stages of search. Each candidate is judged by
0.5 * mean AP + 0.5 * mean AR (the AV-Deepfake1M challenge score, which weighs ranking and
recall alike; `objective_text`). `tune_model` adds a plain-type record of how the settings
were chosen; `rtdl train` calls `tune_run_checkpoints` after its last epoch and `rtdl tune`
(pipeline/tune.py) redoes it.
Never tune on a test split: its metrics would be optimistic.

Where the search starts (`tuning_start`): the evidence stage judges each kind of evidence
under fixed proposal settings, and the search can stay in the corner its first stage picks.
Under ProposalConfig's defaults (set by reasoning: no valley, no level, no snapping, runs of
2 frames) one seed of the 2,100-clip benchmark took argmax routing there and never left it,
2.9 points of dev objective below what a search from three starts reached. So the search
starts from TUNING_START, the proposal settings dev chose in most runs there (merge gaps of
6 frames, runs of 4, no video term, level 0.5, valley 1, snapping 3 frames). From it the
plain two-pass search reached the three-start optimum in all three seeds for 1.3x the plain
search's time, not 3.7x; the seed it moved gained 3.6 test avg AP (BENCHMARKS.md, "Where
the search starts, and the length of a run").

Large validation splits are sampled (`tuning_sample`): the grids hold 2,012 distinct
candidates (1,148 for the evidence, 864 for the proposal settings; a second pass scores up to
2,012 more) and each one re-proposes and re-evaluates every video, a cost linear in the
split. LAV-DF's dev split has 31,501 videos, which at a few ms per video and candidate
would keep `rtdl train` tuning for most of a day; `max_videos` (default 1,000) caps it with
a fixed sample, stratified by label, that every run and rerun draws alike (a hash of each
file name, not a random draw). 1,000 because on the 2,100-clip benchmark a dev split of 200 videos already
chose settings whose test scores matched their dev scores within one avg-AP point
(BENCHMARKS.md, "Audio-visual desynchrony"); 0 tunes on the whole split. The candidates of a
large search are scored on one process per core (pipeline/grid_workers.py, `workers`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from data.config import to_dict
from data.records import VideoRecord
from data.version import __version__
from pipeline.checkpoint import load_checkpoint, read_checkpoint_payload, update_checkpoint
from pipeline.inference import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAMES, predict_scores
from pipeline.metrics import PROTOCOLS, ChallengeScore
from pipeline.options import TuningOptions
from pipeline.proposal_settings import write_proposals_yaml
from pipeline.proposals import (NETWORK_FREE_NOTE, ProposalConfig, VideoScores, grid_search,
                                reads_network)
from pipeline.scorer_epochs import holds_one_epoch

log = logging.getLogger(__name__)

# which evidence the curves use (chosen first, with the default proposal settings); the
# paper's reading (heads only, argmax routing, no smoothing) comes first, so ties keep it
SIGNAL_TUNING_GRID = {
    "error_weight": (0.0, 0.5, 0.75, 1.0),
    "routing": ("argmax", "soft", "joint"),
    # soft routing only: how much the modality's curve maximum counts beside the class head
    # (pipeline/proposals.py, "Evidence in soft routing")
    "routing_evidence_weight": (0.0, 0.25),
    "smooth_frames": (1, 5),
    "curve_normalization": ("none", "rank"),
    "evidence": ("reconstruction", "deviation", "learned_deviation", "sync",
                 "sync_and_learned_deviation",
                 "sync_and_learned_deviation_or_reconstruction_outlier",
                 "sync_or_spectral_detail", "sync_and_learned_deviation_or_spectral_detail",
                 "sync_and_learned_deviation_or_audio_cues"),
    "error_modalities": ("both", "audio", "visual"),
}
# then a small search space of proposal settings, each field's TUNING_START value first
# (ties keep it)
DEFAULT_TUNING_GRID = {
    "merge_gap_frames": (6, 3, 1),
    "min_frames": (4, 2),
    "video_weight": (0.0, 0.5, 1.0),
    "level_weight": (0.5, 0.0, 1.0),
    # a run's deepest dip subtracted from its score (pipeline/proposals.py, "Score")
    "valley_weight": (1.0, 0.0),
    # the log of a run's length in seconds added to its score (pipeline/proposals.py, "Score")
    "length_weight": (0.0, 0.1),
    "down_weight_real": (True, False),
    # soft-NMS only: dev chose it over hard NMS in 18 of 18 runs of the 2,100-clip benchmark
    # (`--set nms=hard` or a grid file still has hard NMS)
    "nms": ("soft",),
    # ends moved onto where the picture changes (pipeline/proposals.py, "Boundaries"): on the
    # 2,100-clip benchmark's dev split 2, 3 and 4 frames did alike (+1.1 to +1.4 avg AR)
    "snap_frames": (3, 0),
}
# the proposal settings the evidence stage is judged under, where the grid holds them
# (`tuning_start`, module docstring "Where the search starts"): those dev chose in most runs
# of the 2,100-clip benchmark, not ProposalConfig's reasoned defaults
TUNING_START = {"merge_gap_frames": 6, "min_frames": 4, "video_weight": 0.0, "level_weight": 0.5,
                "valley_weight": 1.0, "snap_frames": 3}
# passes of the two stages at most (module docstring); 1: the plain two-stage search
DEFAULT_TUNING_PASSES = TuningOptions.passes
# at most this many validation videos are tuned on (module docstring); 0: all of them
DEFAULT_TUNING_VIDEOS = TuningOptions.max_videos
# below this many videos the choice is said to be noisy (`small_split_note`): on the 2,100-clip
# benchmark, settings chosen on 50-video subsets of its 200-video dev split scored 4.9 avg AP
# below the whole split's choice on the other dev videos (mean of 12 subsets), on 100-video
# halves 3.1 (of 6); 200 is the smallest dev split seen to choose well there
SMALL_TUNING_SPLIT = 200


def tune_on_scores(scores: dict, records: Sequence[VideoRecord], *, protocol: str = "rtdeeploc",
                   signal_grid: dict | None = None, grid: dict | None = None,
                   base: ProposalConfig | None = None, workers: int | None = None,
                   passes: int = DEFAULT_TUNING_PASSES):
    """Choose ProposalConfig on precomputed validation scores, in two stages and then
    again (`coordinate_search`, at most `passes` passes).

    Stage 1 picks the evidence (`signal_grid`, default SIGNAL_TUNING_GRID; {} skips it) with
    the other settings at `base` (None: `tuning_start(grid)`); stage 2 the proposal settings
    (`grid`, default DEFAULT_TUNING_GRID) for that evidence. Each candidate is judged by 0.5 * mean AP +
    0.5 * mean AR under `protocol` (the AV-Deepfake1M challenge score, which weighs ranking
    and recall alike), on `workers` processes (None: one per core for large searches; the
    choice is the same). Returns (best config, [(overrides, objective), ...] over every
    stage run, in order).
    """
    objective = ChallengeScore(tuple(records), protocol)
    signal_grid = without_missing_evidence(SIGNAL_TUNING_GRID if signal_grid is None else signal_grid,
                                           scores)
    grid = grid or DEFAULT_TUNING_GRID
    stages = [stage for stage in (signal_grid, grid) if stage]
    return coordinate_search(scores, objective, stages, base or tuning_start(grid), passes=passes,
                             workers=workers)


def tuning_start(grid: Mapping[str, Sequence]) -> ProposalConfig:
    """Where `tune_on_scores` starts: ProposalConfig's defaults with each TUNING_START value
    that the proposal `grid` holds (a value outside a user's grid could otherwise survive
    into the choice: a stage keeps the best so far when its own best scores lower)."""
    return dataclasses.replace(ProposalConfig(), **{name: value for name, value in TUNING_START.items()
                                                    if value in tuple(grid.get(name, ()))})


def coordinate_search(scores: Mapping[str, VideoScores], objective, stages: Sequence[dict],
                      base: ProposalConfig | None = None, *, passes: int = DEFAULT_TUNING_PASSES,
                      workers: int | None = None) -> tuple[ProposalConfig, list]:
    """Search each grid of `stages` in turn (`grid_search`), each from the best so far.

    The first pass takes each stage's best unless it scores below the best so far (never
    with grids that hold the values they start from, as the defaults do: then it is the
    plain staged search). A later pass moves only to a strictly better candidate, and stops
    as soon as its first stage finds none: the next stages would search from where they did
    before. So the chosen candidate scores the most of all tried. At most `passes` passes.
    Returns (best config, [(overrides, objective), ...] of every stage run, in order).
    """
    if passes < 1:
        raise ValueError(f"passes: must be >= 1, got {passes}")
    best, best_value, tried = base or ProposalConfig(), -math.inf, []
    for done in range(passes):
        if done and len(stages) < 2:
            break  # one grid searched again from its own best finds the same
        for index, stage in enumerate(stages):
            config, results = grid_search(scores, objective, stage, best, workers=workers)
            tried += results
            value = max(v for _, v in results)
            if value > best_value or (not done and value == best_value):
                best, best_value = config, value
            elif index == 0:
                return best, tried
    return best, tried


def without_missing_evidence(signal_grid: dict, scores: Mapping[str, VideoScores]) -> dict:
    """`signal_grid` without the evidence kinds no video has (the learned deviation of a
    model without the scorers, the desynchrony of a checkpoint from before it), so no
    candidate reads an all-zero evidence (a mean of two kinds needs both)."""
    def present(*fields: str) -> bool:
        return any(getattr(v, name) is not None and np.any(getattr(v, name))
                   for v in scores.values() for name in fields)

    has = {"learned_deviation": present("visual_learned_deviation", "audio_learned_deviation"),
           "sync": present("sync_evidence"),
           "reconstruction": present("visual_evidence", "audio_evidence")}
    has["sync_and_learned_deviation"] = has["learned_deviation"] and has["sync"]
    for kind in ("sync_learned_deviation_and_reconstruction",
                 "sync_and_learned_deviation_or_reconstruction_outlier"):
        has[kind] = has["sync_and_learned_deviation"] and has["reconstruction"]
    has["sync_or_spectral_detail"] = has["sync"] and present("spectral_detail_evidence")
    has["sync_and_learned_deviation_or_spectral_detail"] = (has["sync_or_spectral_detail"]
                                                            and has["learned_deviation"])
    has["sync_and_learned_deviation_or_audio_cues"] = (
        has["sync_and_learned_deviation_or_spectral_detail"]
        and present("audio_learned_deviation_evidence"))
    # the paper's own reading stays in the grid even for a model without the FDN
    has["reconstruction"] = True
    kinds = tuple(k for k in signal_grid.get("evidence", ()) if has.get(k, True))
    if "evidence" not in signal_grid or len(kinds) == len(signal_grid["evidence"]):
        return signal_grid
    return {**signal_grid, "evidence": kinds}


def tuning_sample(records: Sequence[VideoRecord], max_videos: int) -> list[VideoRecord]:
    """`max_videos` of `records` (all of them when 0 or when there are no more), in their
    given order: from each label a share proportional to its size (rounded so that every
    label keeps a video while the budget allows), the videos whose file names hash lowest,
    so the same split always gives the same sample."""
    records = list(records)
    if max_videos < 0:
        raise ValueError(f"max_videos: must be >= 0 (0: every video), got {max_videos}")
    if max_videos == 0 or len(records) <= max_videos:
        return records
    by_label: dict[int, list[VideoRecord]] = {}
    for record in records:
        by_label.setdefault(record.label, []).append(record)
    shares = {label: len(group) * max_videos / len(records) for label, group in by_label.items()}
    counts = {label: int(share) for label, share in shares.items()}
    # the videos left by rounding down go first to labels that got none, then to the
    # labels that lost the largest fractions
    order = sorted(shares, key=lambda k: (counts[k] > 0, counts[k] - shares[k], k))
    for label in order[:max_videos - sum(counts.values())]:
        counts[label] += 1

    def key(record: VideoRecord) -> str:
        return hashlib.sha1(record.file.encode()).hexdigest()

    chosen = {r.file for label, group in by_label.items() for r in sorted(group, key=key)[:counts[label]]}
    return [r for r in records if r.file in chosen]


def tune_proposals(model, cache, records: Sequence[VideoRecord], grid: dict | None = None, *,
                   protocol: str = "rtdeeploc", base: ProposalConfig | None = None, device="cpu",
                   batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
                   signal_grid: dict | None = None, workers: int | None = None,
                   passes: int = DEFAULT_TUNING_PASSES):
    """Choose ProposalConfig fields on a validation split (never the test split).

    Runs the model once, then `tune_on_scores`. Returns (best config, [(overrides, objective), ...]).
    """
    records = list(records)
    scores = predict_scores(model, cache, records, device=device, batch_size=batch_size,
                            max_frames=max_frames)
    return tune_on_scores(scores, records, protocol=protocol, signal_grid=signal_grid, grid=grid,
                          base=base, workers=workers, passes=passes)


def objective_text(protocol: str) -> str:
    """The tuning objective in words (what `tune_on_scores` maximises)."""
    chosen = PROTOCOLS[protocol]
    ap = ",".join(f"{v:g}" for v in chosen.ap_iou)
    ar = ",".join(str(v) for v in chosen.ar_n)
    return (f"0.5 * mean AP + 0.5 * mean AR ({protocol} protocol: AP at IoU {ap}, "
            f"AR@{ar} averaged over IoU {chosen.ar_iou[0]:g}-{chosen.ar_iou[-1]:g})")


def tune_model(model, cache, records: Sequence, *, split: str, protocol: str = "rtdeeploc",
               signal_grid: dict | None = None, grid: dict | None = None, device="cpu",
               batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
               max_videos: int = DEFAULT_TUNING_VIDEOS, workers: int | None = None,
               passes: int = DEFAULT_TUNING_PASSES,
               tuned_by: str = "rtdl tune") -> tuple[ProposalConfig, dict]:
    """(chosen ProposalConfig, tuning record) for `model` on the validation `records`
    (at most `max_videos` of them, `tuning_sample`; 0: all), scored on `workers` processes
    (None: one per core for large searches)."""
    split_videos = len(records)
    records = tuning_sample(records, max_videos)
    if not any(r.fake_segments for r in records):
        raise ValueError(f"split {split!r} has no fake video: proposal settings cannot be "
                         f"judged on it (AP is undefined); choose a validation split with fakes")
    signal_grid = SIGNAL_TUNING_GRID if signal_grid is None else signal_grid
    grid = DEFAULT_TUNING_GRID if grid is None else grid
    best, tried = tune_proposals(model, cache, records, grid, protocol=protocol, device=device,
                                 signal_grid=signal_grid, workers=workers, passes=passes,
                                 batch_size=batch_size, max_frames=max_frames)
    # stage 1 may have run on fewer kinds of evidence than asked (without_missing_evidence)
    signal_grid = {k: list(dict.fromkeys(overrides[k] for overrides, _ in tried if k in overrides))
                   for k in signal_grid}
    signal_grid = {k: v for k, v in signal_grid.items() if v}
    values = [value for _, value in tried]
    record = {
        "tuned_by": tuned_by,
        "rtdl_version": __version__,
        "split": split,
        "videos": len(records),
        "split_videos": split_videos,  # more than "videos": a fixed sample (tuning_sample)
        "passes": passes,  # at most (coordinate_search)
        "protocol": protocol,
        "objective": objective_text(protocol),
        # the chosen candidate scores the most of all tried (coordinate_search)
        "best_objective": max(values) if values else None,
        # the first candidate: the search's start (`tuning_start`) with the paper's evidence
        "default_objective": tried[0][1] if tried else None,
        # False: the chosen proposals would be the same without the network (reads_network)
        "reads_network": reads_network(best),
        "signal_grid": {k: list(v) for k, v in signal_grid.items()},
        "grid": {k: list(v) for k, v in grid.items()},
        "tried": [[overrides, value] for overrides, value in tried],
    }
    return best, record


def describe_tuning(record: Mapping[str, Any]) -> list[str]:
    """Lines saying how proposal settings were chosen (for the terminal and YAML comments)."""
    best, default = record.get("best_objective"), record.get("default_objective")
    score = (f"best {best:.4f} (start {default:.4f}) over {len(record.get('tried', []))} candidates"
             if best is not None and default is not None else "no candidate scored")
    videos, of = record.get("videos", "?"), record.get("split_videos")
    videos = (f"{videos} of {of} videos, a fixed sample stratified by label"
              if of is not None and of != videos else f"{videos} videos")
    return [f"tuned by {record.get('tuned_by', '?')} on split {record.get('split')!r} "
            f"({videos}): {score}",
            f"objective: {record.get('objective', '?')}",
            f"grid, stage 1 (evidence): {record.get('signal_grid', {}) or 'skipped'}",
            f"grid, stage 2 (proposals): {record.get('grid', {})}",
            f"passes of both stages, each from the best so far: {record.get('passes', 1)} at most",
            *small_split_note(record), *network_note(record)]


def small_split_note(record: Mapping[str, Any]) -> list[str]:
    """A line when the settings were chosen on fewer than SMALL_TUNING_SPLIT videos."""
    videos = record.get("videos")
    if not isinstance(videos, int) or videos >= SMALL_TUNING_SPLIT:
        return []
    return [f"chosen on only {videos} videos, a noisy choice among about two thousand candidates: "
            f"on rtdl's 2,100-clip benchmark, settings chosen on 50 (100) of its 200 dev videos "
            f"scored 4.9 (3.1) avg AP below the whole split's choice on the dev videos outside "
            f"them (BENCHMARKS.md, \"How many dev videos it takes to choose\"); `rtdl tune` on "
            f"a larger validation split redoes it"]


def network_note(record: Mapping[str, Any]) -> list[str]:
    """A line when the chosen settings read no output of the RT-DeepLoc network."""
    if record.get("reads_network", True):
        return []
    return [NETWORK_FREE_NOTE]


def tune_run_checkpoints(best_path: Path, last_path: Path, last_model, cache, val_records: Sequence,
                         val_split: str, device, max_videos: int = DEFAULT_TUNING_VIDEOS,
                         workers: int | None = None, passes: int = DEFAULT_TUNING_PASSES,
                         tune_last: bool = False) -> tuple[ProposalConfig, dict]:
    """The last step of `rtdl train`: tune proposal settings on the validation split for
    best.pt's weights, store them in best.pt and write proposals.yaml beside it. last.pt gets
    the same settings when it holds the same weights; when they differ, a search of its own
    with `tune_last` (as long as the first: on the AVX2 demo 200 s of its 824), else none,
    so that `rtdl predict` on it says it holds no tuned settings instead of using best.pt's.
    Returns best.pt's (config, record)."""
    best = load_checkpoint(best_path, map_location=device)
    config, record = tune_model(best.model, cache, val_records, split=val_split, device=device,
                                max_videos=max_videos, workers=workers, passes=passes,
                                tuned_by="rtdl train")
    record["checkpoint_epoch"] = best.epoch
    update_checkpoint(best_path, proposal_config=to_dict(config), proposal_tuning=record)
    last_epoch = int(read_checkpoint_payload(last_path)["epoch"])
    # the same weights, the same settings; best.pt may hold scorers of another epoch
    # (pipeline/scorer_epochs.py), and then its weights differ from last.pt's
    if last_epoch == best.epoch and holds_one_epoch(best.epoch, best.metrics):
        update_checkpoint(last_path, proposal_config=to_dict(config), proposal_tuning=record)
    elif tune_last:
        last_config, last_record = tune_model(last_model, cache, val_records, split=val_split,
                                              device=device, max_videos=max_videos,
                                              workers=workers, passes=passes,
                                              tuned_by="rtdl train")
        last_record["checkpoint_epoch"] = last_epoch
        update_checkpoint(last_path, proposal_config=to_dict(last_config), proposal_tuning=last_record)
    write_proposals_yaml(config, best_path.with_name("proposals.yaml"),
                         [f"proposal settings for {best_path} (epoch {best.epoch}), also stored in it",
                          *describe_tuning(record)])
    return config, record
