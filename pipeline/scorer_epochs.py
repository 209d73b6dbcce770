"""Each learned deviation scorer kept at its own best epoch (`train.deviation_scorer_epoch: own`).

The scorers (model/deviation_scorer.py) read the standardised input and nothing upstream
trains through them, so the network's best epoch need not be theirs: on rtdl's benchmark
the network's best epoch was the first in every run while the audio scorer went on
improving (dev frame AUC 0.682 at epoch 1, 0.714 at epoch 4; BENCHMARKS.md, "Three audio
cues, and where recall is lost"). With "own", every epoch's validation also reads each
scorer's mean per-video frame AUC of its modality on the validation split (the frame
labels the validation AP already uses), the trainer keeps the weights of each scorer's
best epoch (and, for audio, the percentile calibration fitted to them), and at the end of
the run best.pt gets them in place of the scorers of the network's best epoch.

Choices:
- The reading: the frame AUC of the scorer's own probability, per modality, over the
  validation videos whose modality is forged (pipeline/diagnostics.py). It judges the
  scorer as the localizer uses it, frame by frame within a video; the video-level AUC of
  its pooled score would judge what Top-K MIL trains, which is not what it is used for.
  A modality no validation video forges has no reading and keeps the network's epoch.
- Ties keep the earlier epoch, as the network's selection does.
- Composed once, when the run ends, and again on every later `--resume` (idempotent):
  best.pt holds the network's best epoch with that epoch's scorers while the run goes on,
  and a run killed between its last epoch and the composition is finished by resuming it.
  The kept scorer weights live in last.pt's train state, so a resumed run remembers them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import torch

from data.records import VideoRecord
from pipeline.checkpoint import read_checkpoint_payload, save_payload, unwrap_model
from pipeline.diagnostics import MODALITIES, frame_auc_table

log = logging.getLogger(__name__)

# a scorer's weights, and the buffers fitted to its output, by modality
SCORER_PREFIXES = {"visual": ("deviation_scorers.visual.",),
                   "audio": ("deviation_scorers.audio.", "audio_learned_calibration.")}


def reading_key(modality: str) -> str:
    """The metrics.jsonl column of a scorer's validation frame AUC."""
    return f"val_{modality}_scorer_frame_auc"


def scorer_frame_aucs(scores: Mapping, records: Sequence[VideoRecord]) -> dict[str, float]:
    """{modality: mean per-video frame AUC of its learned deviation} over the fake `records`.

    scores: {file: VideoScores} (pipeline/inference.predict_scores); modalities without a
    scorer output or without a forged validation video are left out."""
    signals = {}
    for file, video in scores.items():
        curves = {m: getattr(video, f"{m}_learned_deviation") for m in MODALITIES}
        if all(c is not None for c in curves.values()):
            signals[file] = curves
    table = frame_auc_table(signals, records)
    return {m: table[m][m]["all"]["auc"] for m in MODALITIES
            if m in table and "all" in table[m].get(m, {})}


def snapshot(model, modality: str) -> dict[str, torch.Tensor]:
    """A CPU copy of one scorer's weights and the buffers fitted to it."""
    return {k: v.detach().to("cpu", copy=True) for k, v in unwrap_model(model).state_dict().items()
            if k.startswith(SCORER_PREFIXES[modality])}


def update_best_scorers(best: dict, model, readings: Mapping[str, float], epoch: int) -> dict:
    """Keep each scorer whose reading beats its best so far; returns the updated record
    {modality: {"value", "epoch", "state"}} (`epoch` is 1-based)."""
    best = dict(best)
    for modality, value in readings.items():
        if modality not in best or value > best[modality]["value"]:
            best[modality] = {"value": float(value), "epoch": int(epoch),
                              "state": snapshot(model, modality)}
    return best


def compose_best_checkpoint(best_path: Path, best_scorers: Mapping[str, dict]) -> bool:
    """Put each kept scorer into best.pt; True when its weights changed.

    The checkpoint's metrics gain `deviation_scorer_epochs` {modality: epoch}; proposal
    settings tuned for the weights it held before are dropped, so the trainer tunes again.
    """
    if not best_scorers:
        return False
    payload = read_checkpoint_payload(best_path)
    state = payload["model_state"]
    changed = False
    for modality, kept in best_scorers.items():
        for key, value in kept["state"].items():
            if key not in state:
                raise ValueError(f"{best_path}: field 'model_state' has no {key!r}; the kept "
                                 f"{modality} scorer does not fit this checkpoint")
            if not torch.equal(state[key], value):
                state[key], changed = value.clone(), True
    epochs = {m: int(kept["epoch"]) for m, kept in best_scorers.items()}
    if payload["metrics"].get("deviation_scorer_epochs") == epochs and not changed:
        return False
    payload["metrics"]["deviation_scorer_epochs"] = epochs
    if changed:
        payload.pop("proposal_config", None)
        payload.pop("proposal_tuning", None)
    save_payload(best_path, payload)
    log.info("%s: learned deviation scorers from epochs %s (the network's: %d)", best_path,
             epochs, payload["epoch"])
    return changed


def holds_one_epoch(epoch: int, metrics: Mapping) -> bool:
    """Whether a checkpoint's weights all come from its own `epoch` (no scorer from another),
    by its `metrics`."""
    epochs = metrics.get("deviation_scorer_epochs") or {}
    return all(int(e) == int(epoch) for e in epochs.values())
