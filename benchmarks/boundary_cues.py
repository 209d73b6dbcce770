"""Which per-frame cue marks where a forgery starts and ends?

For every true boundary (start and end of each forged period of the forged modality, at
least `--radius` + the cue's half window frames from the clip's edges) of a split with
frame-level ground truth, this finds the frame within `--radius` frames of it where a cue
is largest, and reports how often that frame is within 1 and 2 frames of the boundary,
per forged modality and forgery type, against chance (3 and 5 of the 2 R + 1 frames).
The cues, all untrained:
- visual change / audio change: `model.boundaries.feature_change` of the raw features;
- audio cepstral change (log-mel caches): the same change over 8-frame windows of the
  cepstrum of each frame's mel bands (`cepstral_change`): the envelope of the spectrum,
  where a change of voice or room shows, without the loudness (c0) that speech moves
  every syllable;
- desynchrony step (with `--checkpoint`): the rise of the per-frame audio-visual agreement's
  negative over the next `HALF_WINDOW` frames against the previous ones at a start, its fall
  at an end (`model/av_sync.py` with no moving average; the directions are fitted on the
  split's authentic training clips when the checkpoint has none).

    python benchmarks/boundary_cues.py --metadata W/media/metadata.json --cache W/features.h5 \
        --split dev [--checkpoint W/runs/full-s0/best.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def boundaries(record, modality: str, types: dict, fps: float) -> list[tuple[int, int, str]]:
    """[(frame, +1 start / -1 end, forgery type)] of one modality's forged periods."""
    from pipeline.diagnostics import modality_segments

    names = types.get(record.file, {}).get(modality, [])
    found = []
    for i, (start, end) in enumerate(modality_segments(record, modality)):
        kind = names[i] if i < len(names) else "all"
        found += [(round(start * fps), 1, kind), (round(end * fps), -1, kind)]
    return found


CEPSTRAL_HALF_WINDOW = 8  # frames; 4 marked fewer audio boundaries on dev (BENCHMARKS.md)
CEPSTRAL_COEFFICIENTS = 40  # c1..c40 of the 64 bands; c1-c12 marked fewer


def cepstral_change(audio: np.ndarray, n_mels: int, half_window: int = CEPSTRAL_HALF_WINDOW,
                    coefficients: int = CEPSTRAL_COEFFICIENTS) -> np.ndarray:
    """Raw log-mel audio [T, >= n_mels] -> [T]: `feature_change` of the cepstral
    coefficients c1..c`coefficients` (an orthonormal DCT-II over the mel bands) of each frame."""
    import torch
    from scipy.fft import dct

    from model.boundaries import feature_change

    cepstra = dct(np.asarray(audio, np.float64)[:, :n_mels], type=2, norm="ortho", axis=1)
    cepstra = np.ascontiguousarray(cepstra[:, 1:coefficients + 1], dtype=np.float32)
    mask = torch.ones(1, len(cepstra), dtype=torch.bool)
    return feature_change(torch.from_numpy(cepstra[None]), mask, half_window)[0].numpy()


def step(values: np.ndarray, half_window: int) -> np.ndarray:
    """[T] -> [T]: mean of the next `half_window` values minus the previous ones (0 near edges)."""
    running = np.concatenate([[0.0], np.cumsum(values)])
    out = np.zeros(len(values))
    t = np.arange(half_window, len(values) - half_window + 1)
    t = t[t < len(values)]
    out[t] = ((running[t + half_window] - running[t]) - (running[t] - running[t - half_window])) / half_window
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--radius", type=int, default=6)
    parser.add_argument("--checkpoint", help="a run's best.pt: also the desynchrony step")
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args()

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from model.boundaries import HALF_WINDOW, feature_change
    from pipeline.diagnostics import load_forgery_types
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    records = load_metadata(args.metadata)
    types = load_forgery_types(args.metadata)
    cache = FeatureCache(args.cache)
    model = None
    if args.checkpoint:
        from pipeline.checkpoint import load_checkpoint

        model = load_checkpoint(args.checkpoint).model
        if not bool(model.av_sync.is_set):
            reals = [r.file for r in records_for_split(records, "train") if not r.is_fake]
            model.fit_av_sync(lambda: (cache.read(key) for key in reals))
        model.av_sync.window = 1  # the per-frame agreement, not its 9-frame average

    n_mels = int(cache.settings.get("audio", {}).get("n_mels", 0))  # 0: not log-mel
    radius = args.radius
    # a boundary counts for a cue when the cue's windows around it fit in the clip
    half_windows = {"audio cepstral change": CEPSTRAL_HALF_WINDOW}
    offsets: dict[tuple[str, str, str], list[int]] = {}
    for record in records_for_split(records, args.split):
        if not record.is_fake:
            continue
        visual, audio = (np.asarray(a, np.float32) for a in cache.read(record.file))
        n = min(len(visual), len(audio))
        mask = torch.ones(1, n, dtype=torch.bool)
        cues = {"visual change": feature_change(torch.from_numpy(visual[None, :n]), mask)[0].numpy(),
                "audio change": feature_change(torch.from_numpy(audio[None, :n]), mask)[0].numpy()}
        if n_mels:
            cues["audio cepstral change"] = cepstral_change(audio[:n], n_mels)
        desync = None
        if model is not None:
            with torch.no_grad():
                v = model.visual_input_norm(torch.from_numpy(visual[None, :n]), mask)
                a = model.audio_input_norm(torch.from_numpy(audio[None, :n]), mask)
                desync = step(model.av_sync(v, a, mask)[0].double().numpy(), HALF_WINDOW)
        for modality in ("visual", "audio"):
            for frame, direction, kind in boundaries(record, modality, types, record.fps):
                signals = dict(cues)
                if desync is not None:
                    signals["desynchrony step"] = direction * desync
                for name, cue in signals.items():
                    margin = radius + half_windows.get(name, HALF_WINDOW)
                    if frame < margin or frame > n - margin:
                        continue
                    window = cue[frame - radius:frame + radius + 1]
                    offsets.setdefault((modality, kind, name), []).append(int(np.argmax(window)) - radius)

    width = 2 * radius + 1
    print(f"split {args.split}: the cue's largest value within {radius} frames of a true "
          f"boundary, how often within 1 / 2 frames of it (chance {3 / width:.2f} / {5 / width:.2f})")
    print("| forged modality | type | cue | boundaries | within 1 frame | within 2 frames | median distance |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    table = []
    for (modality, kind, name), found in sorted(offsets.items()):
        distance = np.abs(np.asarray(found))
        row = {"modality": modality, "type": kind, "cue": name, "boundaries": len(found),
               "within_1": float((distance <= 1).mean()), "within_2": float((distance <= 2).mean()),
               "median_distance": float(np.median(distance))}
        table.append(row)
        print(f"| {modality} | {kind} | {name} | {len(found)} | {row['within_1']:.2f} | "
              f"{row['within_2']:.2f} | {row['median_distance']:g} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"split": args.split, "radius": radius,
                                              "rows": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
