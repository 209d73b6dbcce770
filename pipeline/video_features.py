"""The video -> aligned features engine, shared by `rtdl extract` (many videos into a cache)
and `rtdl localize` (one video in memory).

Per video: decode frames in chunks -> visual extractor per chunk; decode the audio ->
audio extractor -> `pool_to_frames` onto the video's frame timeline (extractors/align.py).

- Overlap: prefetch threads decode the next chunks (and the next videos) into bounded
  queues while the main thread runs the models. Decoding is a C library call (decord) or a
  child ffmpeg process, and torch releases the GIL while it computes, so threads overlap
  them without the pickling cost of worker processes; the queue bound
  (`prefetch_chunks`) keeps memory independent of video length. Worker w of n decodes
  videos w, w + n, ..., so the output order stays the input order.
- Memory: decoded frames wait in bounded queues, the waveform is freed once the audio
  model has run, and freed heap memory is returned to the OS after the audio pass and
  after each video once the resident set outgrows its previous peak by TRIM_GROWTH_BYTES
  (extractors/memory.py), so the peak is one audio window or one visual batch, whichever
  is larger. What still grows with clip length is the output itself (~0.5 MB per second of
  25 fps video: 2048 + 768 float32 per frame, the 50 Hz audio features and the 16 kHz wave).
- A container that declares more frames than decode (beyond a little slack) is a warning:
  a cut file decodes without error, only shorter. Every model call runs under
  `torch.inference_mode()`.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from extractors.align import pool_to_frames
from extractors.decode import VideoStream, decode_audio
from extractors.memory import release_freed_memory
from pipeline.options import ExtractionOptions

log = logging.getLogger(__name__)

DEFAULTS = ExtractionOptions()  # chunking and prefetching defaults, declared there once

# trim the heap between passes only when the resident set outgrew its size before the last
# trim by this much: memory each video uses again stays mapped (trimming it after every
# short clip only made the next clip fault it back in), growth is still given back
# (extractors/memory.py)
TRIM_GROWTH_BYTES = 64 << 20

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

def extract_stream(items: Sequence[tuple[str, Path]], visual_extractor, audio_extractor, *,
                    chunk_frames: int = DEFAULTS.chunk_frames,
                    prefetch_chunks: int = DEFAULTS.prefetch_chunks,
                    decode_threads: int = DEFAULTS.decode_threads, decode_workers: int = 1,
                    on_frames=None) -> Iterator[tuple[str, Path, object]]:
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
                           chunk_frames: int = DEFAULTS.chunk_frames,
                           prefetch_chunks: int = DEFAULTS.prefetch_chunks,
                           decode_threads: int = DEFAULTS.decode_threads) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features of one video in memory: (visual [T, Dv], audio [T, Da], info).

    info: fps, duration, n_frames, has_audio (plus width, height, decoder).
    Raises `DecodeError`/`RuntimeError` naming the file when it cannot be processed.
    """
    path = Path(path)
    for _, _, result in extract_stream([(path.name, path)], visual_extractor, audio_extractor,
                                        chunk_frames=chunk_frames, prefetch_chunks=prefetch_chunks,
                                        decode_threads=decode_threads):
        if isinstance(result, str):
            raise RuntimeError(result if str(path) in result else f"{path}: {result}")
        return result
    raise RuntimeError(f"{path}: nothing was extracted")
