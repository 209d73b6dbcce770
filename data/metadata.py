"""Dataset metadata readers: LAV-DF and AV-Deepfake1M into one `VideoRecord` list.

`load_metadata(path)` detects the format from the records themselves, not the file name:
a record with `modify_type` is AV-Deepfake1M, one with `modify_video` / `modify_audio` /
`fake_periods` is LAV-DF. `path` may also be a dataset root folder; see `metadata_files`.

Choices where the datasets leave room (recorded here so they are easy to find):
- Tolerance. A segment may start up to one frame (1 / fps s) before 0 and end up to one
  frame after the duration. Both datasets write times rounded from frame indices and
  LAV-DF's `duration` comes from the container, so the last segment can overshoot by a
  fraction of a frame; anything larger means the record and its times disagree.
- Zero-length segments (end == start) are accepted; only end < start is an error.
- LAV-DF: fps is 25 unless the record has an `fps` field (written by `rtdl synth`).
  `n_fakes` must equal `len(fake_periods)`. The optional `visual_fake_periods` /
  `audio_fake_periods` fill the per-modality segments; LAV-DF proper gives neither, so
  those stay None. Label = `label_from_flags(modify_video, modify_audio)`.
- AV-Deepfake1M: fps is 25 and duration = video_frames / 25 (the dataset has no
  duration field). `modify_type` must be one of `real`, `visual_modified`,
  `audio_modified`, `both_modified`. The dataset's own loader compares against
  `both-modified` and so labels those records wrongly; the underscore form is the one
  in the files and is the truth here, the hyphen form is rejected as unknown.
  `split` may be missing (test metadata written by hand); it then comes from the file
  name (`val_metadata.json` -> `val`).
- Label flags must agree with the segments: a real video has no segments, a fake video
  has at least one; where per-modality segments exist, a modality has segments exactly
  when its flag says it was modified.
- Duplicate `file` keys are an error (the file is the cache key and the prediction key).
- Unknown extra fields (`timestamps`, `transcript`, `video_model`, ...) are ignored.

Speed: one pass of plain Python checks per record (no regex, no per-record exceptions on
the good path), so AV-Deepfake1M's 1.1 M records load in seconds after `json.load`.
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from data.labels import label_from_flags
from data.records import Segment, VideoRecord

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # both datasets are 25 fps

# AV-Deepfake1M modify_type -> (visual modified, audio modified)
AVDF1M_MODIFY_TYPES: dict[str, tuple[bool, bool]] = {
    "real": (False, False),
    "visual_modified": (True, False),
    "audio_modified": (False, True),
    "both_modified": (True, True),
}

LAVDF_REQUIRED = ("file", "split", "fake_periods", "modify_video", "modify_audio",
                  "n_fakes", "duration", "video_frames")
AVDF1M_REQUIRED = ("file", "modify_type", "fake_segments", "visual_fake_segments",
                   "audio_fake_segments", "video_frames")

_NUMBER = (int, float)


class _RecordError(ValueError):
    """Internal: a problem in one field of one record; wrapped with the file and record."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


def metadata_files(path: str | Path) -> list[Path]:
    """The metadata JSON file(s) behind `path`: the file itself, or for a dataset root folder
    `metadata.json` (else `metadata.min.json`, LAV-DF) or every `*_metadata.json`
    (AV-Deepfake1M's `train_metadata.json`, `val_metadata.json`), sorted."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: metadata file or folder does not exist")
    if path.is_file():
        return [path]
    for name in ("metadata.json", "metadata.min.json"):
        if (path / name).is_file():
            return [path / name]
    found = sorted(path.glob("*_metadata.json"))
    if not found:
        raise ValueError(f"{path}: folder has no metadata.json, metadata.min.json "
                         f"or *_metadata.json")
    return found


def load_metadata(path: str | Path) -> list[VideoRecord]:
    """Read LAV-DF or AV-Deepfake1M metadata (format detected) into `VideoRecord`s.

    `path` is a metadata JSON file or a dataset root folder (see `metadata_files`).
    Raises ValueError naming the file, the record (index and `file`) and the field.
    """
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}  # file key -> "metadata path, record i" of its first occurrence
    for meta_path in metadata_files(path):
        file_records = _load_file(meta_path)
        for index, record in enumerate(file_records):
            first = seen.get(record.file)
            if first is not None:
                raise ValueError(f"{meta_path}: record {index} (file {record.file!r}): field "
                                 f"'file': duplicate, already given by {first}")
            seen[record.file] = f"{meta_path} record {index}"
        records.extend(file_records)
    return records


def records_for_split(records: Iterable[VideoRecord], split: str) -> list[VideoRecord]:
    """The records of one split, in their original order; an unknown split raises a
    ValueError listing the splits that exist (with their sizes)."""
    records = list(records)
    chosen = [r for r in records if r.split == split]
    if not chosen:
        counts = Counter(r.split for r in records)
        available = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())) or "none"
        raise ValueError(f"no records in split {split!r}; available splits: {available}")
    return chosen


def detect_format(entries: list, source: str | Path = "metadata") -> str:
    """'lavdf' or 'avdeepfake1m', from the keys of the first record."""
    if not isinstance(entries, list):
        raise ValueError(f"{source}: expected a JSON list of records, "
                         f"got {type(entries).__name__}")
    if not entries:
        raise ValueError(f"{source}: the metadata list is empty")
    first = entries[0]
    if not isinstance(first, dict):
        raise ValueError(f"{source}: record 0: expected a JSON object, "
                         f"got {type(first).__name__}")
    if "modify_type" in first:
        return "avdeepfake1m"
    if {"modify_video", "modify_audio", "fake_periods"} & first.keys():
        return "lavdf"
    raise ValueError(f"{source}: record 0: cannot tell the dataset format: it has neither "
                     f"'modify_type' (AV-Deepfake1M) nor 'fake_periods' / 'modify_video' / "
                     f"'modify_audio' (LAV-DF); keys: {sorted(first)}")


def _load_file(path: Path) -> list[VideoRecord]:
    try:
        with open(path, "rb") as handle:
            entries = json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    fmt = detect_format(entries, path)
    if fmt == "lavdf":
        parse, default_split = _parse_lavdf, None
    else:
        parse = _parse_avdeepfake1m
        default_split = path.name[:-len("_metadata.json")] if path.name.endswith(
            "_metadata.json") else None
    records = []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise _RecordError("<record>", f"expected a JSON object, got "
                                               f"{type(entry).__name__}")
            records.append(parse(entry, default_split))
        except _RecordError as err:
            name = entry.get("file") if isinstance(entry, dict) else None
            which = f"record {index} (file {name!r})" if name is not None else f"record {index}"
            raise ValueError(f"{path}: {which}: field {err.field!r}: {err.problem}") from None
    log.info("%s: %d %s records", path, len(records), fmt)
    return records


# ---------------------------------------------------------------- per-record parsing

def _parse_lavdf(entry: dict, default_split: str | None) -> VideoRecord:
    _require(entry, LAVDF_REQUIRED)
    file = _string(entry, "file")
    split = _string(entry, "split")
    fps = _positive_number(entry, "fps") if "fps" in entry else DEFAULT_FPS
    duration = _positive_number(entry, "duration")
    n_frames = _count(entry, "video_frames")
    visual_modified = _flag(entry, "modify_video")
    audio_modified = _flag(entry, "modify_audio")
    tolerance = 1.0 / fps
    fake = _segments(entry, "fake_periods", duration, tolerance)
    n_fakes = _count(entry, "n_fakes")
    if n_fakes != len(fake):
        raise _RecordError("n_fakes", f"{n_fakes} but 'fake_periods' has {len(fake)} "
                                      f"segment(s)")
    _check_fake_flag(fake, visual_modified or audio_modified, "fake_periods",
                     "modify_video / modify_audio")
    visual = audio = None
    if "visual_fake_periods" in entry:
        visual = _segments(entry, "visual_fake_periods", duration, tolerance)
        _check_fake_flag(visual, visual_modified, "visual_fake_periods", "modify_video")
    if "audio_fake_periods" in entry:
        audio = _segments(entry, "audio_fake_periods", duration, tolerance)
        _check_fake_flag(audio, audio_modified, "audio_fake_periods", "modify_audio")
    return VideoRecord(file=file, split=split, duration=duration, fps=fps, n_frames=n_frames,
                       label=label_from_flags(visual_modified, audio_modified),
                       fake_segments=fake, visual_fake_segments=visual,
                       audio_fake_segments=audio)


def _parse_avdeepfake1m(entry: dict, default_split: str | None) -> VideoRecord:
    _require(entry, AVDF1M_REQUIRED)
    file = _string(entry, "file")
    if "split" in entry:
        split = _string(entry, "split")
    elif default_split:
        split = default_split
    else:
        raise _RecordError("split", "missing, and the metadata file name is not "
                                    "<split>_metadata.json")
    modify_type = entry["modify_type"]
    flags = AVDF1M_MODIFY_TYPES.get(modify_type) if isinstance(modify_type, str) else None
    if flags is None:
        raise _RecordError("modify_type", f"unknown value {modify_type!r}; expected one of "
                                          f"{list(AVDF1M_MODIFY_TYPES)}")
    visual_modified, audio_modified = flags
    n_frames = _count(entry, "video_frames")
    if n_frames == 0:
        raise _RecordError("video_frames", "must be > 0")
    fps = DEFAULT_FPS
    duration = n_frames / fps
    tolerance = 1.0 / fps
    fake = _segments(entry, "fake_segments", duration, tolerance)
    visual = _segments(entry, "visual_fake_segments", duration, tolerance)
    audio = _segments(entry, "audio_fake_segments", duration, tolerance)
    _check_fake_flag(fake, visual_modified or audio_modified, "fake_segments", "modify_type")
    _check_fake_flag(visual, visual_modified, "visual_fake_segments", "modify_type")
    _check_fake_flag(audio, audio_modified, "audio_fake_segments", "modify_type")
    return VideoRecord(file=file, split=split, duration=duration, fps=fps, n_frames=n_frames,
                       label=label_from_flags(visual_modified, audio_modified),
                       fake_segments=fake, visual_fake_segments=visual,
                       audio_fake_segments=audio)


# ---------------------------------------------------------------- field checks

def _require(entry: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in entry:
            raise _RecordError(key, "missing")


def _string(entry: dict, key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise _RecordError(key, f"expected a non-empty string, got {value!r}")
    return value


def _flag(entry: dict, key: str) -> bool:
    value = entry[key]
    if not isinstance(value, bool):
        raise _RecordError(key, f"expected true or false, got {value!r}")
    return value


def _count(entry: dict, key: str) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _RecordError(key, f"expected a non-negative integer, got {value!r}")
    return value


def _positive_number(entry: dict, key: str) -> float:
    value = entry[key]
    # json.load accepts NaN and Infinity: neither is a duration or a frame rate
    if (isinstance(value, bool) or not isinstance(value, _NUMBER) or not value > 0
            or not math.isfinite(value)):
        raise _RecordError(key, f"expected a finite positive number, got {value!r}")
    return float(value)


def _segments(entry: dict, key: str, duration: float, tolerance: float) -> tuple[Segment, ...]:
    """[[start, end], ...] in seconds -> tuple of (start, end), checked against the duration."""
    value = entry[key]
    if not isinstance(value, list):
        raise _RecordError(key, f"expected a list of [start, end] pairs, got {value!r}")
    out = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2
                or not isinstance(pair[0], _NUMBER) or not isinstance(pair[1], _NUMBER)
                or isinstance(pair[0], bool) or isinstance(pair[1], bool)):
            raise _RecordError(key, f"segment {i}: expected [start, end] in seconds, "
                                    f"got {pair!r}")
        start, end = float(pair[0]), float(pair[1])
        if not (math.isfinite(start) and math.isfinite(end)):
            # NaN compares false with everything, so the checks below would let it through
            raise _RecordError(key, f"segment {i}: expected finite times, got {pair!r}")
        if end < start:
            raise _RecordError(key, f"segment {i}: end {end} is before start {start}")
        if start < -tolerance or end > duration + tolerance:
            raise _RecordError(key, f"segment {i}: [{start}, {end}] lies outside the video "
                                    f"[0, {duration:g}] s (tolerance one frame, "
                                    f"{tolerance:g} s)")
        out.append((start, end))
    return tuple(out)


def _check_fake_flag(segments: tuple[Segment, ...], modified: bool, key: str,
                     flag_name: str) -> None:
    if modified and not segments:
        raise _RecordError(key, f"empty, but {flag_name} says this was modified")
    if not modified and segments:
        raise _RecordError(key, f"has {len(segments)} segment(s), but {flag_name} says "
                                f"this was not modified")


def summarize(records: list[VideoRecord]) -> dict[str, Any]:
    """Counts per split and per label, for logs and `rtdl` messages."""
    from data.labels import LABELS
    return {
        "videos": len(records),
        "splits": dict(Counter(r.split for r in records)),
        "labels": {LABELS[k]: v for k, v in sorted(Counter(r.label for r in records).items())},
        "fake_segments": sum(len(r.fake_segments) for r in records),
    }
