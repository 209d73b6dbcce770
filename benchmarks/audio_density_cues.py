"""Do untrained audio cues mark forged audio, per frame? Density and long-window cues.

The localizer's audio evidence is the desynchrony and the learned deviation (about 0.76
frame AUC on seen audio forgeries on the 2,100-clip benchmark); this asks whether a cue
fitted on authentic clips alone, with no label, does better. On the audio features of a
cache (standardised with authentic training clips' mean and std), per frame:
- "clip deviation": the mean absolute distance of the frame from its clip's median frame;
- "window mean - clip median, K": the same for the mean of the K frames around it (a
  long-term average spectrum: content averages out, the voice and the channel stay);
- "log Mahalanobis, lags": a Gaussian fitted on authentic training frames (the frame minus
  its clip median, and its frame-to-frame difference, stacked at `--lags`), each frame's
  log Mahalanobis distance averaged over 9 frames; "negated" ranks the most typical frames
  first; "two-sided" is |2 F - 1| with F its percentile among authentic training frames
  (a typicality test: too typical or too atypical).
Mean per-video frame AUC of the forged modality per forgery type (`pipeline/diagnostics.py`).

    python benchmarks/audio_density_cues.py --metadata W/media/metadata.json --cache W/features.h5 \
        [--splits dev,test_unseen] [--fit-videos 200]
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)


def main() -> None:
    parser = set_parser(__doc__, splits="dev,test_unseen")
    parser.add_argument("--fit-videos", type=int, default=200,
                        help="authentic training videos the Gaussian is fitted on")
    parser.add_argument("--lags", default="-2,0,2", help="audio frames stacked around each frame")
    args = parser.parse_args()

    import numpy as np

    from localization_bench import open_set
    from pipeline.diagnostics import format_auc_table, frame_auc_table
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    bench = open_set(args.metadata, args.cache)
    lags = tuple(int(v) for v in args.lags.split(","))
    authentic = [r for r in bench.records if r.split == "train" and not r.is_fake][:args.fit_videos]
    raw = [bench.cache.read(r.file)[1].astype(np.float64) for r in authentic]
    stacked = np.concatenate(raw)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6

    def moving_mean(values, frames):
        """Centred mean over `frames` (odd) along the first axis, edges repeated."""
        pad = [(frames // 2 + 1, frames // 2)] + [(0, 0)] * (values.ndim - 1)
        running = np.cumsum(np.pad(values, pad, mode="edge"), axis=0)
        return (running[frames:] - running[:-frames]) / frames

    def view(audio):
        z = (audio - mean) / std
        contrast = z - np.median(z, axis=0)
        both = np.concatenate([contrast, np.diff(contrast, axis=0, prepend=contrast[:1])], axis=1)
        index = np.arange(len(both))
        return np.concatenate([both[np.clip(index + lag, 0, len(both) - 1)] for lag in lags], axis=1)

    views = [view(a) for a in raw]
    every = np.concatenate(views)
    centre = every.mean(axis=0)
    covariance = np.cov(every.T)
    covariance += 0.1 * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)

    def log_mahalanobis(v):
        d = v - centre
        return moving_mean(np.log(np.einsum("ti,ij,tj->t", d, precision, d)), 9)

    reference = np.sort(np.concatenate([log_mahalanobis(v) for v in views]))
    name = f"log Mahalanobis, lags {args.lags}"
    for split in args.splits.split(","):
        signals = {}
        for record in bench.by_split[split]:
            audio = bench.cache.read(record.file)[1].astype(np.float64)
            z = (audio - mean) / std
            median = np.median(z, axis=0)
            distance = log_mahalanobis(view(audio))
            percentile = np.searchsorted(reference, distance) / len(reference)
            signals[record.file] = {
                "clip deviation": np.abs(z - median).mean(axis=1),
                "window mean - clip median, 9": np.abs(moving_mean(z, 9) - median).mean(axis=1),
                "window mean - clip median, 15": np.abs(moving_mean(z, 15) - median).mean(axis=1),
                name: distance,
                f"{name}, negated": -distance,
                f"{name}, two-sided": np.abs(2 * percentile - 1),
            }
        table = frame_auc_table(signals, bench.by_split[split], bench.types)
        print(format_auc_table({k: {"audio": v["audio"]} for k, v in table.items() if "audio" in v},
                               f"\n{split}, audio frames"), flush=True)


if __name__ == "__main__":
    main()
