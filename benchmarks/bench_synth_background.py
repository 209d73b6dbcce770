"""The synth's camera over its background photo: `render_background` against the way it read
the photo before (indexing with two broadcast index arrays), side by side in one run.

    python benchmarks/bench_synth_background.py [--size 96] [--frames 125] [--repeats 10]

Both read the same four bilinear corners per pixel; the check that they give the same
values runs first. Rounds alternate the two, so drift in the machine's speed hits both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synth.scene import _mirror, random_track, render_background  # noqa: E402
from data.synth.speaker import random_look  # noqa: E402
from pipeline.machine import describe_machine  # noqa: E402


def broadcast_index_background(look, track, size: int) -> np.ndarray:
    """The reading `render_background` replaced: bg[rows, columns] with [T, H, 1] x [T, 1, W]."""
    bg_h, bg_w = look.background.shape[:2]
    pixel = np.arange(size, dtype=np.float32) + 0.5 - size / 2
    inv = (1 / track.zoom)[:, None]
    ys = track.bg_offset[:, 1, None] + pixel[None] * inv - 0.5
    xs = track.bg_offset[:, 0, None] + pixel[None] * inv - 0.5
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    r0, r1 = _mirror(y0, bg_h)[:, :, None], _mirror(y0 + 1, bg_h)[:, :, None]
    c0, c1 = _mirror(x0, bg_w)[:, None, :], _mirror(x0 + 1, bg_w)[:, None, :]
    bg = look.background
    top = bg[r0, c0] * (1 - fx) + bg[r0, c1] * fx
    bottom = bg[r1, c0] * (1 - fx) + bg[r1, c1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--frames", type=int, default=125, help="5 s at 25 fps")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(describe_machine(), flush=True)
    rng = np.random.default_rng(0)
    look = random_look(rng, args.size)
    track = random_track(np.abs(np.sin(np.arange(args.frames) / 3)), 25.0, args.size, rng,
                         n_sprites=1)
    same = np.array_equal(render_background(look, track, args.size),
                          broadcast_index_background(look, track, args.size))
    print(f"same values: {same}")
    times = {"render_background (take)": [], "broadcast indexing (before)": []}
    for _ in range(args.repeats):
        for name, function in (("render_background (take)", render_background),
                               ("broadcast indexing (before)", broadcast_index_background)):
            started = time.perf_counter()
            function(look, track, args.size)
            times[name].append(time.perf_counter() - started)
    print(f"| reading ({args.frames} frames of {args.size}x{args.size}) | median ms per clip |\n"
          "| --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {1000 * float(np.median(values)):.1f} |")


if __name__ == "__main__":
    main()
