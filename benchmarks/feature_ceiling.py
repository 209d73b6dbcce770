"""How much per-frame evidence do cached features hold? A frame-supervised probe as ceiling.

RT-DeepLoc learns from video labels only. Before blaming the model for a frame AUC, this
asks what a learner that *does* see frame labels gets from the same features: a small MLP
per modality, trained on the train split's frames with their forged / authentic labels,
scored on test and test_unseen with the same per-video frame AUC as
`pipeline/diagnostics.py`. It is a diagnostic reference, never part of rtdl's model: a
weakly-supervised model is not expected to reach it, and a target above it cannot be met
with these features on this data.

Each frame's probe input is its clip-context view: the standardised frame minus the clip's
median frame, and 5- and 15-frame centred moving averages of that difference (so a span
that stands out over several frames is visible even when single frames are noisy).

Also printed, next to the probe: the untrained clip-median deviation (no labels at all),
and both split by the share of the modality's frames that are forged. A clip whose
forgery covers most of it has its median inside the forgery, so "distance from the clip's
median" then points at the authentic frames.

    python benchmarks/feature_ceiling.py --metadata W/media/metadata.json --cache W/features.h5
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARE_BUCKETS = ((0.0, 0.25), (0.25, 0.5), (0.5, 1.0))


def moving_average(x: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average along time of x [T, D]: the localizer's smoothing per column."""
    from pipeline.proposals import smooth

    return np.apply_along_axis(smooth, 0, x, frames)


def clip_context(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """[T, D] -> [T, 3D]: standardised frame minus clip median, and its 5- and 15-frame averages."""
    z = (np.asarray(features, np.float64) - mean) / std
    contrast = z - np.median(z, axis=0, keepdims=True)
    return np.concatenate([contrast, moving_average(contrast, 5), moving_average(contrast, 15)], 1)


def training_statistics(arrays: dict, train, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (mean, std) of modality `index` over every frame of the `train` records
    in `arrays` ({file: (visual, audio)}); a constant dimension gets std 1."""
    stack = np.concatenate([arrays[r.file][index] for r in train if r.file in arrays])
    std = stack.std(0)
    return stack.mean(0), np.where(std > 1e-6, std, 1.0)


def train_probe(inputs: list[np.ndarray], labels: list[np.ndarray], epochs: int, seed: int):
    """A 1-hidden-layer MLP on all training frames; returns frames [T, F] -> logits [T]."""
    import torch

    torch.manual_seed(seed)
    x = np.concatenate(inputs)
    centre, scale = x.mean(0), x.std(0) + 1e-6
    x = torch.tensor((x - centre) / scale, dtype=torch.float32)
    y = torch.tensor(np.concatenate(labels), dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(512):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch]).squeeze(1), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def score(frames: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.tensor((frames - centre) / scale, dtype=torch.float32)).squeeze(1).numpy()
    return score


def share_bucket(share: float) -> str:
    for low, high in SHARE_BUCKETS:
        if low <= share < high or (high == 1.0 and share == 1.0):
            return f"forged share {low:.2f}-{high:.2f}"
    raise ValueError(share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the tables as JSON here")
    args = parser.parse_args()

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.diagnostics import (clip_median_deviation, format_auc_table, frame_auc_table,
                                      frame_mask, load_forgery_types, modality_segments)
    from pipeline.metrics import rank_auc
    from pipeline.machine import describe_machine

    torch.set_num_threads(1)
    print(describe_machine())
    cache = FeatureCache(args.cache)
    records = load_metadata(args.metadata)
    types = load_forgery_types(args.metadata)
    train = records_for_split(records, "train")
    arrays = {r.file: cache.read(r.file) for r in records if r.file in cache}
    report = {}
    for index, modality in enumerate(("visual", "audio")):
        mean, std = training_statistics(arrays, train, index)
        inputs, labels = [], []
        for r in train:
            if r.file in arrays:
                features = arrays[r.file][index]
                inputs.append(clip_context(features, mean, std))
                labels.append(frame_mask(modality_segments(r, modality), len(features), r.fps))
        probe = train_probe(inputs, labels, args.epochs, args.seed)
        for split in ("test", "test_unseen"):
            fakes = [r for r in records_for_split(records, split)
                     if r.file in arrays and modality_segments(r, modality)]
            signals, by_share = {}, {}
            for r in fakes:
                features = arrays[r.file][index]
                curves = {"frame-supervised probe (ceiling)": probe(clip_context(features, mean, std)),
                          "clip-median deviation (untrained)": clip_median_deviation(features, mean, std)}
                signals[r.file] = curves
                forged = frame_mask(modality_segments(r, modality), len(features), r.fps)
                bucket = share_bucket(float(forged.mean()))
                for name, curve in curves.items():
                    auc = rank_auc(forged, curve)
                    if auc is not None:
                        by_share.setdefault(name, {}).setdefault(bucket, []).append(auc)
            table = frame_auc_table(signals, fakes, types)
            only = {name: {modality: t[modality]} for name, t in table.items() if modality in t}
            print()
            print(format_auc_table(only, f"{split}, {modality} (mean per-video frame AUC, videos):"))
            for name, buckets in by_share.items():
                cells = ", ".join(f"{b}: {np.mean(v):.3f} ({len(v)})" for b, v in sorted(buckets.items()))
                print(f"  {name} by {cells}")
            report[f"{split}/{modality}"] = {"table": only, "by_share": {
                name: {b: float(np.mean(v)) for b, v in buckets.items()} for name, buckets in by_share.items()}}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
