"""`rtdl extract`: videos -> per-frame visual + frame-aligned audio features in an HDF5 cache.

Flow per video: decode frames in chunks -> visual extractor per chunk; decode the audio ->
audio extractor -> `pool_to_frames` onto the video's frame timeline -> `CacheWriter.write`.

Choices:
- Overlap: prefetch threads decode the next chunks (and the next videos) into bounded
  queues while the main thread runs the models. Decoding is a C library call (decord) or a
  child ffmpeg process, and torch releases the GIL while it computes, so threads overlap
  them without the pickling cost of worker processes; the queue bound
  (`prefetch_chunks`) keeps memory independent of video length. One decode worker on the
  CPU (the models are the bottleneck there), four by default when the models run on a GPU
  (`decode_workers`), each taking every n-th video so the output order stays fixed.
- Keys: with `--metadata`, a video's key is its metadata `file` and its path is
  `root / file` (root defaults to the metadata file's folder). With plain video paths, the
  key is the path relative to `--root` when given, else the file name; duplicate keys are
  an error (pass `--root` to keep folders apart).
- Shards: videos are sorted by key and shard I takes every N-th one starting at I
  (round-robin balances long and short clips). N and I default to torchrun's `WORLD_SIZE`
  and `RANK`, and `LOCAL_RANK` picks the CUDA device. Shard I of N writes
  `shard_path(out, I, N)` (`cache.shard-I-of-N.h5`); `FeatureCache(out)` reads the shards as
  one cache and `rtdl merge` folds them into `out`. `--limit` applies before sharding.
- Length check: with `--metadata`, a video that decodes to fewer frames than its record's
  `video_frames` (a truncated file decodes without error) is a failure naming both lengths;
  without metadata, falling short of the container's declared length is a warning.
- Failures: a video that fails (decoding or feature computation) is appended as one JSON
  line `{"file", "path", "reason"}` to `<cache file>.failures.jsonl` (rewritten by each run,
  so it always describes the latest one: a rerun retries earlier failures) and skipped.
- Resume: videos already complete in the cache (see `data/cache.py`) are skipped before any
  decoding; at most the videos of one unsealed part file are redone after a crash.
- Memory: decoded frames wait in bounded queues, the waveform is freed once the audio
  model has run, wav2vec 2.0 runs in fixed windows, and freed heap memory is returned to
  the OS after the audio pass and after each video once the resident set outgrows its
  previous peak by 64 MiB (`extractors/memory.py`), so the peak is one audio window or
  one visual batch, whichever is larger, plus at most 64 MiB. What still grows with clip
  length is the output itself (the video's features until they are written: ~0.5 MB per
  second of 25 fps video: 2048 + 768 float32 per frame, the 50 Hz audio features and the
  16 kHz wave).
- The extractors' precision (bf16/fp16 autocast where the hardware supports it) and
  channels-last are their own options; this module wraps all model calls in
  `torch.inference_mode()`.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from data.cache import CacheWriter, shard_path
from extractors.align import pool_to_frames
from extractors.decode import VideoStream, decode_audio
from extractors.memory import release_freed_memory
from pipeline.devices import resolve_device

log = logging.getLogger(__name__)

# trim the heap between passes only when the resident set outgrew its size before the last
# trim by this much: memory each video uses again stays mapped (trimming it after every
# short clip only made the next clip fault it back in), growth is still given back
# (extractors/memory.py)
TRIM_GROWTH_BYTES = 64 << 20

DEFAULT_AUDIO_MODEL = "facebook/wav2vec2-base-960h"


@dataclass(frozen=True)
class ExtractionOptions:
    visual_model: str = "tsn"  # tsn | lowlevel
    visual_weights: str = "imagenet"  # imagenet | random | PATH (tsn only)
    audio_model: str = DEFAULT_AUDIO_MODEL  # HF id | local dir | random | logmel
    audio_layer: int = -1  # wav2vec 2.0 hidden layer (-1 = last)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 | int8 (int8: visual backbone only)
    backend: str = "auto"  # auto | torch | openvino: the visual backbone's runtime
    chunk_frames: int = 64  # frames decoded and embedded per model call (bounds memory)
    prefetch_chunks: int = 4  # decoded chunks waiting per decode worker at most
    decode_threads: int = 1  # decord decoder threads per video (the models want the cores)
    decode_workers: int = 0  # videos decoded in parallel; 0 = auto (1 on CPU, 4 on a GPU)
    cache_dtype: str = "float16"  # storage dtype of the features
    flush_every: int = 16  # videos per sealed part file (work lost at most on a crash)


@dataclass
class ExtractionSummary:
    out: Path  # the cache file this job wrote (a shard file for sharded jobs)
    n_videos: int  # videos assigned to this job (after --limit and sharding)
    n_extracted: int  # newly extracted
    n_skipped: int  # already complete in the cache
    n_frames: int  # frames newly extracted
    seconds: float  # wall-clock time of the job
    failures: list[dict] = field(default_factory=list)  # {"file", "path", "reason"}
    failures_path: Path | None = None  # JSONL report, only written when something failed
    settings: dict = field(default_factory=dict)  # extractor settings recorded in the cache

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def describe(self) -> str:
        rate = self.n_frames / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.out}: {self.n_extracted} extracted, {self.n_skipped} already done, "
                f"{self.n_failed} failed of {self.n_videos} videos "
                f"({self.n_frames} frames in {self.seconds:.1f} s, {rate:.1f} frames/s)")
        if self.failures:
            text += f"; failures listed in {self.failures_path}"
        return text


# ----------------------------------------------------------------------------- decoding thread

@dataclass
class _Start:
    key: str
    path: Path
    info: object  # MediaInfo
    wave: np.ndarray  # float32 [S] at 16 kHz
    has_audio: bool


@dataclass
class _Frames:
    key: str
    frames: np.ndarray  # uint8 [n, H, W, 3]


@dataclass
class _End:
    key: str
    info: object  # MediaInfo, final (the ffmpeg fallback learns n_frames at the end)


@dataclass
class _Failed:
    key: str
    path: Path
    reason: str


class _Prefetcher:
    """Decode `items` [(key, path)] on background threads into bounded queues.

    Worker w decodes videos w, w + n, w + 2n, ... in order into its own queue; the consumer
    reads video i whole from queue i % n, so videos come out in input order and each
    video's chunks arrive consecutively. decord (a ctypes library) and the ffmpeg child
    processes release the GIL, so several workers decode in parallel.
    """

    def __init__(self, items: Sequence[tuple[str, Path]], *, chunk_frames: int,
                 decode_threads: int, max_queued: int, sample_rate: int, workers: int = 1):
        self._items = list(items)
        self._chunk_frames = chunk_frames
        self._decode_threads = decode_threads
        self._sample_rate = sample_rate
        self._workers = max(1, min(int(workers), len(self._items) or 1))
        self._queues = [queue.Queue(maxsize=max(1, max_queued)) for _ in range(self._workers)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(w,), name=f"rtdl-decode-{w}",
                                          daemon=True) for w in range(self._workers)]

    def _put(self, q: queue.Queue, item) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, worker: int) -> None:
        q = self._queues[worker]
        for key, path in self._items[worker::self._workers]:
            if self._stop.is_set():
                return
            try:
                stream = VideoStream(path, self._chunk_frames, decode_threads=self._decode_threads)
                wave, has_audio = decode_audio(path, has_audio=stream.info.has_audio,
                                               duration=stream.info.duration,
                                               sample_rate=self._sample_rate)
                if not self._put(q, _Start(key, Path(path), stream.info, wave, has_audio)):
                    return
                del wave
                for chunk in stream:
                    if not self._put(q, _Frames(key, chunk)):
                        return
                ok = self._put(q, _End(key, stream.info))
            except Exception as err:  # noqa: BLE001 - any decoding problem fails this file only
                ok = self._put(q, _Failed(key, Path(path), str(err)))
            if not ok:
                return

    def __iter__(self):
        for thread in self._threads:
            thread.start()
        try:
            for i in range(len(self._items)):
                q = self._queues[i % self._workers]
                while True:
                    item = q.get()
                    yield item
                    if isinstance(item, (_End, _Failed)):
                        break
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=5.0)


# ----------------------------------------------------------------------------- core loop

def _extract_stream(items: Sequence[tuple[str, Path]], visual_extractor, audio_extractor, *,
                    chunk_frames: int = 64, prefetch_chunks: int = 4, decode_threads: int = 1,
                    decode_workers: int = 1, on_frames=None) -> Iterator[tuple[str, Path, object]]:
    """Yield (key, path, (visual [T,Dv], audio [T,Da], info) or failure reason str) per video."""
    import torch

    sample_rate = int(getattr(audio_extractor, "sample_rate", 16000))
    prefetcher = _Prefetcher(items, chunk_frames=chunk_frames, decode_threads=decode_threads,
                             max_queued=prefetch_chunks, sample_rate=sample_rate,
                             workers=decode_workers)
    current: _Start | None = None
    visual_parts: list[np.ndarray] = []
    audio_result = None
    broken: str | None = None  # model error inside the current video: skip its remaining chunks
    with torch.inference_mode():
        for item in prefetcher:
            if isinstance(item, _Failed):
                if current is not None and current.key == item.key:
                    current = None
                yield item.key, item.path, item.reason
                continue
            if isinstance(item, _Start):
                current, visual_parts, broken = item, [], None
                try:
                    visual_extractor.start_video()
                    audio_extractor.start_video()
                    audio_result = audio_extractor(item.wave)  # ([M, Da], centres [M])
                except Exception as err:  # noqa: BLE001
                    broken = f"audio feature extraction failed: {err}"
                item.wave = None  # free the waveform while the frames stream in
                # hand the audio pass's buffers back before the visual batches allocate theirs,
                # so the peak is the larger of the two passes, not their sum (extractors/memory.py)
                release_freed_memory(TRIM_GROWTH_BYTES)
                continue
            if current is None or item.key != current.key:
                continue  # leftovers of a video that already failed
            if isinstance(item, _Frames):
                if broken is None:
                    try:
                        visual_parts.append(np.asarray(visual_extractor(item.frames), np.float32))
                    except Exception as err:  # noqa: BLE001
                        broken = f"visual feature extraction failed: {err}"
                if on_frames is not None:
                    on_frames(len(item.frames))
                continue
            # _End: assemble the video
            start, current = current, None
            if broken is not None:
                yield start.key, start.path, broken
                continue
            declared, decoded = start.info.n_frames, sum(len(part) for part in visual_parts)
            if declared > 0 and decoded < declared - max(2, 0.05 * declared):
                # the container's duration covers every stream, so a little slack; a cut file
                # decodes without error, only shorter
                log.warning("%s: decoded %d frames, but the container declares %d (%.2f s); the "
                            "file may be truncated", start.path, decoded, declared,
                            start.info.duration)
            try:
                yield start.key, start.path, _assemble(visual_parts, audio_result, item.info,
                                                        start.has_audio)
            except Exception as err:  # noqa: BLE001
                yield start.key, start.path, f"alignment failed: {err}"
            visual_parts, audio_result = [], None
            release_freed_memory(TRIM_GROWTH_BYTES)  # between videos: RSS stays at one video's peak


def _assemble(visual_parts: list[np.ndarray], audio_result, info, has_audio: bool):
    if not visual_parts:
        raise ValueError("no video frames decoded")
    visual = np.concatenate(visual_parts, axis=0)  # [T, Dv]
    n_frames = visual.shape[0]
    audio_features, centres = audio_result  # [M, Da], [M]
    frame_starts = info.frame_starts
    if frame_starts is not None and len(frame_starts) != n_frames:
        log.warning("%s: %d frame timestamps for %d decoded frames; using the uniform grid",
                    info.path, len(frame_starts), n_frames)
        frame_starts = None
    audio = pool_to_frames(np.asarray(audio_features), np.asarray(centres), n_frames, info.fps,
                           frame_starts)  # [T, Da]
    duration = info.duration if info.duration > 0 else n_frames / info.fps
    meta = {"fps": float(info.fps), "duration": float(duration), "n_frames": int(n_frames),
            "has_audio": bool(has_audio), "width": info.width, "height": info.height,
            "decoder": info.backend}
    return visual, audio, meta


def extract_video_features(path: str | Path, visual_extractor, audio_extractor, *,
                           chunk_frames: int = 64, prefetch_chunks: int = 4,
                           decode_threads: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features of one video in memory: (visual [T, Dv], audio [T, Da], info).

    info: fps, duration, n_frames, has_audio (plus width, height, decoder).
    Raises `DecodeError`/`RuntimeError` naming the file when it cannot be processed.
    """
    path = Path(path)
    for _, _, result in _extract_stream([(path.name, path)], visual_extractor, audio_extractor,
                                        chunk_frames=chunk_frames, prefetch_chunks=prefetch_chunks,
                                        decode_threads=decode_threads):
        if isinstance(result, str):
            raise RuntimeError(result if str(path) in result else f"{path}: {result}")
        return result
    raise RuntimeError(f"{path}: nothing was extracted")


# ----------------------------------------------------------------------------- batch job

def collect_videos(videos: Sequence[str | Path] = (), *, metadata: str | Path | None = None,
                   root: str | Path | None = None, records=None) -> list[tuple[str, Path]]:
    """[(cache key, file path)] sorted by key, from metadata + root or from video paths.

    `records`: the metadata's VideoRecords when the caller has loaded them already.
    """
    if metadata is not None and videos:
        raise ValueError("give either video paths or --metadata, not both")
    if metadata is not None:
        from data.metadata import load_metadata

        metadata = Path(metadata)
        base = Path(root) if root is not None else (metadata if metadata.is_dir() else metadata.parent)
        records = load_metadata(metadata) if records is None else records
        items = [(record.file, base / record.file) for record in records]
    else:
        if not videos:
            raise ValueError("no videos given: pass video paths or --metadata")
        items = []
        for video in videos:
            path = Path(video)
            if root is not None:
                try:
                    key = path.resolve().relative_to(Path(root).resolve()).as_posix()
                except ValueError:
                    raise ValueError(f"{path}: not inside --root {root}") from None
            else:
                key = path.name
            items.append((key, path))
    keys: dict[str, Path] = {}
    for key, path in items:
        if key in keys:
            raise ValueError(f"two videos share the cache key {key!r}: {keys[key]} and {path}"
                             f"{'' if root is not None or metadata is not None else ' (pass --root to keep their folders in the key)'}")
        keys[key] = path
    return sorted(items)


def resolve_shard(num_shards: int | None, shard_index: int | None) -> tuple[int, int]:
    """(num_shards, shard_index), defaulting to torchrun's WORLD_SIZE / RANK, else (1, 0)."""
    if num_shards is None:
        num_shards = int(os.environ.get("WORLD_SIZE", "1"))
    if shard_index is None:
        shard_index = int(os.environ.get("RANK", "0")) if "RANK" in os.environ else 0
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index {shard_index} must be in [0, --num-shards {num_shards})")
    return num_shards, shard_index


def build_extractors(options: ExtractionOptions, device: str):
    from extractors.build import build_audio_extractor, build_visual_extractor

    # the visual model embeds each decoded chunk in one batch: ResNet-50 ran 10.3 frames/s at
    # batch 64 vs 8.8 at 32 and 6.2 at 16 on 2 busy CPU cores (bf16, BN folded; the fixed
    # per-op thread synchronisation weighs less in bigger batches); +~450 MiB of activations
    visual = build_visual_extractor(options.visual_model, weights=options.visual_weights,
                                    device=device, precision=options.precision,
                                    batch_size=options.chunk_frames,
                                    **({"backend": options.backend}
                                       if options.visual_model == "tsn" else {}))
    audio_options = {}
    if options.audio_model != "logmel" and not device.startswith("cuda"):
        # wav2vec 2.0 on the CPU: one 20 s window per forward pass. Batching 4 windows gains
        # nothing there and doubles the time (measured 9.0 s vs 19.8 s for 120 s of audio on
        # 2 cores) and the peak memory (+283 vs +664 MiB), which then grows with clip length
        audio_options["batch_size"] = 1
    audio = build_audio_extractor(options.audio_model, device=device, precision=options.precision,
                                  layer=options.audio_layer, **audio_options)
    return visual, audio


def run_extraction(out: str | Path, videos: Sequence[str | Path] = (), *,
                   metadata: str | Path | None = None, root: str | Path | None = None,
                   options: ExtractionOptions = ExtractionOptions(),
                   num_shards: int | None = None, shard_index: int | None = None,
                   limit: int | None = None, visual_extractor=None, audio_extractor=None,
                   progress: bool = True) -> ExtractionSummary:
    """Extract every (assigned) video into the cache `out`; resumable; returns a summary.

    `visual_extractor`/`audio_extractor`: prebuilt extractors (tests, benchmarks); otherwise
    they are built from `options`. The caller decides what to do with failures
    (`summary.n_failed`); the CLI exits non-zero.
    """
    from tqdm import tqdm

    from extractors.build import extractor_settings

    t0 = time.perf_counter()
    records = None
    if metadata is not None:
        from data.metadata import load_metadata

        records = load_metadata(metadata)
    items = collect_videos(videos, metadata=metadata, root=root, records=records)
    expected = {record.file: record for record in records or ()}  # lengths to check decodes by
    if limit is not None:
        items = items[:limit]
    num_shards, shard_index = resolve_shard(num_shards, shard_index)
    items = items[shard_index::num_shards]
    target = Path(out) if num_shards == 1 else shard_path(out, shard_index, num_shards)
    failures_path = target.with_name(target.name + ".failures.jsonl")
    failures_path.unlink(missing_ok=True)  # the report describes this run only

    if visual_extractor is None or audio_extractor is None:
        device = str(resolve_device(options.device))  # extractors take a device string
        visual_extractor, audio_extractor = build_extractors(options, device)
    settings = extractor_settings(visual_extractor, audio_extractor)  # what the cache records

    summary = ExtractionSummary(out=target, n_videos=len(items), n_extracted=0, n_skipped=0,
                                n_frames=0, seconds=0.0, failures_path=failures_path,
                                settings=settings)
    for part in ("visual", "audio"):
        kind = settings[part].get("kind")
        if kind in ("lowlevel", "logmel"):
            log.info("%s features come from the weight-free %s extractor", part, kind)
        elif settings[part].get("pretrained") is False:
            log.warning("%s features come from a RANDOM-initialised %s backbone: fine for tests "
                        "and timing, meaningless for detection", part, kind)
    with CacheWriter(target, settings, dtype=options.cache_dtype,
                     flush_every=options.flush_every) as writer:
        todo = [(key, path) for key, path in items if not writer.has(key)]
        summary.n_skipped = len(items) - len(todo)
        if summary.n_skipped:
            log.info("%s: skipping %d videos already in the cache", target, summary.n_skipped)
        bar = tqdm(total=len(todo), unit="video", desc=f"extract {target.name}",
                   disable=not progress, dynamic_ncols=True)
        frames_seen = [0]
        started = time.perf_counter()

        def on_frames(n: int) -> None:
            frames_seen[0] += n
            elapsed = time.perf_counter() - started
            bar.set_postfix(frames_per_s=f"{frames_seen[0] / max(elapsed, 1e-9):.1f}", refresh=False)

        try:
            for key, path, result in _extract_stream(
                    todo, visual_extractor, audio_extractor, chunk_frames=options.chunk_frames,
                    prefetch_chunks=options.prefetch_chunks, decode_threads=options.decode_threads,
                    decode_workers=_decode_workers(options, visual_extractor),
                    on_frames=on_frames):
                if not isinstance(result, str):
                    result = short_decode(result[2]["n_frames"], expected.get(key)) or result
                if isinstance(result, str):
                    _record_failure(summary, failures_path, key, path, result)
                else:
                    visual, audio, meta = result
                    writer.write(key, visual, audio, fps=meta["fps"], duration=meta["duration"],
                                 has_audio=meta["has_audio"])
                    summary.n_extracted += 1
                    summary.n_frames += meta["n_frames"]
                bar.update(1)
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    (log.warning if summary.failures else log.info)("%s", summary.describe())
    return summary


def short_decode(decoded: int, record) -> str | None:
    """The failure reason when a video decoded to fewer frames than its metadata record
    gives (one frame of slack for decoders that drop a trailing frame), else None.

    A truncated mp4 whose index sits at the front still decodes, only shorter, with no error
    from the decoder; without this check it would be extracted and evaluated as a short video.
    """
    if record is None or decoded >= record.n_frames - 1:
        return None
    return (f"decoded {decoded} frames ({decoded / record.fps:.2f} s), but the metadata gives "
            f"video_frames {record.n_frames} ({record.duration:g} s): the file is truncated or "
            f"damaged")


def _decode_workers(options: ExtractionOptions, visual_extractor) -> int:
    if options.decode_workers > 0:
        return options.decode_workers
    device = str(getattr(visual_extractor, "device", "cpu"))
    # on the CPU the models take every core and decoding is ~5% of the work: one worker
    # keeps up; a GPU embeds frames faster than one core decodes them
    return 4 if device.startswith("cuda") else 1


def _record_failure(summary: ExtractionSummary, report: Path, key: str, path: Path, reason: str) -> None:
    entry = {"file": key, "path": str(path), "reason": reason}
    summary.failures.append(entry)
    log.warning("%s: skipped (%s)", path, reason)
    with open(report, "a") as handle:  # appended at once, so a crash keeps what failed so far
        handle.write(json.dumps(entry) + "\n")
