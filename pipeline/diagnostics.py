"""Frame-level diagnostics: how well each per-frame signal marks the forged frames.

The paper's Figure 4 shows reconstruction-error curves rising over forged spans; this module
turns that picture into numbers, so every change to the model or the localizer can be judged
frame by frame before proposals and AP/AR hide what happened.

For each fake video, each modality that was modified in it, and each per-frame signal
(the model's head scores, its reconstruction errors, the curve the localizer actually used,
untrained references), the ROC AUC of forged against authentic frames *of that modality*
is computed within the video (0.5 = chance, below 0.5 = the signal ranks authentic frames
above forged ones). The reported number is the mean of these per-video AUCs, per modality
and per forgery type (a video with several types in one modality counts once for each type,
with the frames of that type as positives and the authentic frames as negatives).

Choices:
- Frame i covers [i / fps, (i + 1) / fps) and is forged when its centre lies inside a forged
  segment of the modality, the convention of the feature timeline (`extractors/align.py`).
- Per-modality ground truth: the metadata's per-modality periods where the dataset gives
  them (rtdl synth, AV-Deepfake1M); otherwise (LAV-DF) the video's `fake_periods` for every
  modality its label says was modified.
- Forgery types come from rtdl synth's `visual_forgery_types` / `audio_forgery_types`;
  other datasets have none and report every video under "all".
- Per-video AUCs, not one pooled AUC: the localizer ranks frames within a video, so a signal
  whose level differs between videos but ranks well inside each is what it needs.
- Routing accuracy: the share of videos whose predicted class (argmax of the 4 class
  probabilities) is the true one, with the 4x4 confusion matrix (rows true, columns predicted).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from data.labels import LABELS
from data.records import VideoRecord
from pipeline.metrics import rank_auc

MODALITIES = ("visual", "audio")


def frame_mask(segments: Sequence[Sequence[float]], n_frames: int, fps: float) -> np.ndarray:
    """bool [n_frames]: True where the frame centre (i + 0.5) / fps lies in a segment [start, end)."""
    centres = (np.arange(n_frames) + 0.5) / fps  # [T] seconds
    forged = np.zeros(n_frames, dtype=bool)
    for start, end in segments:
        forged |= (centres >= start) & (centres < end)
    return forged


def load_forgery_types(metadata_path: str | Path) -> dict[str, dict[str, list[str]]]:
    """{file: {"visual": [type per visual period], "audio": [...]}} from rtdl synth metadata.

    Datasets without per-period type names give an empty dict (every video then counts
    under "all").
    """
    path = Path(metadata_path)
    if path.is_dir():
        path = path / "metadata.json"
    entries = json.loads(path.read_text())
    types: dict[str, dict[str, list[str]]] = {}
    if not isinstance(entries, list):
        return types
    for entry in entries:
        if isinstance(entry, dict) and "visual_forgery_types" in entry:
            types[entry["file"]] = {"visual": list(entry.get("visual_forgery_types", [])),
                                    "audio": list(entry.get("audio_forgery_types", []))}
    return types


def modality_segments(record: VideoRecord, modality: str) -> tuple[tuple[float, float], ...]:
    """Forged segments of one modality (see the module docstring for LAV-DF)."""
    own = record.visual_fake_segments if modality == "visual" else record.audio_fake_segments
    if own is not None:
        return tuple(own)
    modified = bool(record.label & (1 if modality == "visual" else 2))
    return tuple(record.fake_segments) if modified else ()


def clip_median_deviation(features: np.ndarray, mean: np.ndarray | None = None,
                          std: np.ndarray | None = None) -> np.ndarray:
    """Untrained reference: L2 distance of each standardised frame from the clip's median frame.

    features [T, D]; mean, std [D] (training-split statistics; None: the clip's own) -> [T].
    """
    x = np.asarray(features, dtype=np.float64)
    if mean is None:
        mean, std = x.mean(axis=0), x.std(axis=0)
    x = (x - mean) / np.where(np.asarray(std) > 1e-6, std, 1.0)
    return np.linalg.norm(x - np.median(x, axis=0, keepdims=True), axis=1)


def frame_auc_table(signals: Mapping[str, Mapping[str, np.ndarray]], records: Sequence[VideoRecord],
                    forgery_types: Mapping[str, Mapping[str, list[str]]] | None = None,
                    ) -> dict[str, dict[str, dict[str, dict]]]:
    """Mean per-video frame AUC of every signal, per modality and forgery type.

    signals: {file: {signal name: [T] curve}}; records: the videos (real ones are skipped).
    Returns {signal: {modality: {type or "all": {"auc": mean, "n": videos}}}}.
    """
    forgery_types = forgery_types or {}
    collected: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for record in records:
        if not record.is_fake or record.file not in signals:
            continue
        curves = signals[record.file]
        n_frames = min(len(c) for c in curves.values())
        for modality in MODALITIES:
            segments = modality_segments(record, modality)
            if not segments:
                continue
            forged = frame_mask(segments, n_frames, record.fps)
            names = forgery_types.get(record.file, {}).get(modality) or []
            by_type: dict[str, list] = defaultdict(list)
            if len(names) == len(segments):
                for name, segment in zip(names, segments):
                    by_type[name].append(segment)
            # per type: its frames (positive) against authentic ones (positive | ~forged kept)
            type_masks = {kind: frame_mask(kind_segments, n_frames, record.fps)
                          for kind, kind_segments in by_type.items()}
            for name, curve in curves.items():
                curve = np.asarray(curve[:n_frames], dtype=np.float64)
                auc = rank_auc(forged, curve)
                if auc is not None:
                    collected[name][modality]["all"].append(auc)
                for kind, positive in type_masks.items():
                    keep = positive | ~forged
                    auc = rank_auc(positive[keep], curve[keep])
                    if auc is not None:
                        collected[name][modality][kind].append(auc)
    return {name: {modality: {kind: {"auc": float(np.mean(v)), "n": len(v)} for kind, v in kinds.items()}
                   for modality, kinds in by_modality.items()}
            for name, by_modality in collected.items()}


def routing_report(class_probs: Mapping[str, Sequence[float]], records: Sequence[VideoRecord]) -> dict:
    """Share of videos whose argmax class is the true one, and the confusion matrix (true x predicted)."""
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    for record in records:
        if record.file in class_probs:
            confusion[record.label, int(np.argmax(class_probs[record.file]))] += 1
    total = int(confusion.sum())
    return {"accuracy": float(np.trace(confusion) / total) if total else None,
            "confusion": confusion.tolist(), "labels": list(LABELS), "videos": total}


def format_auc_table(table: Mapping[str, Mapping[str, Mapping[str, dict]]], title: str = "") -> str:
    """Markdown table: one row per signal, one column per modality/type, mean AUC (videos)."""
    columns: list[tuple[str, str]] = []
    for by_modality in table.values():
        for modality in MODALITIES:
            for kind in by_modality.get(modality, {}):
                if (modality, kind) not in columns:
                    columns.append((modality, kind))
    columns.sort(key=lambda c: (MODALITIES.index(c[0]), c[1] != "all", c[1]))
    header = "| signal | " + " | ".join(f"{m} {k}" for m, k in columns) + " |"
    lines = ([title] if title else []) + [header, "|" + " --- |" * (len(columns) + 1)]
    for name, by_modality in table.items():
        cells = []
        for modality, kind in columns:
            cell = by_modality.get(modality, {}).get(kind)
            cells.append(f"{cell['auc']:.3f} ({cell['n']})" if cell else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- signals of a model run


def model_signals(outputs: Mapping[str, dict], routed: Mapping[str, np.ndarray] | None = None,
                  ) -> dict[str, dict[str, np.ndarray]]:
    """{file: {signal: [T]}} from `pipeline.inference.predict_arrays` outputs.

    routed: optional {file: the curve the localizer used}, added as the "routed" signal.
    """
    names = {"visual head": "visual_scores", "audio head": "audio_scores", "joint head": "joint_scores",
             "visual recon error": "visual_recon_error", "audio recon error": "audio_recon_error"}
    learned = {"visual learned deviation": "visual_learned_deviation",
               "audio learned deviation": "audio_learned_deviation",
               "av desynchrony": "av_desync", "spectral detail": "spectral_detail"}
    signals = {}
    for file, out in outputs.items():
        signals[file] = {name: np.asarray(out[key]) for name, key in names.items()}
        # the learned deviation scorers, the fitted desynchrony and spectral detail, where
        # the model has them
        signals[file].update({name: np.asarray(out[key]) for name, key in learned.items()
                              if key in out and np.any(out[key])})
        if routed is not None and file in routed:
            signals[file]["routed"] = np.asarray(routed[file])
    return signals


def median_deviation_signals(cache, records: Sequence[VideoRecord], visual_stats=None,
                             audio_stats=None) -> dict[str, dict[str, np.ndarray]]:
    """Untrained references per video: clip-median deviation of each modality and their max.

    visual_stats / audio_stats: (mean, std) of the training split (None: each clip's own).
    Each modality's distance is divided by sqrt(its width) so the two are comparable.
    """
    signals = {}
    for record in records:
        if record.file not in cache:
            continue
        visual, audio = cache.read(record.file)
        n = min(len(visual), len(audio))
        v = clip_median_deviation(visual[:n], *(visual_stats or (None, None))) / np.sqrt(visual.shape[1])
        a = clip_median_deviation(audio[:n], *(audio_stats or (None, None))) / np.sqrt(audio.shape[1])
        signals[record.file] = {"median deviation visual": v, "median deviation audio": a,
                                "median deviation max": np.maximum(v, a)}
    return signals
