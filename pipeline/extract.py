"""`rtdl extract`: videos -> per-frame visual + frame-aligned audio features in an HDF5 cache.

Each video goes through the engine in pipeline/video_features.py (decode, embed, align);
this module chooses the videos, builds the extractors and writes the cache.

Choices:
- Decode workers: one on the CPU (the models are the bottleneck there), four by default
  when the models run on a GPU (`decode_workers`).
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
- The extractors' precision (bf16/fp16 autocast where the hardware supports it) and
  channels-last are their own options.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from data.cache import CacheWriter, shard_path
from data.feature_settings import backbone_source
from pipeline.devices import resolve_device
from pipeline.options import ExtractionOptions
from pipeline.video_features import extract_stream

log = logging.getLogger(__name__)


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

    # the visual model embeds each decoded chunk in one batch: bigger batches run faster on
    # the CPU (BENCHMARKS.md, "Extraction batch sizes")
    visual = build_visual_extractor(options.visual_model, weights=options.visual_weights,
                                    device=device, precision=options.precision,
                                    batch_size=options.chunk_frames,
                                    **({"backend": options.backend}
                                       if options.visual_model == "tsn" else {}))
    audio_options = {}
    if options.audio_model not in ("logmel", "logmel_voice") and not device.startswith("cuda"):
        # wav2vec 2.0 on the CPU: one 20 s window per forward pass; batching windows gains
        # nothing there and doubles time and peak memory (BENCHMARKS.md, "Extraction batch sizes")
        audio_options["batch_size"] = 1
    if options.audio_model not in ("logmel", "logmel_voice"):
        audio_options["backend"] = options.backend  # auto: torch (extractors/audio_wav2vec.py)
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
        kind, source = settings[part].get("kind"), backbone_source(settings[part])
        if source == "weight-free":
            log.info("%s features come from the weight-free %s extractor", part, kind)
        elif source == "random":
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
            for key, path, result in extract_stream(
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
