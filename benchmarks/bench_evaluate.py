"""Time the evaluator at dataset scale on generated data (nothing is written to disk).

    python benchmarks/bench_evaluate.py --videos 1100000 --proposals 100 --mode packed
    python benchmarks/bench_evaluate.py --videos 110000 --proposals 100 --mode dict

`packed` times the metric core (`localization_metrics`) on flat arrays, as after loading;
`dict` times the whole `evaluate_predictions` path from a {file: [[score, start, end]]}
dict (validation and packing included), which is what `rtdl evaluate` runs after json.load.
Videos: 25 fps, 4-20 s, about 63 % fake with 1-3 segments (AV-Deepfake1M's mix); half of a
fake video's proposals are jittered copies of its segments, the rest random.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from data.records import VideoRecord
from pipeline.metrics import (PROTOCOLS, PackedProposals, evaluate_predictions,
                               localization_metrics, pack_segments)
from pipeline.machine import describe_machine


def generate(n_videos: int, n_proposals: int, seed: int):
    rng = np.random.default_rng(seed)
    frames = rng.integers(100, 500, n_videos)  # 4-20 s at 25 fps
    n_segments = np.where(rng.random(n_videos) < 0.63, rng.integers(1, 4, n_videos), 0)
    records = []
    seg_start = rng.random(int(n_segments.sum()))
    k = 0
    for v in range(n_videos):
        duration = frames[v] / 25.0
        segs = []
        for _ in range(n_segments[v]):
            start = round(seg_start[k] * (duration - 1.0) * 25) / 25
            segs.append((start, start + 0.4 + 0.2 * (k % 4)))
            k += 1
        records.append(VideoRecord(file=f"test/{v:07d}.mp4", split="test", duration=duration,
                                   fps=25.0, n_frames=int(frames[v]), label=int(bool(segs)),
                                   fake_segments=tuple(segs)))
    packed_segments = pack_segments(records)
    parts = {"scores": [], "starts": [], "ends": []}
    for v0 in range(0, n_videos, 50_000):  # chunks keep float64 temporaries small
        v1 = min(v0 + 50_000, n_videos)
        total = (v1 - v0) * n_proposals
        video = np.repeat(np.arange(v0, v1), n_proposals)
        duration = (frames / 25.0)[video]
        starts = rng.random(total) * (duration - 1.0)
        ends = starts + rng.random(total) * 2.0
        # jittered copies of the first segment for half of each fake video's proposals
        first = packed_segments.offsets[:-1][video]
        copy = (n_segments[video] > 0) & (rng.random(total) < 0.5)
        starts[copy] = packed_segments.starts[first[copy]] + rng.normal(0, 0.1, copy.sum())
        ends[copy] = packed_segments.ends[first[copy]] + rng.normal(0, 0.1, copy.sum())
        ends = np.maximum(ends, starts)
        scores = -np.sort(-rng.random((v1 - v0, n_proposals)), axis=1).reshape(-1)
        for name, values in (("scores", scores), ("starts", starts), ("ends", ends)):
            parts[name].append(values.astype(np.float32))
    offsets = np.arange(n_videos + 1, dtype=np.int64) * n_proposals
    proposals = PackedProposals(offsets=offsets,
                                **{k: np.concatenate(v) for k, v in parts.items()})
    return records, proposals, packed_segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--proposals", type=int, default=100)
    parser.add_argument("--mode", choices=["packed", "dict"], default="packed")
    parser.add_argument("--protocol", default="avdeepfake1m", choices=list(PROTOCOLS))
    args = parser.parse_args()
    protocol = PROTOCOLS[args.protocol]
    print(describe_machine())

    t0 = time.perf_counter()
    records, proposals, segments = generate(args.videos, args.proposals, seed=0)
    print(f"generated {args.videos} videos x {args.proposals} proposals "
          f"({int(segments.offsets[-1])} segments) in {time.perf_counter() - t0:.1f} s")
    if args.mode == "packed":
        t0 = time.perf_counter()
        ap, ar = localization_metrics(proposals, segments, ap_iou=protocol.ap_iou,
                                      ar_n=protocol.ar_n, ar_iou=protocol.ar_iou)
        elapsed = time.perf_counter() - t0
    else:
        predictions = {}
        o = proposals.offsets
        for v, r in enumerate(records):
            sl = slice(o[v], o[v + 1])
            predictions[r.file] = np.stack([proposals.scores[sl], proposals.starts[sl],
                                            proposals.ends[sl]], 1).astype(float).tolist()
        del proposals
        t0 = time.perf_counter()
        result = evaluate_predictions(predictions, records, ap_iou=protocol.ap_iou,
                                      ar_n=protocol.ar_n, ar_iou=protocol.ar_iou)
        elapsed = time.perf_counter() - t0
        ap, ar = list(result["ap"].values()), list(result["ar"].values())
    print(f"{args.mode}: {elapsed:.1f} s; AP {np.round(ap, 4).tolist()} AR {np.round(ar, 4).tolist()}")


if __name__ == "__main__":
    main()
