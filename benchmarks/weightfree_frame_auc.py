"""Per-frame evidence of the weight-free features, with no training: does a forged frame
stand out from its own clip?

Synthesizes `--clips` `rtdl synth` clips (or reads `--data`), extracts them with the real
entry point (`run_extraction`, `--visual-model lowlevel --audio-model logmel`) and scores
every frame with the untrained reference: standardise each feature dimension with its
mean and standard deviation over all frames of all clips, then take the L2 distance of
each frame from its clip's per-dimension median frame. For every fake clip and every
forgery type in it, the ROC AUC of that type's forged frames against the clip's authentic
frames (frames forged by another type of the same modality are left out) is one value;
the report is the mean over clips per forgery type, visual from the visual features and
audio from the audio features (0.5 = chance, below 0.5 = forged frames look *more*
typical than authentic ones).

    python benchmarks/weightfree_frame_auc.py --clips 80 --out /tmp/rtdl-auc
    python benchmarks/weightfree_frame_auc.py --data /tmp/rtdl-auc/synth   # reuse clips

A frame i (covering [i/fps, (i+1)/fps)) is forged when a labelled period covers it;
`rtdl synth` writes periods on exact frame boundaries.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from data.cache import FeatureCache  # noqa: E402
from pipeline.diagnostics import clip_median_deviation  # noqa: E402
from pipeline.metrics import rank_auc  # noqa: E402
from pipeline.extract import ExtractionOptions, run_extraction  # noqa: E402
from pipeline.synth import synth_dataset  # noqa: E402


def median_distance(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{key: [T,D]} -> {key: [T]} distance of each standardised frame from its clip's median."""
    stacked = np.concatenate(list(features.values())).astype(np.float64)  # [sum T, D]
    mean, std = stacked.mean(0), stacked.std(0)
    return {key: clip_median_deviation(x, mean, std) for key, x in features.items()}


def frame_types(n_frames: int, fps: float, periods, kinds) -> np.ndarray:
    """[T] forgery type of each frame ('' = authentic)."""
    labels = np.full(n_frames, "", dtype=object)
    for (start, end), kind in zip(periods, kinds):
        labels[int(round(start * fps)):int(round(end * fps))] = kind
    return labels


def per_type_auc(records: list[dict], scores: dict[str, np.ndarray], modality: str
                 ) -> dict[str, list[float]]:
    result: dict[str, list[float]] = defaultdict(list)
    for record in records:
        periods = record.get(f"{modality}_fake_periods") or []
        if not periods or record["file"] not in scores:
            continue
        score = scores[record["file"]]
        types = frame_types(len(score), record["fps"], periods,
                            record[f"{modality}_forgery_types"])
        authentic = types == ""
        for kind in sorted(set(types) - {""}):
            forged = types == kind
            keep = authentic | forged
            if forged.sum() and authentic.sum():
                result[kind].append(rank_auc(forged[keep], score[keep]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--duration", type=float, nargs=2, default=(4.0, 6.0))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rtdl-weightfree-auc"))
    parser.add_argument("--data", type=Path, default=None,
                        help="an existing rtdl synth folder (skips synthesis)")
    args = parser.parse_args()

    data = args.data or args.out / "synth"
    meta = data / "metadata.json"
    if args.data is None:
        start = time.process_time()
        wall = time.perf_counter()
        synth_dataset(data, args.clips, args.seed, size=args.size,
                      duration_s=tuple(args.duration), workers=args.workers, progress=False)
        print(f"synth: {args.clips} clips in {time.perf_counter() - wall:.1f} s wall "
              f"(main process CPU {time.process_time() - start:.1f} s)", flush=True)
    cache = args.out / "features.h5"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.unlink(missing_ok=True)
    options = ExtractionOptions(visual_model="lowlevel", audio_model="logmel", device="cpu")
    run_extraction(cache, metadata=meta, options=options, progress=False)

    records = json.loads(meta.read_text())
    visual, audio = {}, {}
    with FeatureCache(cache) as features:
        for record in records:
            if record["file"] in features:
                visual[record["file"]], audio[record["file"]] = features.read(record["file"])
    report = {"data": str(data), "clips": len(records),
              "rtdl_commit": os.popen(f"git -C {REPO} rev-parse --short HEAD").read().strip()}
    for modality, feats in (("visual", visual), ("audio", audio)):
        aucs = per_type_auc(records, median_distance(feats), modality)
        report[modality] = {kind: {"mean_auc": round(float(np.mean(v)), 3), "videos": len(v)}
                            for kind, v in sorted(aucs.items())}
        every = [a for v in aucs.values() for a in v]
        report[modality]["all"] = {"mean_auc": round(float(np.mean(every)), 3),
                                   "videos": len(every)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
