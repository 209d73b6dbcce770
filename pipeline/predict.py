"""`rtdl predict`: run a checkpoint over cached features, write proposals the official
LAV-DF / AV-Deepfake1M evaluators read, plus video-level class probabilities.

Outputs
- `preds.json`: `{file: [[score, start, end], ...]}`, every requested video present (an
  empty list where it has no proposal), each list sorted by score, highest first. Scores
  are rounded to 6 decimals and times to 4 (0.1 ms) to keep files of 100 k videos small;
  list order is decided before rounding.
- `<out stem>_probs.json`: `{file: [p_real, p_visual_only, p_audio_only, p_both]}`, the
  order of `data.labels.LABELS`, for video-level AUC.
- `<out stem>_proposals.yaml`: the proposal settings used, with a comment saying where they
  came from (a `--proposals` file, the checkpoint's tuned settings, or the defaults; see
  pipeline/proposal_settings.py); `--proposals` reads it back.

Choices (batching, windows of long videos: pipeline/inference.py)
- Both JSON files are serialised before either is written, and each is written atomically,
  so a failure leaves neither half-written; NaN / Inf are refused (not JSON).
- A requested video that is not in the cache is an error by default (an incomplete
  extraction should not silently lower recall); `allow_missing=True` writes an empty list
  for it instead (the evaluator then counts its segments as missed) and leaves it out of
  the probabilities file.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from data.atomic import write_atomic
from data.feature_settings import FeatureSettings
from data.labels import LABELS
from pipeline.dataset import cache_name
from pipeline.devices import resolve_device
from pipeline.inference import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAMES, run_predictions
from pipeline.proposal_settings import resolve_proposal_config, write_proposals_yaml
from pipeline.proposals import ProposalConfig

log = logging.getLogger(__name__)


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
        proposal_config, proposal_source = resolve_proposal_config(
            checkpoint, str(checkpoint_path), proposals_path, proposal_overrides)
    else:
        proposal_source = "given by the caller"
    cache = FeatureCache(cache_path)
    FeatureSettings(checkpoint.feature_settings).check_compatible(
        FeatureSettings(cache.settings), label=f"the checkpoint {checkpoint_path}", other_label=cache_name(cache))
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
        write_atomic(path, text)
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
