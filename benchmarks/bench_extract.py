"""Extraction speed and memory, side by side in one run on the same generated clips.

Stages, each in frames/s of video:
  decode        frames (chunked decord) + 16 kHz audio (ffmpeg pipe), no model
  visual        TSN ResNet-50 on pre-decoded frames as `rtdl extract` runs it: precision
                and backend auto (torch bf16 autocast, channels-last, BN folded on
                AVX512-BF16 CPUs; the BN-folded network in fp32 on ONNX Runtime elsewhere,
                or on OpenVINO where ONNX Runtime is not installed)
  audio         wav2vec 2.0 base on pre-decoded waves (precision and backend auto: torch)
  audio_openvino  (with `--compare-audio-backend`) the same on the other backend (OpenVINO
                fp32 when auto runs torch; `audio_torch` when it runs OpenVINO)
  full          `run_extraction` into an HDF5 cache: decoding overlapped with the models
  full_one_request  (with `--compare-one-request`, OpenVINO backend only) the same, with
                the TSN on OpenVINO as it ran before streams: normalised NCHW input from
                torch, one latency-hint request per 64-frame chunk using every thread
  full_openvino_audio  (with `--compare-audio-backend`) the full extraction with wav2vec
                2.0 on that other backend (`full_torch_audio` when auto runs OpenVINO)
  visual_SPEC, full_SPEC  (with `--compare-visual-backends SPEC,...`) the visual stage and
                the full extraction with the TSN on another runtime, SPEC = BACKEND or
                BACKEND:STREAMS (e.g. `onnxruntime`, `onnxruntime:1`, `openvino:1`), the same
                network, preprocessing and wav2vec 2.0; in even rounds these run before the
                default's full extraction, in odd rounds after it, so neither always runs
                first
  plain fp32    decode the whole clip into memory, then torchvision ResNet-50 in fp32 on
                contiguous NCHW tensors (what torchvision transforms hand a model; no
                channels-last, no BN folding), then wav2vec 2.0 in fp32: the
                straightforward loop the issue's 2.5x target is measured against
Plus the cosine similarity between the full run's features (auto precision, stored as
float32 for this check) and the plain fp32 ones, and peak RSS of a full extraction of one
clip per `--rss-seconds` length, each in a fresh subprocess.

Why earlier runs of the plain loop gave ~9.5-12 frames/s while bench_visual_precision.py
gave 6.5 for "plain fp32": the extractor preprocesses by permuting NHWC uint8 frames to
NCHW, which leaves channels-last *strides*, and PyTorch picks channels-last conv kernels for
such an input even when the model's weights are contiguous. The "plain" loop was therefore
secretly channels-last (10.0 frames/s in bench_visual_precision). `channels_last=False` now
makes the input truly contiguous, so this plain loop is the issue's 6.7 frames/s baseline.
Same threads (torch's default: one per core), batch (`BATCH`: the extraction's default
64-frame chunks) and 256x256 input in both loops.

Memory: what bounds it. Decoded frames wait in bounded queues (`prefetch_chunks` chunks of
64 frames), ResNet-50 runs 64 frames at a time, wav2vec 2.0 runs 20 s windows (a clip up to
one window long in one pass), and freed heap memory is handed back to the OS after each
audio window, after the audio pass and after each video (`extractors/memory.py`; without it
glibc's heap kept the holes of wav2vec windows and the peak grew with clip length). By
design, peak RSS rises with clip length only up to one 20 s audio window, plus the features
held until the video is written (~0.5 MB per second of video). The RSS sampled in the first
and second half of each run shows whether anything grows during a run.
Measured (2 busy cores, load ~4): 1891 / 1897 / 2255 MiB at 10 / 30 / 120 s, and within the
120 s run 2240 / 2251 MiB in the first / second half: flat during the run and from 10 to
30 s, but the 120 s clip still peaks ~360 MiB higher, early in its run; the cause is not
isolated yet (candidates: decord's per-video state, heap growth during the longer audio
pass that malloc_trim cannot return).

The backbones are random-initialised at real size (`--visual-weights random`, wav2vec 2.0
base config): speed does not depend on weight values, and nothing can be downloaded here.
Random-weight features are for timing only.

Many short clips (`--many-clips N`, instead of everything above): N one-second clips, as a
dataset of a million ~9 s clips multiplies every fixed cost per clip. Reports per clip:
  decode      the decoding itself, serially: decord opens the file and decodes its frames,
              one ffmpeg process decodes the audio (what any extractor has to do)
  full        `run_extraction` into a cache with instant stand-in backbones (zeros of the
              real 2048 / 768 dims), so the cache writes are real-sized
  overhead    full - decode: probing, process spawns, part files opened / sealed / merged,
              queues, model-state resets; what the issue bounds at 20 ms per clip
  main thread the consumer's own per-clip work (assembling, pooling audio onto frames,
              writing the cache, merging the parts at the end), which runs in series with
              the backbones when they, not decoding, are the bottleneck

    python benchmarks/bench_extract.py                 # a few minutes on 2 CPU cores
    python benchmarks/bench_extract.py --rss-seconds 10 --clip-seconds 2   # quicker
    python benchmarks/bench_extract.py --many-clips 300                   # ~1 min
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from extractors.decode import VideoStream, decode_audio  # noqa: E402
from pipeline.extract import ExtractionOptions  # noqa: E402

BATCH = ExtractionOptions().chunk_frames  # frames per chunk and per model call, every loop


def make_clips(folder: Path, n: int, seconds: float, size: int) -> list[Path]:
    from media import make_clip

    return [make_clip(folder / f"clip{i}.mp4", seconds, size=(size, size),
                      audio="noise" if i % 2 else "sine") for i in range(n)]


def build(precision: str, channels_last: bool, fold_bn: bool = True, device: str = "cpu",
          backend: str = "auto"):
    """Extractors as `rtdl extract --visual-weights random --audio-model random` builds them
    (`backend="torch"` for the plain loop: torch eager is what a first script runs)."""
    from extractors.build import build_visual_extractor
    from pipeline.extract import ExtractionOptions, build_extractors

    _, audio = build_extractors(ExtractionOptions(visual_model="lowlevel", audio_model="random",
                                                  precision=precision, backend=backend), device)
    visual = build_visual_extractor("tsn", weights="random", device=device, precision=precision,
                                    channels_last=channels_last, fold_bn=fold_bn, batch_size=BATCH,
                                    backend=backend)
    return visual, audio


class OneRequestTSN:
    """`visual` (a TSN extractor on OpenVINO) run the way it ran before streams: torch
    preprocessing to normalised NCHW, one latency-hint request per chunk on every thread."""

    def __init__(self, visual):
        from extractors.openvino_backend import OpenVINOModel

        self.inner = visual
        self.name, self.dim, self.settings, self.device = (visual.name, visual.dim,
                                                           visual.settings, visual.device)
        crop = visual.preprocess.crop_size
        self.model = OpenVINOModel(visual.inference_model, (3, crop, crop),
                                   precision=visual.precision, streams=1)

    def start_video(self) -> None:
        pass

    @torch.inference_mode()
    def __call__(self, frames) -> np.ndarray:
        from extractors.frame_batches import map_frame_batches
        from extractors.visual_tsn import preprocess_frames

        return map_frame_batches(frames, BATCH, self.dim, "TSN",
                                 lambda b: self.model(preprocess_frames(b, self.inner.preprocess)))


def compared_visuals(specs: str, precision: str) -> dict:
    """`--compare-visual-backends`: spec (BACKEND or BACKEND:STREAMS) -> TSN extractor."""
    from extractors.build import build_visual_extractor

    out = {}
    for spec in [x.strip() for x in specs.split(",") if x.strip()]:
        backend, _, streams = spec.partition(":")
        if backend not in ("openvino", "onnxruntime"):
            raise SystemExit(f"--compare-visual-backends {spec!r}: expected openvino or "
                             "onnxruntime, optionally :STREAMS")
        out[spec] = build_visual_extractor("tsn", weights="random", precision=precision,
                                           batch_size=BATCH, backend=backend,
                                           **({"streams": int(streams)} if streams else {}))
    return out


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0  # kB -> MiB
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def decode_all(clips):
    frames, waves = [], []
    for clip in clips:
        frames.append(np.concatenate(list(VideoStream(clip, BATCH))))
        waves.append(decode_audio(clip)[0])
    return frames, waves


def stage_decode(clips) -> int:
    n = 0
    for clip in clips:
        for chunk in VideoStream(clip, BATCH):
            n += len(chunk)
        decode_audio(clip)
    return n


def stage_visual(visual, frames) -> int:
    for video in frames:
        visual.start_video()
        for start in range(0, len(video), BATCH):
            visual(video[start:start + BATCH])
    return sum(len(v) for v in frames)


def stage_audio(audio, waves, n_frames) -> int:
    for wave in waves:
        audio.start_video()
        audio(wave)
    return n_frames


def plain_fp32_loop(clips, visual, audio):
    """Decode whole clip, then the fp32 models, one after another: what a first script does."""
    from extractors.align import pool_to_frames

    outputs = []
    with torch.inference_mode():
        for clip in clips:
            stream = VideoStream(clip, BATCH)
            frames = np.concatenate(list(stream))  # the whole clip in memory
            wave, _ = decode_audio(clip)
            feats = np.concatenate([visual(frames[s:s + BATCH])
                                    for s in range(0, len(frames), BATCH)])
            a, centres = audio(wave)
            outputs.append((feats, pool_to_frames(a, centres, len(frames), stream.info.fps)))
    return outputs


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float((num / den).min())


def centred_cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    """`cosine_min` after subtracting each array's mean over frames: random-weight features
    are nearly constant across frames, so the raw cosine hides errors in what varies."""
    return cosine_min(a - a.mean(0), b - b.mean(0))


def rss_child(clip: str, precision: str) -> None:
    """Fresh process: build extractors, extract one clip, print peak RSS as JSON."""
    from pipeline.video_features import extract_video_features

    visual, audio = build(precision, channels_last=True)
    rss_models = _status_mb("VmRSS")
    # building the models has a transient peak of its own; measure extraction's peak only
    reset = reset_peak_rss()
    # sample RSS while extracting: memory that grows with clip length shows up as a higher
    # maximum in the second half of the run than in the first
    samples: list[tuple[float, float]] = []
    running = threading.Event()
    running.set()

    def monitor() -> None:
        while running.is_set():
            samples.append((time.perf_counter(), _status_mb("VmRSS")))
            time.sleep(0.1)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    (vis, _, info), seconds = timed(lambda: extract_video_features(clip, visual, audio))
    running.clear()
    watcher.join()
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    middle = (samples[0][0] + samples[-1][0]) / 2
    first = max((rss for t, rss in samples if t <= middle), default=float("nan"))
    second = max((rss for t, rss in samples if t > middle), default=float("nan"))
    print(json.dumps({"clip": clip, "n_frames": info["n_frames"], "seconds": seconds,
                      "rss_after_build_mb": rss_models, "peak_rss_mb": peak,
                      "peak_is_extraction_only": reset, "max_rss_first_half_mb": first,
                      "max_rss_second_half_mb": second}))


class InstantVisual:
    """Stand-in TSN: zeros [N, 2048] at no cost (the many-clips mode times everything else)."""

    name, dim = "instant", 2048
    settings = {"kind": "bench_instant", "name": "instant", "dim": 2048, "pretrained": False}

    def start_video(self) -> None:
        pass

    def __call__(self, frames) -> np.ndarray:
        return np.zeros((len(frames), self.dim), np.float32)


class InstantAudio:
    """Stand-in wav2vec 2.0: zeros [M, 768] on its 50 Hz frame grid."""

    name, dim, sample_rate = "instant", 768, 16000
    settings = {"kind": "bench_instant", "name": "instant", "dim": 768, "pretrained": False}

    def start_video(self) -> None:
        pass

    def __call__(self, wave):
        from extractors.audio_wav2vec import frame_centre_times, n_frames_for

        m = n_frames_for(max(len(wave), 400))
        return np.zeros((m, self.dim), np.float32), frame_centre_times(0, m)


def decode_minimal(clip: Path) -> int:
    """The decoding any extractor must do: decord frames + one ffmpeg audio process."""
    import decord

    from data.ffmpeg_bin import ffmpeg_exe

    reader = decord.VideoReader(str(clip), ctx=decord.cpu(0), num_threads=1)
    n = len(reader)
    reader.get_batch(list(range(n))).asnumpy()
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(clip), "-map", "0:a:0",
                    "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "pipe:1"],
                   capture_output=True, check=True)
    return n


def many_clips(args) -> dict:
    """Per-clip cost of extraction beyond decoding and the backbones (module doc)."""
    import data.cache
    import pipeline.video_features
    from pipeline.extract import run_extraction
    from pipeline.machine import machine_info

    work = Path(tempfile.mkdtemp(prefix="rtdl-bench-many-"))
    clips = make_clips(work / "clips", args.many_clips, 1.0, args.size)
    results = {"machine": machine_info(), "clips": f"{len(clips)} x 1 s, {args.size}x{args.size}, 25 fps",
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "rounds": []}
    print(results, flush=True)
    # the consumer's own steps, timed where they run (wrapping, not copying, the real code)
    spent = {"assemble": 0.0, "write": 0.0, "close": 0.0}

    def timed_wrapper(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                spent[label] += time.perf_counter() - start
        setattr(owner, name, wrapper)

    timed_wrapper(pipeline.video_features, "_assemble", "assemble")
    timed_wrapper(data.cache.CacheWriter, "write", "write")
    timed_wrapper(data.cache.CacheWriter, "close", "close")
    decode_minimal(clips[0])  # warm the page cache and the ffmpeg binary
    for r in range(args.rounds):
        _, t_decode = timed(lambda: [decode_minimal(c) for c in clips])
        for key in spent:
            spent[key] = 0.0
        _, t_full = timed(lambda: run_extraction(work / f"many{r}.h5", clips,
                                                 visual_extractor=InstantVisual(),
                                                 audio_extractor=InstantAudio(), progress=False))
        n = len(clips)
        row = {"decode_ms": 1000 * t_decode / n, "full_ms": 1000 * t_full / n,
               "overhead_ms": 1000 * (t_full - t_decode) / n,
               **{f"main_{k}_ms": 1000 * v / n for k, v in spent.items()}}
        row["main_thread_ms"] = sum(row[f"main_{k}_ms"] for k in spent)
        row = {k: round(v, 2) for k, v in row.items()}
        results["rounds"].append(row)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    median = {k: float(np.median([row[k] for row in results["rounds"]])) for k in results["rounds"][0]}
    results["median"] = median
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"per clip (median of {args.rounds} rounds): decoding {median['decode_ms']:.1f} ms, "
          f"full pipeline {median['full_ms']:.1f} ms, overhead beyond decoding and backbones "
          f"{median['overhead_ms']:.1f} ms; main-thread work {median['main_thread_ms']:.1f} ms "
          f"(assemble {median['main_assemble_ms']:.1f}, cache write {median['main_write_ms']:.1f}, "
          f"seal + merge {median['main_close_ms']:.1f})")
    print(json.dumps(results))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=2, help="clips for the stage comparison")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels (LAV-DF: 224)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each stage is timed, interleaved; rates are totals over rounds")
    parser.add_argument("--precision", default="auto", help="precision of the optimised runs")
    parser.add_argument("--backend", default="auto", help="TSN runtime of the optimised runs")
    parser.add_argument("--compare-one-request", action="store_true",
                        help="also time full extraction with the TSN on one OpenVINO "
                             "latency-hint request per chunk (the previous path)")
    parser.add_argument("--compare-audio-backend", action="store_true",
                        help="also time the audio stage and full extraction with wav2vec 2.0 "
                             "on the other backend (OpenVINO when auto picks torch)")
    parser.add_argument("--compare-visual-backends", default="",
                        help="also time the visual stage and full extraction with the TSN on "
                             "these runtimes: comma-separated BACKEND or BACKEND:STREAMS")
    parser.add_argument("--rss-seconds", default="10,30,120", help="clip lengths for peak RSS ('' to skip)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--many-clips", type=int, default=0,
                        help="only the many-short-clips mode, on this many 1 s clips")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.many_clips:
        results = many_clips(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    if args.rss_child:
        rss_child(args.rss_child, args.precision)
        return

    from extractors.precision import resolve_precision
    from pipeline.extract import run_extraction

    work = Path(tempfile.mkdtemp(prefix="rtdl-bench-extract-"))
    clips = make_clips(work, args.clips, args.clip_seconds, args.size)
    from pipeline.machine import machine_info

    results: dict = {"machine": machine_info(),
                     "precision": resolve_precision(args.precision, "cpu"),
                     "clips": f"{args.clips} x {args.clip_seconds} s, {args.size}x{args.size}, 25 fps",
                     "weights": "random (timing only)",
                     "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    print(results, flush=True)

    frames, waves = decode_all(clips)
    n_frames = sum(len(f) for f in frames)
    visual, audio = build(args.precision, channels_last=True, backend=args.backend)
    results["backend"] = visual.backend
    plain_visual, plain_audio = build("fp32", channels_last=False, fold_bn=False, backend="torch")
    one_request = None
    if args.compare_one_request:
        if visual.backend != "openvino":
            raise SystemExit("--compare-one-request needs the OpenVINO backend")
        one_request = OneRequestTSN(visual)
        one_request(frames[0][:8])
    other_audio, other = None, None
    if args.compare_audio_backend:
        from extractors.build import build_audio_extractor

        other = "torch" if audio.backend == "openvino" else "openvino"
        other_audio = build_audio_extractor("random", precision=args.precision, backend=other,
                                            batch_size=1)  # as build_extractors on the CPU
        other_audio(waves[0][:16000])
    results["audio_backend"] = audio.backend
    compared = compared_visuals(args.compare_visual_backends, args.precision)  # spec -> TSN
    for spec, v in compared.items():
        stage_visual(v, [frames[0][:8]])  # warm-up
        results[f"prepare_s_{spec}"] = round(v._runtime.prepare_seconds, 2)
    compared_ratios: dict[str, list[float]] = {spec: [] for spec in compared}
    for v, a in ((visual, audio), (plain_visual, plain_audio)):
        stage_visual(v, [frames[0][:8]])  # warm-up: first calls allocate and pick kernels
        a(waves[0][:16000])

    # every stage runs once per round and rates add up over the rounds, so a burst of load
    # from other jobs hits the stages alike instead of whichever ran at that moment
    totals: dict[str, list[float]] = {}  # stage -> [frames, seconds]
    round_ratios, one_ratios = [], []  # full / plain per round (and with one request)
    other_ratios = []  # full with wav2vec 2.0 on the other backend / plain per round

    def record(name: str, frames_done: int, seconds: float) -> float:
        total = totals.setdefault(name, [0.0, 0.0])
        total[0] += frames_done
        total[1] += seconds
        print(f"{name:<14}{frames_done / seconds:>10.2f} frames/s", flush=True)
        return frames_done / seconds

    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", flush=True)
        n, s = timed(lambda: stage_decode(clips))
        record("decode", n, s)
        n, s = timed(lambda: stage_visual(visual, frames))
        record("visual", n, s)
        n, s = timed(lambda: stage_audio(audio, waves, n_frames))
        record("audio", n, s)
        if other_audio is not None:
            n, s = timed(lambda: stage_audio(other_audio, waves, n_frames))
            record(f"audio_{other}", n, s)
        for spec, v in compared.items():
            n, s = timed(lambda: stage_visual(v, frames))
            record(f"visual_{spec}", n, s)
        compared_rates: dict[str, float] = {}

        def full_compared() -> None:
            for spec, v in compared.items():
                summary, s = timed(lambda: run_extraction(
                    work / f"{spec.replace(':', '-')}{r}.h5", clips,
                    options=ExtractionOptions(cache_dtype="float32"), visual_extractor=v,
                    audio_extractor=audio, progress=False))
                compared_rates[spec] = record(f"full_{spec}", summary.n_frames, s)

        if r % 2 == 0:
            full_compared()
        out = work / f"cache{r}.h5"  # a fresh cache each round (a rerun skips done videos)
        summary, s = timed(lambda: run_extraction(out, clips, options=ExtractionOptions(cache_dtype="float32"),
                                                  visual_extractor=visual, audio_extractor=audio,
                                                  progress=False))
        full = record("full", summary.n_frames, s)
        if r % 2 == 1:
            full_compared()
        if one_request is not None:
            summary, s = timed(lambda: run_extraction(
                work / f"one{r}.h5", clips, options=ExtractionOptions(cache_dtype="float32"),
                visual_extractor=one_request, audio_extractor=audio, progress=False))
            one_rate = record("full_one_request", summary.n_frames, s)
        if other_audio is not None:
            summary, s = timed(lambda: run_extraction(
                work / f"other_audio{r}.h5", clips, options=ExtractionOptions(cache_dtype="float32"),
                visual_extractor=visual, audio_extractor=other_audio, progress=False))
            other_rate = record(f"full_{other}_audio", summary.n_frames, s)
        outputs, s = timed(lambda: plain_fp32_loop(clips, plain_visual, plain_audio))
        plain = record("plain_fp32", n_frames, s)
        round_ratios.append(round(full / plain, 3))
        for spec, rate in compared_rates.items():
            compared_ratios[spec].append(round(rate / plain, 3))
        if one_request is not None:
            one_ratios.append(round(one_rate / plain, 3))
        if other_audio is not None:
            other_ratios.append(round(other_rate / plain, 3))
    rates = {name: f / s for name, (f, s) in totals.items()}
    del visual, audio, plain_visual, plain_audio, one_request, other_audio, compared

    from data.cache import FeatureCache

    cache = FeatureCache(out)
    keyed = sorted(zip([c.name for c in clips], outputs))
    cos_visual = min(cosine_min(cache.read(k)[0], o[0]) for k, o in keyed)
    cos_audio = min(cosine_min(cache.read(k)[1], o[1]) for k, o in keyed)
    centred_visual = min(centred_cosine_min(cache.read(k)[0], o[0]) for k, o in keyed)
    centred_audio = min(centred_cosine_min(cache.read(k)[1], o[1]) for k, o in keyed)

    slowest = min(rates["decode"], rates["visual"], rates["audio"])
    results.update({f"{k}_frames_per_s": round(v, 2) for k, v in rates.items()})
    results["full_vs_slowest_stage"] = round(rates["full"] / slowest, 3)
    results["full_vs_plain_fp32"] = round(rates["full"] / rates["plain_fp32"], 3)
    results["full_vs_plain_fp32_per_round"] = round_ratios
    if "full_one_request" in rates:
        results["full_one_request_vs_plain_fp32"] = round(rates["full_one_request"] / rates["plain_fp32"], 3)
        results["full_vs_full_one_request"] = round(rates["full"] / rates["full_one_request"], 3)
        results["full_one_request_vs_plain_fp32_per_round"] = one_ratios
    if other is not None:
        name = f"full_{other}_audio"
        results[f"{name}_vs_plain_fp32"] = round(rates[name] / rates["plain_fp32"], 3)
        results[f"full_vs_{name}"] = round(rates["full"] / rates[name], 3)
        results[f"{name}_vs_plain_fp32_per_round"] = other_ratios
    for spec, ratios in compared_ratios.items():
        results[f"full_{spec}_vs_plain_fp32"] = round(rates[f"full_{spec}"] / rates["plain_fp32"], 3)
        results[f"full_{spec}_vs_full"] = round(rates[f"full_{spec}"] / rates["full"], 3)
        results[f"full_{spec}_vs_plain_fp32_per_round"] = ratios
        spec_cache = FeatureCache(work / f"{spec.replace(':', '-')}{args.rounds - 1}.h5")
        results[f"min_centred_cosine_visual_{spec}_vs_fp32"] = round(min(
            centred_cosine_min(spec_cache.read(k)[0], o[0]) for k, o in keyed), 5)
    results["min_cosine_visual_vs_fp32"] = round(cos_visual, 5)
    results["min_cosine_audio_vs_fp32"] = round(cos_audio, 5)
    results["min_centred_cosine_visual_vs_fp32"] = round(centred_visual, 5)
    results["min_centred_cosine_audio_vs_fp32"] = round(centred_audio, 5)

    rss = []
    for seconds in [float(x) for x in args.rss_seconds.split(",") if x.strip()]:
        clip = make_clips(work / f"rss{int(seconds)}", 1, seconds, args.size)[0]
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(clip),
                               "--precision", args.precision], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        rss.append({"clip_seconds": seconds, **json.loads(proc.stdout.strip().splitlines()[-1])})
        rss[-1].pop("clip")
        print(f"peak RSS, {seconds:.0f} s clip: {rss[-1]['peak_rss_mb']:.0f} MiB", flush=True)
    results["peak_rss"] = rss
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    print(f"\n{'stage':<14}{'frames/s':>10}   (totals over {args.rounds} interleaved rounds)")
    for name in ("decode", "visual", "audio", "audio_torch", "audio_openvino", "full",
                 "full_one_request", "full_torch_audio", "full_openvino_audio", "plain_fp32",
                 *[f"{stage}_{spec}" for spec in compared_ratios for stage in ("visual", "full")]):
        if name in rates:
            print(f"{name:<14}{rates[name]:>10.2f}")
    print(f"full / slowest stage: {results['full_vs_slowest_stage']:.2f}   "
          f"full / plain fp32: {results['full_vs_plain_fp32']:.2f} (per round {round_ratios})   "
          f"min cosine vs fp32: visual {cos_visual:.4f}, audio {cos_audio:.4f} (centred: "
          f"visual {centred_visual:.4f}, audio {centred_audio:.4f})")
    for spec, ratios in compared_ratios.items():
        print(f"full with the TSN on {spec} / plain fp32: {results[f'full_{spec}_vs_plain_fp32']:.2f} "
              f"(per round {ratios});   full on {spec} / full ({results['backend']}): "
              f"{results[f'full_{spec}_vs_full']:.3f}; centred cosine vs fp32 "
              f"{results[f'min_centred_cosine_visual_{spec}_vs_fp32']:.4f}")
    if one_ratios:
        print(f"full with one OpenVINO request / plain fp32: "
              f"{results['full_one_request_vs_plain_fp32']:.2f} (per round {one_ratios});   "
              f"full / full with one request: {results['full_vs_full_one_request']:.3f}")
    if other is not None:
        name = f"full_{other}_audio"
        print(f"full with wav2vec 2.0 on {other} / plain fp32: "
              f"{results[f'{name}_vs_plain_fp32']:.2f} (per round {other_ratios});   "
              f"full / full with wav2vec 2.0 on {other}: {results[f'full_vs_{name}']:.3f}")
    for r in rss:
        print(f"peak RSS {r['clip_seconds']:>5.0f} s clip ({r['n_frames']} frames, {r['seconds']:.0f} s): "
              f"{r['peak_rss_mb']:.0f} MiB during extraction (RSS after building the models: "
              f"{r['rss_after_build_mb']:.0f} MiB; max RSS sampled in the first / second half of "
              f"the run: {r['max_rss_first_half_mb']:.0f} / {r['max_rss_second_half_mb']:.0f} MiB)")
    print(f"load average (1, 5, 15 min) at start {results['load_average_at_start']}, "
          f"at end {results['load_average_at_end']}: other jobs on the machine slow every stage")
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
