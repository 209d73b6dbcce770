"""Weight-free extraction (`lowlevel` + `logmel`) against decoding alone, side by side.

On the same `rtdl synth` clips, in interleaved rounds (the order alternates each round, so
a change in machine load hits both loops alike), it times:
  decode    the project's decoder only: `VideoStream` chunks + `decode_audio`, every clip,
            the frames and the wave touched and dropped (what extraction cannot avoid)
  extract   the real entry point, `pipeline.extract.run_extraction` with
            `--visual-model lowlevel --audio-model logmel` into a fresh HDF5 cache
            (decoding overlapped with the extractors, cache writing included)
  compute   the two extractors alone on frames and waves decoded beforehand (where the
            extraction's own time goes; not part of the ratio)
and prints frames/s of video for each, the extract / decode ratio per round and its
median (target >= 0.8), seconds per clip, and the machine: CPU model, its SIMD flags,
torch's thread count and the load average before and after.

    python benchmarks/bench_weightfree.py                     # 60 x 1 s, 224x224, 3 rounds
    python benchmarks/bench_weightfree.py --clips 20 --rounds 2   # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from extractors.decode import VideoStream, decode_audio  # noqa: E402
from extractors.logmel import LogMelAudioExtractor  # noqa: E402
from extractors.lowlevel_visual import LowLevelVisualExtractor  # noqa: E402
from pipeline.extract import ExtractionOptions, collect_videos, run_extraction  # noqa: E402
from pipeline.synth import synth_dataset  # noqa: E402

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def machine() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    return {"cpu": model, "cores": os.cpu_count(),
            "simd": [f for f in SIMD_FLAGS if f in flags],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def make_clips(folder: Path, n: int, seconds: float, size: int) -> Path:
    """`rtdl synth` clips (all splits) in `folder`, reused when already there."""
    meta = folder / "metadata.json"
    if not meta.exists():
        synth_dataset(folder, n, seed=0, duration_s=(seconds, seconds), size=size,
                      segment_s=(0.2, min(2.0, seconds / 3)), progress=False)
    return meta


def decode_only(items, chunk_frames: int) -> int:
    frames = 0
    for _, path in items:
        stream = VideoStream(path, chunk_frames)
        wave, _ = decode_audio(path, has_audio=stream.info.has_audio,
                               duration=stream.info.duration)
        del wave
        for chunk in stream:
            frames += len(chunk)
    return frames


def extract(meta: Path, out: Path, options: ExtractionOptions) -> int:
    out.unlink(missing_ok=True)
    summary = run_extraction(out, metadata=meta, options=options, progress=False)
    if summary.n_failed:
        raise RuntimeError(f"extraction failed: {summary.failures[:3]}")
    out.unlink(missing_ok=True)
    return summary.n_frames


def compute_only(decoded) -> int:
    visual, audio = LowLevelVisualExtractor(), LogMelAudioExtractor()
    frames = 0
    for wave, chunks in decoded:
        visual.start_video()
        audio(wave)
        for chunk in chunks:
            visual(chunk)
            frames += len(chunk)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder for the clips (default: a folder under the temp dir, "
                             "named after the settings and reused)")
    args = parser.parse_args()

    folder = args.data or Path(tempfile.gettempdir()) / (
        f"rtdl-bench-weightfree-{args.clips}x{args.seconds:g}s-{args.size}px")
    meta = make_clips(folder, args.clips, args.seconds, args.size)
    options = ExtractionOptions(visual_model="lowlevel", audio_model="logmel", device="cpu")
    items = collect_videos(metadata=meta)
    work = Path(tempfile.mkdtemp(prefix="rtdl-bench-weightfree-"))
    info = {**machine(), "clips": f"{len(items)} x {args.seconds:g} s, {args.size}x{args.size}",
            "chunk_frames": options.chunk_frames,
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(info), flush=True)

    decoded = []  # one copy in memory for the compute-only stage
    for _, path in items:
        stream = VideoStream(path, options.chunk_frames)
        wave, _ = decode_audio(path, has_audio=stream.info.has_audio, duration=stream.info.duration)
        decoded.append((wave, list(stream)))

    stages = {"decode": lambda: decode_only(items, options.chunk_frames),
              "extract": lambda: extract(meta, work / "cache.h5", options),
              "compute": lambda: compute_only(decoded)}
    rates: dict[str, list[float]] = {name: [] for name in stages}
    try:
        extract(meta, work / "cache.h5", options)  # warm-up: imports, first allocations
        for round_index in range(args.rounds):
            order = list(stages) if round_index % 2 == 0 else ["extract", "decode", "compute"]
            for name in order:
                start = time.perf_counter()
                frames = stages[name]()
                seconds = time.perf_counter() - start
                rates[name].append(frames / seconds)
                print(f"round {round_index}: {name:8s} {frames / seconds:7.1f} frames/s "
                      f"({seconds:.2f} s, {seconds / len(items) * 1000:.0f} ms per clip)",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [e / d for e, d in zip(rates["extract"], rates["decode"])]
    result = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    result.update({"ratio_per_round": [round(r, 3) for r in ratios],
                   "ratio_median": round(statistics.median(ratios), 3),
                   "load_average_after": [round(x, 2) for x in os.getloadavg()]})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
