"""Training throughput: samples/s and the share of step time spent waiting for data, with the
feature cache read lazily from disk and held in memory, side by side in one run.

It writes a generated cache (random features, float16 like `rtdl extract`, in a temporary
folder under /tmp unless --workdir is given) and LAV-DF-style metadata, then runs the real
trainer (`pipeline.train.train_run`, i.e. exactly what `rtdl train` does) once per mode and
reads the per-epoch numbers the trainer logs in metrics.jsonl. The first epoch warms up
(allocator, kernels, page cache); the table reports the last epoch. Features are random:
the numbers measure speed only.

    python benchmarks/bench_train.py --videos 64 --frames 200 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.cache import CacheWriter  # noqa: E402
from pipeline.train import train_run  # noqa: E402
from pipeline.train_config import load_run_config  # noqa: E402


def write_data(folder: Path, *, videos: int, frames: int, visual_dim: int, audio_dim: int,
               seed: int) -> tuple[Path, Path]:
    """A cache of `videos` training videos (+ 2 dev videos) of ~`frames` frames each."""
    rng = np.random.default_rng(seed)
    cache, meta = folder / "bench_features.h5", folder / "metadata.json"
    entries = []
    settings = {"benchmark": "random features", "visual_dim": visual_dim, "audio_dim": audio_dim}
    with CacheWriter(cache, settings) as writer:
        for i in range(videos + 2):
            split = "train" if i < videos else "dev"
            n = int(frames * rng.uniform(0.75, 1.25))
            fake = i % 2 == 1
            writer.write(f"{split}/{i:05d}.mp4",
                         rng.standard_normal((n, visual_dim), dtype=np.float32),
                         rng.standard_normal((n, audio_dim), dtype=np.float32),
                         fps=25.0, duration=n / 25.0, has_audio=True)
            entries.append({"file": f"{split}/{i:05d}.mp4", "split": split,
                            "n_fakes": int(fake), "fake_periods": [[1.0, 2.0]] if fake else [],
                            "duration": n / 25.0, "original": None, "modify_video": fake,
                            "modify_audio": False, "video_frames": n})
    meta.write_text(json.dumps(entries))
    return cache, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64, help="training videos")
    parser.add_argument("--frames", type=int, default=200, help="mean frames per video")
    parser.add_argument("--visual-dim", type=int, default=2048)
    parser.add_argument("--audio-dim", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra config override, e.g. model.d_model=64")
    parser.add_argument("--workdir", type=Path, help="where to write the cache (default: a /tmp folder)")
    args = parser.parse_args()

    folder = args.workdir or Path(tempfile.mkdtemp(prefix="rtdl-bench-train-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cache, meta = write_data(folder, videos=args.videos, frames=args.frames,
                             visual_dim=args.visual_dim, audio_dim=args.audio_dim, seed=0)
    print(f"cache: {cache} ({os.path.getsize(cache) / 2**20:.1f} MiB, {args.videos} train videos, "
          f"written in {time.perf_counter() - t0:.1f} s)")

    results = []
    for mode, in_memory in (("disk", False), ("memory", True)):
        cfg = load_run_config(None, args.overrides, epochs=args.epochs, batch_size=args.batch_size,
                              num_workers=args.num_workers, device=args.device, in_memory=in_memory)
        out = folder / f"run-{mode}"
        start = time.perf_counter()
        train_run(cfg, cache, meta, out)
        wall = time.perf_counter() - start
        last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        results.append((mode, last["train_samples_per_s"], last["data_wait_share"], wall))

    import torch
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    from pipeline.machine import describe_machine

    print(f"\n{describe_machine()}")
    print(f"device: {device}; batch {args.batch_size}; ~{args.frames} frames/video; "
          f"dims {args.visual_dim}+{args.audio_dim}; num_workers {args.num_workers}; "
          f"last of {args.epochs} epochs")
    print(f"{'cache':8} {'samples/s':>10} {'data wait':>10} {'run wall s':>11}")
    for mode, rate, wait, wall in results:
        print(f"{mode:8} {rate:10.1f} {wait:10.1%} {wall:11.1f}")


if __name__ == "__main__":
    main()
