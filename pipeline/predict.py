"""`rtdl predict`: run a checkpoint over cached features, write proposals the official
LAV-DF / AV-Deepfake1M evaluators read, plus video-level class probabilities.

Outputs
- `preds.json`: `{file: [[score, start, end], ...]}`, every requested video present (an
  empty list where it has no proposal), each list sorted by score, highest first. Scores
  are rounded to 6 decimals and times to 4 (0.1 ms) to keep files of 100 k videos small;
  list order is decided before rounding.
- `<out stem>_probs.json`: `{file: [p_real, p_visual_only, p_audio_only, p_both]}`, the
  order of `data.records.LABELS`, for video-level AUC.
- `<out stem>_proposals.yaml`: the proposal settings used, with a comment saying where they
  came from (a `--proposals` file, the checkpoint's tuned settings, or the defaults; see
  pipeline/tune.py); `--proposals` reads it back.

Choices
- Videos are sorted by length before batching so that padding stays small; outputs are
  keyed by file, so the order of computation does not matter.
- A video longer than `max_frames` is cut into non-overlapping windows (default 4096
  frames, 2.7 min at 25 fps: every LAV-DF / AV-Deepfake1M video is processed whole). Frame
  curves are concatenated. Its class probabilities are those of the window with the
  highest fake probability (1 - p_real): the model's own video score is Top-K MIL over the
  most suspicious frames, and the most suspicious window is the nearest equivalent.
- If the visual and audio arrays of a cached video differ in length, both are cut to the
  shorter one (as the training dataset does), so no frame is invented.
- A requested video that is not in the cache is an error by default (an incomplete
  extraction should not silently lower recall); `allow_missing=True` writes an empty list
  for it instead (the evaluator then counts its segments as missed) and leaves it out of
  the probabilities file.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from data.labels import LABELS
from data.records import VideoRecord
from pipeline.dataset import cache_name, check_finite_features, iter_windows, missing_keys_error
from pipeline.devices import resolve_device
from model.rtdeeploc import FRAME_FIELDS
from pipeline.proposals import ProposalConfig, VideoScores, all_proposals

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_FRAMES = 4096
DEVICES = ("auto", "cpu", "cuda")


# ---------------------------------------------------------------- inference on arrays


def _trim(visual: np.ndarray, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(visual.shape[0], audio.shape[0])
    return np.asarray(visual[:n], np.float32), np.asarray(audio[:n], np.float32)


@torch.inference_mode()
def _run_batch(model, windows: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> list[dict]:
    """Model outputs for a list of (visual [t,Dv], audio [t,Da]) windows, unpadded, on CPU."""
    lengths = [v.shape[0] for v, _ in windows]
    batch, longest = len(windows), max(lengths)
    dv, da = windows[0][0].shape[1], windows[0][1].shape[1]
    visual = torch.zeros(batch, longest, dv)  # [B, T, Dv], zero-padded
    audio = torch.zeros(batch, longest, da)  # [B, T, Da]
    mask = torch.zeros(batch, longest, dtype=torch.bool)  # [B, T], True = valid frame
    for b, ((v, a), n) in enumerate(zip(windows, lengths)):
        visual[b, :n] = torch.from_numpy(v)
        audio[b, :n] = torch.from_numpy(a)
        mask[b, :n] = True
    pred = model.predict(visual.to(device), audio.to(device), mask.to(device))
    class_probs = pred.class_probs.float().cpu().numpy()  # [B, 4]
    frames = {name: getattr(pred, name).float().cpu().numpy() for name in FRAME_FIELDS}  # [B, T] each
    return [{"class_probs": class_probs[b], **{name: frames[name][b, :n] for name in FRAME_FIELDS}}
            for b, n in enumerate(lengths)]


def _stitch(parts: list[tuple[int, dict]]) -> dict:
    """One video's outputs from its windows' outputs ((start frame, outputs) pairs)."""
    parts = sorted(parts, key=lambda p: p[0])
    fake = [1.0 - float(out["class_probs"][0]) for _, out in parts]
    stitched = {"class_probs": parts[int(np.argmax(fake))][1]["class_probs"]}  # most suspicious window
    for name in FRAME_FIELDS:
        stitched[name] = np.concatenate([out[name] for _, out in parts])  # [T]
    return stitched


class _Batcher:
    """Collects windows of videos, runs them `batch_size` at a time, stitches per video."""

    def __init__(self, model, device: torch.device, batch_size: int, max_frames: int):
        self.model, self.device = model, device
        self.batch_size, self.max_frames = batch_size, max_frames
        self.pending: list[tuple[str, int, np.ndarray, np.ndarray]] = []  # (key, start, visual, audio)
        self.parts: dict[str, list[tuple[int, dict]]] = defaultdict(list)

    def add(self, key: str, visual: np.ndarray, audio: np.ndarray) -> None:
        visual, audio = _trim(visual, audio)  # [T, Dv], [T, Da]
        if visual.shape[0] == 0:
            raise ValueError(f"video {key!r} has zero frames of features")
        for start, stop in iter_windows(visual.shape[0], self.max_frames):
            self.pending.append((key, start, visual[start:stop], audio[start:stop]))
        while len(self.pending) >= self.batch_size:
            self._flush(self.batch_size)

    def _flush(self, count: int) -> None:
        chunk, self.pending = self.pending[:count], self.pending[count:]
        outputs = _run_batch(self.model, [(v, a) for _, _, v, a in chunk], self.device)
        for (key, start, _, _), out in zip(chunk, outputs):
            self.parts[key].append((start, out))

    def finish(self) -> dict[str, dict]:
        while self.pending:
            self._flush(self.batch_size)
        return {key: _stitch(parts) for key, parts in self.parts.items()}


def predict_arrays(model, videos: Iterable[tuple[str, np.ndarray, np.ndarray]], *, device="cpu",
                   batch_size: int = DEFAULT_BATCH_SIZE,
                   max_frames: int = DEFAULT_MAX_FRAMES) -> dict[str, dict]:
    """Model outputs for in-memory videos (key, visual [T,Dv], audio [T,Da]).

    Returns {key: {"class_probs": [4], "visual_scores": [T], "audio_scores": [T],
    "joint_scores": [T], "visual_recon_error": [T], "audio_recon_error": [T]}} (numpy).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    device = resolve_device(device) if isinstance(device, str) else device
    model.eval()
    batcher = _Batcher(model, device, batch_size, max_frames)
    for key, visual, audio in videos:
        batcher.add(key, visual, audio)
    return batcher.finish()


def to_video_scores(outputs: dict, fps: float, duration: float) -> VideoScores:
    """VideoScores (what proposals need) from one video's `predict_arrays` outputs."""
    return VideoScores(class_probs=outputs["class_probs"], visual_scores=outputs["visual_scores"],
                       audio_scores=outputs["audio_scores"], joint_scores=outputs["joint_scores"],
                       fps=fps, duration=duration, visual_evidence=outputs.get("visual_error_evidence"),
                       audio_evidence=outputs.get("audio_error_evidence"))


# ---------------------------------------------------------------- over a cache


def _requested_keys(cache, records: Sequence[VideoRecord] | None, allow_missing: bool) -> tuple[list[str], list[str]]:
    """(keys present in the cache, keys requested but missing), in request order."""
    if records is None:
        return list(cache.keys()), []
    keys = [r.file for r in records]
    missing = [k for k in keys if k not in cache]
    if missing and not allow_missing:
        raise missing_keys_error(cache, missing, "run `rtdl extract` for them, pass the cache shards "
                                                 "that hold them, or allow missing videos (--allow-missing)")
    if missing:
        log.warning("%d video(s) are not in the feature cache; they get empty proposal lists", len(missing))
    return [k for k in keys if k in cache], missing


def predict_scores(model, cache, records: Sequence[VideoRecord] | None = None, *, device="cpu",
                   batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
                   allow_missing: bool = False) -> dict[str, VideoScores]:
    """Per-video class probabilities and frame scores for `records` (None: every cached video).

    Use this once on a validation split, then `proposals.grid_search` over its output.
    """
    keys, _ = _requested_keys(cache, records, allow_missing)
    info = {key: cache.info(key) for key in keys}
    by_length = sorted(keys, key=lambda k: info[k]["n_frames"])  # little padding per batch

    def reads():
        for key in tqdm(by_length, desc="predicting", unit="video", disable=len(keys) < 50):
            visual, audio = cache.read(key)  # [T, Dv], [T, Da]
            check_finite_features(cache, key, visual, audio)  # NaN would reach the JSON output
            yield key, visual, audio

    outputs = predict_arrays(model, reads(), device=device, batch_size=batch_size, max_frames=max_frames)
    return {key: to_video_scores(outputs[key], info[key]["fps"], info[key]["duration"]) for key in keys}


def run_predictions(model, cache, records: Sequence[VideoRecord] | None, *,
                    proposal_config: ProposalConfig | None = None, device="cpu",
                    batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
                    allow_missing: bool = False) -> tuple[dict[str, list], dict[str, list[float]]]:
    """(predictions {file: [[score, start, end], ...]}, video_probs {file: [4 floats]}).

    Every record's file is a key of `predictions`, in record order (None: every cached video).
    """
    scores = predict_scores(model, cache, records, device=device, batch_size=batch_size,
                            max_frames=max_frames, allow_missing=allow_missing)
    proposals = all_proposals(scores, proposal_config)
    order = [r.file for r in records] if records is not None else list(scores)
    predictions = {key: proposals.get(key, []) for key in order}
    video_probs = {key: [float(p) for p in scores[key].class_probs] for key in order if key in scores}
    return predictions, video_probs


# ---------------------------------------------------------------- tuning on validation

# which evidence the curves use (chosen first, with the default proposal settings); the
# paper's reading (heads only, argmax routing, no smoothing) comes first, so ties keep it
SIGNAL_TUNING_GRID = {
    "error_weight": (0.0, 0.5, 0.75, 1.0),
    "routing": ("argmax", "soft", "joint"),
    "smooth_frames": (1, 5),
}
# then a small search space around the default proposal settings (defaults first)
DEFAULT_TUNING_GRID = {
    "merge_gap_frames": (3, 1, 6),
    "min_frames": (2, 4),
    "video_weight": (0.5, 0.0, 1.0),
    "nms": ("soft", "hard"),
}


def tune_on_scores(scores: dict, records: Sequence[VideoRecord], *, protocol: str = "rtdeeploc",
                   signal_grid: dict | None = None, grid: dict | None = None,
                   base: ProposalConfig | None = None):
    """Choose ProposalConfig on precomputed validation scores, in two stages.

    Stage 1 picks the evidence (`signal_grid`, default SIGNAL_TUNING_GRID; {} skips it) with
    the other settings at `base`; stage 2 the proposal settings (`grid`, default
    DEFAULT_TUNING_GRID) for that evidence. Searching both jointly would multiply the grids
    for little gain. Each candidate is judged by 0.5 * mean AP + 0.5 * mean AR under
    `protocol` (the AV-Deepfake1M challenge score, which weighs ranking and recall alike).
    Returns (best config, [(overrides, objective), ...] over both stages).
    """
    from pipeline.evaluate import PROTOCOLS, evaluate_predictions
    from pipeline.proposals import grid_search

    settings = PROTOCOLS[protocol]
    records = list(records)

    def objective(predictions: dict) -> float:
        metrics = evaluate_predictions(predictions, records, ap_iou=settings.ap_iou, ar_n=settings.ar_n,
                                       ar_iou=settings.ar_iou)
        return 0.5 * metrics["ap_avg"] + 0.5 * metrics["ar_avg"]

    signal_grid = SIGNAL_TUNING_GRID if signal_grid is None else signal_grid
    tried: list = []
    if signal_grid:
        base, tried = grid_search(scores, objective, signal_grid, base)
    best, second = grid_search(scores, objective, grid or DEFAULT_TUNING_GRID, base)
    return best, tried + second


def tune_proposals(model, cache, records: Sequence[VideoRecord], grid: dict | None = None, *,
                   protocol: str = "rtdeeploc", base: ProposalConfig | None = None, device="cpu",
                   batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
                   signal_grid: dict | None = None):
    """Choose ProposalConfig fields on a validation split (never the test split).

    Runs the model once, then `tune_on_scores`. Returns (best config, [(overrides, objective), ...]).
    """
    records = list(records)
    scores = predict_scores(model, cache, records, device=device, batch_size=batch_size,
                            max_frames=max_frames)
    return tune_on_scores(scores, records, protocol=protocol, signal_grid=signal_grid, grid=grid,
                          base=base)


# ---------------------------------------------------------------- files


def check_feature_settings(cache_settings: dict, checkpoint_settings: dict,
                           cache_label: str, checkpoint_label: str) -> None:
    """ValueError naming the differing fields when the cache was not made like the training cache."""
    from data.cache import describe_settings_difference

    difference = describe_settings_difference(dict(checkpoint_settings), dict(cache_settings))
    if difference:
        raise ValueError(
            f"{cache_label}: extractor settings differ from those the checkpoint {checkpoint_label} "
            f"was trained on (checkpoint vs cache: {difference}); re-extract the features with "
            f"the checkpoint's settings")


def probs_path_for(out_path: str | Path) -> Path:
    """`preds.json` -> `preds_probs.json` (same folder)."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}_probs.json")


def _json_text(path: Path, obj) -> str:
    try:  # NaN / Infinity are not JSON: official evaluators and strict parsers reject the file
        return json.dumps(obj, allow_nan=False)
    except ValueError:
        raise ValueError(f"{path}: not written: the model produced NaN or Inf scores from finite "
                         f"features; the checkpoint's weights are likely broken") from None


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def predict_split(cache_path, checkpoint_path, metadata_path=None, split: str | None = None, *,
                  out_path, proposal_config: ProposalConfig | None = None, device: str = "auto",
                  batch_size: int = DEFAULT_BATCH_SIZE, max_frames: int = DEFAULT_MAX_FRAMES,
                  allow_missing: bool = False, proposals_path: str | Path | None = None,
                  proposal_overrides: Sequence[str] = ()) -> dict:
    """Write preds.json, <stem>_probs.json and <stem>_proposals.yaml for one split (or
    every cached video).

    proposal_config: the settings to use; None chooses them as `rtdl predict` does (the
    `proposals_path` file, else the checkpoint's tuned settings, else the defaults, with
    `proposal_overrides` on top). Returns a summary dict: paths written, number of videos
    and proposals, the settings used and where they came from.
    """
    from data.cache import FeatureCache
    from pipeline.checkpoint import load_checkpoint

    if split is not None and metadata_path is None:
        raise ValueError("--split needs --metadata: the split of a video comes from the metadata")
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(checkpoint_path, map_location=torch_device)
    if proposal_config is None:
        from pipeline.tune import resolve_proposal_config

        proposal_config, proposal_source = resolve_proposal_config(
            checkpoint, str(checkpoint_path), proposals_path, proposal_overrides)
    else:
        proposal_source = "given by the caller"
    cache = FeatureCache(cache_path)
    check_feature_settings(cache.settings, checkpoint.feature_settings, cache_name(cache), str(checkpoint_path))
    if (cache.visual_dim, cache.audio_dim) != (checkpoint.visual_dim, checkpoint.audio_dim):
        raise ValueError(f"{cache_name(cache)}: feature dims (visual {cache.visual_dim}, audio "
                         f"{cache.audio_dim}) differ from the checkpoint {checkpoint_path} "
                         f"(visual {checkpoint.visual_dim}, audio {checkpoint.audio_dim})")
    records = None
    if metadata_path is not None:
        from data.metadata import load_metadata, records_for_split

        records = load_metadata(metadata_path)
        if split is not None:
            records = records_for_split(records, split)
    predictions, video_probs = run_predictions(
        checkpoint.model, cache, records, proposal_config=proposal_config, device=torch_device,
        batch_size=batch_size, max_frames=max_frames, allow_missing=allow_missing)
    out_path = Path(out_path)
    probs_path = probs_path_for(out_path)
    # both files are serialised before either is written, so a failure leaves neither
    texts = {out_path: _json_text(out_path, {key: [[round(s, 6), round(a, 4), round(b, 4)]
                                                   for s, a, b in props]
                                             for key, props in predictions.items()}),
             probs_path: _json_text(probs_path, {key: [round(p, 6) for p in probs]
                                                 for key, probs in video_probs.items()})}
    for path, text in texts.items():
        _write_text(path, text)
    from pipeline.tune import write_proposals_yaml

    settings_path = write_proposals_yaml(
        proposal_config, out_path.with_name(f"{out_path.stem}_proposals.yaml"),
        [f"proposal settings used for {out_path.name}: {proposal_source}"])
    summary = {"predictions": str(out_path), "probabilities": str(probs_path), "videos": len(predictions),
               "proposals": sum(len(p) for p in predictions.values()),
               "labels": list(LABELS), "proposal_settings": str(settings_path),
               "proposal_source": proposal_source}
    log.info("wrote %s (%d videos, %d proposals) and %s", out_path, summary["videos"],
             summary["proposals"], probs_path)
    return summary
