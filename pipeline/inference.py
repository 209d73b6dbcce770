"""Batched inference over feature arrays: a model's class probabilities and frame curves
for whole videos, from memory (`predict_arrays`) or from a feature cache (`predict_scores`),
and the proposals they give (`run_predictions`, `localize_features`).

Choices
- Videos are sorted by length before batching so that padding stays small; outputs are
  keyed by file, so the order of computation does not matter.
- A video longer than `max_frames` is cut into non-overlapping windows (default 4096
  frames, 2.7 min at 25 fps: every LAV-DF / AV-Deepfake1M video is processed whole). Frame
  curves are concatenated. Its class probabilities are those of the window with the
  highest fake probability (1 - p_real): the model's own video score is Top-K MIL over the
  most suspicious frames, and the most suspicious window is the nearest equivalent.
- If the visual and audio arrays of a video differ in length, both are cut to the shorter
  one (as the training dataset does), so no frame is invented.
- A requested video that is not in the cache is an error by default (an incomplete
  extraction should not silently lower recall); `allow_missing=True` leaves it out of the
  scores, and `run_predictions` gives it an empty proposal list.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from data.labels import LABELS, fake_probability
from data.records import VideoRecord
from model.rtdeeploc import FRAME_FIELDS
from pipeline.dataset import check_finite_features, iter_windows, missing_keys_error, pad_sequences, \
    trim_to_shorter
from pipeline.devices import resolve_device
from pipeline.options import InferenceOptions
from pipeline.proposals import ProposalConfig, VideoScores, all_proposals, labelled_proposals, \
    localizer_curves, predicted_label, route, soft_routing_probabilities

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = InferenceOptions.batch_size
DEFAULT_MAX_FRAMES = InferenceOptions.max_frames


# ---------------------------------------------------------------- inference on arrays


@torch.inference_mode()
def _run_batch(model, windows: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> list[dict]:
    """Model outputs for a list of (visual [t,Dv], audio [t,Da]) windows, unpadded, on CPU."""
    lengths = [v.shape[0] for v, _ in windows]
    visual, audio, mask = pad_sequences([v for v, _ in windows], [a for _, a in windows])  # [B, T, D], [B, T]
    pred = model.predict(visual.to(device), audio.to(device), mask.to(device))
    class_probs = pred.class_probs.float().cpu().numpy()  # [B, 4]
    frames = {name: getattr(pred, name).float().cpu().numpy() for name in FRAME_FIELDS}  # [B, T] each
    return [{"class_probs": class_probs[b], **{name: frames[name][b, :n] for name in FRAME_FIELDS}}
            for b, n in enumerate(lengths)]


def _stitch(parts: list[tuple[int, dict]]) -> dict:
    """One video's outputs from its windows' outputs ((start frame, outputs) pairs)."""
    parts = sorted(parts, key=lambda p: p[0])
    fake = [fake_probability(out["class_probs"]) for _, out in parts]
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
        visual, audio = trim_to_shorter(visual, audio)  # [T, Dv], [T, Da]
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
                       audio_evidence=outputs.get("audio_error_evidence"),
                       visual_deviation_evidence=outputs.get("visual_deviation_evidence"),
                       audio_deviation_evidence=outputs.get("audio_deviation_evidence"),
                       visual_learned_deviation=outputs.get("visual_learned_deviation"),
                       audio_learned_deviation=outputs.get("audio_learned_deviation"),
                       audio_learned_deviation_evidence=outputs.get("audio_learned_deviation_evidence"),
                       sync_evidence=outputs.get("sync_evidence"),
                       spectral_detail_evidence=outputs.get("spectral_detail_evidence"),
                       visual_change=outputs.get("visual_change"))


def localize_features(model, visual: np.ndarray, audio: np.ndarray, fps: float, duration: float, *,
                      proposal_config: ProposalConfig | None = None, device="cpu",
                      max_frames: int = DEFAULT_MAX_FRAMES) -> tuple[dict, dict]:
    """(result fields, frame outputs) for one video's features visual [T,Dv], audio [T,Da]:
    the predicted label, class probabilities, routed branch and labelled segments, and with
    soft routing "modality_probs", the P(modality modified) each modality's segments were
    weighed by (`proposals.soft_routing_probabilities`). The frame outputs are the model's
    (FRAME_FIELDS) plus "localizer_curve_<branch>", each curve the segments were cut from
    (`proposals.localizer_curves`), for plots and reports."""
    outputs = predict_arrays(model, [("video", visual, audio)], device=device, batch_size=1,
                             max_frames=max_frames)["video"]
    scores = to_video_scores(outputs, fps, duration)
    cfg = proposal_config or ProposalConfig()
    curves = localizer_curves(scores, cfg)
    for branch, curve in curves.items():
        outputs[f"localizer_curve_{branch}"] = curve
    segments = [{"start": start, "end": end, "score": score, "modality": modality}
                for score, start, end, modality in labelled_proposals(scores, cfg)]
    result = {
        "label": predicted_label(scores.class_probs),
        "class_probs": {name: float(p) for name, p in zip(LABELS, scores.class_probs)},
        "routed_branch": route(scores.class_probs),
        "segments": segments,
    }
    if cfg.routing == "soft":
        result["modality_probs"] = soft_routing_probabilities(scores, cfg, curves)
    return result, outputs


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
    return predictions_from_scores(scores, records, proposal_config)


def predictions_from_scores(scores: dict[str, VideoScores], records: Sequence[VideoRecord] | None,
                            proposal_config: ProposalConfig | None = None
                            ) -> tuple[dict[str, list], dict[str, list[float]]]:
    """`run_predictions` from the output of `predict_scores`, for callers that also read the curves."""
    proposals = all_proposals(scores, proposal_config)
    order = [r.file for r in records] if records is not None else list(scores)
    predictions = {key: proposals.get(key, []) for key in order}
    video_probs = {key: [float(p) for p in scores[key].class_probs] for key in order if key in scores}
    return predictions, video_probs
