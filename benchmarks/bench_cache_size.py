"""Disk a feature cache needs per hour of video, measured by writing one.

Writes ten one-minute videos (25 fps) of TSN-sized (2048-d) visual and wav2vec-base-sized
(768-d) audio features with `CacheWriter`, in the default float16, and reports the file
size scaled to one hour. Feature values only matter if the cache compressed them; it does
not (chunked, uncompressed), so random values give the same size as real ones.

    python benchmarks/bench_cache_size.py [--dtype float16|float32] [--audio-dim 1024]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.cache import CacheWriter  # noqa: E402
from pipeline.machine import describe_machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--visual-dim", type=int, default=2048)
    parser.add_argument("--audio-dim", type=int, default=768)
    parser.add_argument("--fps", type=float, default=25.0)
    args = parser.parse_args()
    print(describe_machine())
    rng = np.random.default_rng(0)
    frames = int(args.fps * 60)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "size.h5"
        settings = {"visual": {"kind": "size-test", "dim": args.visual_dim},
                    "audio": {"kind": "size-test", "dim": args.audio_dim}}
        with CacheWriter(path, settings, dtype=args.dtype) as writer:
            for i in range(10):
                writer.write(f"video{i}.mp4", rng.random((frames, args.visual_dim), dtype=np.float32),
                             rng.random((frames, args.audio_dim), dtype=np.float32),
                             fps=args.fps, duration=60.0, has_audio=True)
        size = path.stat().st_size
    print(f"{args.visual_dim}+{args.audio_dim}-d {args.dtype} at {args.fps:g} fps: "
          f"{size / 1e6:.1f} MB for 10 minutes -> {size * 6 / 1e9:.3f} GB per hour of video")


if __name__ == "__main__":
    main()
