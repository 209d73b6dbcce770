"""The HDF5 feature cache: per-video visual and audio features on one shared timeline.

Layout of a cache file
----------------------
- One group per video at the root. Its name is the metadata `file` key with `%` written as
  `%25` and `/` as `%2F` (`"test/000001.mp4"` -> `"test%2F000001.mp4"`). Flat escaped names
  were chosen over nested groups so that listing keys is one `keys()` call instead of a
  recursive walk over 136 k (or 1.1 M) groups, and so a key can never collide with a folder.
- In each group: datasets `visual` `[T, Dv]` and `audio` `[T, Da]` (float16 by default,
  chunked along time) and attributes `fps`, `n_frames`, `duration`, `has_audio`.
- File attributes: `settings` (JSON of the extractor settings; two caches with different
  settings are never mixed), `rtdl_version`, `format_version`, `storage_dtype`,
  `visual_dim`, `audio_dim` (-1 while the file holds no video).

Crash safety (HDF5 is not journaled: a kill -9 while a file is open for writing can leave
it unreadable)
----------------------------------------------------------------------------------------
Nothing is ever written into a file that a reader may open:
1. `CacheWriter` writes completed videos into a *part* file under a temporary name,
   `<out>.parts/part-....h5.tmp`. A video enters the file only whole (both datasets and
   all attributes), and the file gets its final name only after it is closed and fsynced:
   `os.replace` is atomic, so a part file either does not exist or is complete. Parts are
   sealed every `flush_every` videos or `flush_seconds` seconds, whichever comes first, so a
   kill loses at most that much work.
2. `close()` merges the final file and all parts into `<out>.merge-tmp`, fsyncs it and
   renames it over `<out>`, then deletes the parts. A kill during the merge leaves the old
   `<out>` and the parts untouched; a kill after the rename but before the deletion leaves
   parts that duplicate videos already in `<out>` (readers take the first copy; the next
   writer or merge cleans them up).
3. Opening a writer deletes stale `*.tmp` / `*.merge-tmp` files (the only files a kill can
   leave half written), reads the keys of `<out>` and its parts, and `has(key)` reports
   those as done, so a rerun skips them. An advisory `flock` on `<out>.lock` (released by
   the kernel when a process dies, even by kill -9) stops two writers sharing one output;
   the empty lock file stays (deleting it would open a race between two new writers).

Readers (`FeatureCache`) accept the final file, shard files, unmerged parts, or a mix:
a path whose `.parts` folder still holds parts includes them, and a path that does not exist
but has shards (`cache.shard-0-of-4.h5`, ...) reads the shards.

Shards: `shard_path("cache.h5", 1, 4) == "cache.shard-1-of-4.h5"`. The shard tag goes before
the extension (not after, as `cache.h5.shard-1-of-4`) so that shard files still end in
`.h5` and open in any HDF5 tool.
"""
from __future__ import annotations

import errno
import fcntl
import glob
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from data.feature_settings import describe_settings_difference, settings_difference

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_TMP_SUFFIX = ".tmp"
_MERGE_TMP_SUFFIX = ".merge-tmp"
# free space asked for beyond the payload: HDF5 object headers, chunk index, a part's final
# flush (a few kB per video; generous, because running out is what HDF5 handles badly)
FREE_SPACE_SLACK = 1 << 20
_SHARD_RE = re.compile(r"\.shard-(\d+)-of-(\d+)\.h5$")


# ----------------------------------------------------------------------------- keys & paths

def escape_key(key: str) -> str:
    """HDF5 group name for a metadata `file` key (reversible; see the module docstring)."""
    if not key:
        raise ValueError("cache key must be a non-empty string")
    return key.replace("%", "%25").replace("/", "%2F")


def unescape_key(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def parts_dir(path: str | os.PathLike) -> Path:
    """Folder holding the sealed-but-unmerged part files of cache `path`."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def shard_path(path: str | os.PathLike, shard_index: int, num_shards: int) -> Path:
    """`cache.h5` -> `cache.shard-I-of-N.h5` (the file shard I of N writes)."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is not in [0, {num_shards})")
    path = Path(path)
    suffix = path.suffix or ".h5"
    return path.with_name(f"{path.stem if path.suffix else path.name}"
                          f".shard-{shard_index}-of-{num_shards}{suffix}")


def _sealed_parts(path: Path) -> list[Path]:
    folder = parts_dir(path)
    return sorted(folder.glob("part-*.h5")) if folder.is_dir() else []


def _shards_of(path: Path) -> list[Path]:
    stem = path.stem if path.suffix else path.name
    found = sorted(path.parent.glob(f"{glob.escape(stem)}.shard-*-of-*.h5"))
    return [p for p in found if _SHARD_RE.search(p.name)]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_rename(tmp: Path, final: Path) -> None:
    _fsync_path(tmp)
    os.replace(tmp, final)
    _fsync_path(final.parent)  # make the rename itself durable


def _settings_json(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def _check_same_settings(first_file: Path, first: dict, other_file: Path, other: dict) -> None:
    diff = settings_difference(first, other)
    if diff:
        raise ValueError(
            f"refusing to mix feature caches made with different extractor settings: "
            f"{first_file} and {other_file} differ in {diff} "
            f"({describe_settings_difference(first, other)})")


def _open_read(path: Path) -> h5py.File:
    # default HDF5 locking: mixing locking flags on one file within a process is an error,
    # and users open caches with plain h5py.File(path, "r") too. On file systems without
    # locks (some NFS/Lustre), set HDF5_USE_FILE_LOCKING=FALSE.
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise OSError(f"{path}: cannot open as an HDF5 feature cache ({err})") from err


def _read_file_settings(handle: h5py.File, path: Path) -> dict:
    if "settings" not in handle.attrs:
        raise ValueError(f"{path}: not an rtdl feature cache (no 'settings' attribute)")
    return json.loads(handle.attrs["settings"])


def _init_file_attrs(handle: h5py.File, settings: dict, dtype: str,
                     visual_dim: int = -1, audio_dim: int = -1) -> None:
    from data.version import __version__

    handle.attrs["settings"] = _settings_json(settings)
    handle.attrs["rtdl_version"] = __version__
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["storage_dtype"] = dtype
    handle.attrs["visual_dim"] = visual_dim
    handle.attrs["audio_dim"] = audio_dim


# ----------------------------------------------------------------------------- writer

class CacheWriter:
    """Crash-safe, resumable writer of one cache file (see the module docstring).

    Use as a context manager; `has(key)` is True for videos already complete on disk or
    written by this writer. The end of the `with` block seals the last part and merges
    everything into `path` (on an exception it only seals, so a crash stays cheap).
    """

    def __init__(self, path: str | os.PathLike, settings: dict, *, dtype: str = "float16",
                 flush_every: int = 16, flush_seconds: float = 60.0, chunk_rows: int = 256):
        self.path = Path(path)
        self.settings = dict(settings)  # extractor settings, stored as JSON in every file
        self.dtype = np.dtype(dtype).name  # storage dtype; readers always return float32
        if self.dtype not in ("float16", "float32", "float64"):
            raise ValueError(f"cache dtype must be float16, float32 or float64, got {dtype!r}")
        self.flush_every = max(1, int(flush_every))  # seal a part after this many videos
        self.flush_seconds = float(flush_seconds)  # ... or after this many seconds
        self.chunk_rows = int(chunk_rows)  # HDF5 chunk length along time
        self._parts_dir = parts_dir(self.path)
        self._part: h5py.File | None = None
        self._part_tmp: Path | None = None
        self._part_count = 0
        self._part_opened = 0.0
        self._part_keys: list[str] = []  # videos in the open part
        self._dims: tuple[int, int] | None = None
        self._lock_file = None
        self._closed = False

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._remove_stale_temporaries()
        self._done: set[str] = self._scan_existing()

    # -- setup
    def _acquire_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_file = open(lock_path, "a+")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise RuntimeError(f"{self.path}: another process is writing this cache "
                               f"(lock {lock_path} is held)") from None

    def _remove_stale_temporaries(self) -> None:
        stale = list(self.path.parent.glob(glob.escape(self.path.name) + _MERGE_TMP_SUFFIX + "*"))
        if self._parts_dir.is_dir():
            stale += list(self._parts_dir.glob("*" + _TMP_SUFFIX))
        for tmp in stale:
            log.info("removing %s, left half written by an interrupted job", tmp)
            tmp.unlink(missing_ok=True)

    def _scan_existing(self) -> set[str]:
        done: set[str] = set()
        sources = ([self.path] if self.path.exists() else []) + _sealed_parts(self.path)
        for source in sources:
            with _open_read(source) as handle:
                _check_same_settings(source, _read_file_settings(handle, source),
                                     Path(f"{self.path} (this job)"), self.settings)
                dims = (int(handle.attrs.get("visual_dim", -1)), int(handle.attrs.get("audio_dim", -1)))
                if dims[0] >= 0:
                    self._dims = dims
                done.update(unescape_key(name) for name in handle.keys())
        if done:
            log.info("%s: %d videos already complete, they will be skipped", self.path, len(done))
        return done

    # -- public API
    def has(self, key: str) -> bool:
        """True when video `key` is completely written (on disk or in the open part)."""
        return key in self._done

    def keys(self) -> list[str]:
        return sorted(self._done)

    def __len__(self) -> int:
        return len(self._done)

    def write(self, key: str, visual: np.ndarray, audio: np.ndarray, *, fps: float,
              duration: float, has_audio: bool) -> None:
        """Add one complete video: visual [T, Dv], audio [T, Da] on the same frame timeline."""
        if self._closed:
            raise RuntimeError(f"{self.path}: write() after close()")
        visual = np.asarray(visual)
        audio = np.asarray(audio)
        if visual.ndim != 2 or audio.ndim != 2:
            raise ValueError(f"{key}: visual and audio must be 2-D [T, D], got shapes "
                             f"{visual.shape} and {audio.shape}")
        if visual.shape[0] != audio.shape[0] or visual.shape[0] == 0:
            raise ValueError(f"{key}: visual and audio must share a non-zero frame count, got "
                             f"{visual.shape[0]} and {audio.shape[0]}")
        dims = (int(visual.shape[1]), int(audio.shape[1]))
        if self._dims is not None and dims != self._dims:
            raise ValueError(f"{key}: feature dims {dims} differ from the cache's {self._dims}")
        if key in self._done:
            raise ValueError(f"{key}: already in {self.path}; check has(key) before writing")
        self._dims = dims
        itemsize = np.dtype(self.dtype).itemsize
        self._check_free_space((visual.size + audio.size) * itemsize)

        part = self._open_part()
        try:
            group = part.create_group(escape_key(key))
            n_frames = visual.shape[0]
            rows = min(n_frames, self.chunk_rows)
            group.create_dataset("visual", data=visual.astype(self.dtype, copy=False),
                                 chunks=(rows, dims[0]))
            group.create_dataset("audio", data=audio.astype(self.dtype, copy=False),
                                 chunks=(rows, dims[1]))
            group.attrs["fps"] = float(fps)
            group.attrs["n_frames"] = int(n_frames)
            group.attrs["duration"] = float(duration)
            group.attrs["has_audio"] = bool(has_audio)
            part.attrs["visual_dim"], part.attrs["audio_dim"] = dims
        except BaseException:
            self._discard_part()  # it may hold half of this video: never seal it
            raise
        self._done.add(key)
        self._part_keys.append(key)
        self._part_count += 1
        if (self._part_count >= self.flush_every
                or time.monotonic() - self._part_opened >= self.flush_seconds):
            self.flush()

    def _check_free_space(self, payload: int) -> None:
        """OSError(ENOSPC) naming the folder before a write that would not fit.

        HDF5 handles a full disk badly: every failed write prints a traceback from a
        destructor, and closing the damaged file crashed the interpreter (rc 139). So the
        space for the video, plus slack for HDF5 metadata and the part's final flush, is
        asked for up front.
        """
        needed = payload + FREE_SPACE_SLACK
        free = shutil.disk_usage(self._parts_dir if self._parts_dir.is_dir()
                                 else self.path.parent).free
        if free < needed:
            raise OSError(errno.ENOSPC, f"no space left on device: {free / 2**20:.1f} MiB free, "
                                        f"the next video needs {needed / 2**20:.1f} MiB; free some "
                                        f"and rerun, finished videos are kept", str(self.path.parent))

    def _discard_part(self) -> None:
        """Drop the open part and the videos in it (a rerun extracts them again)."""
        part, tmp, self._part, self._part_tmp, self._part_count = (self._part, self._part_tmp,
                                                                   None, None, 0)
        try:
            part.close()
        except Exception:  # noqa: BLE001 - the part is thrown away; its close may fail too
            log.debug("closing the discarded part %s failed", tmp, exc_info=True)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        self._done.difference_update(self._part_keys)
        self._part_keys = []

    def flush(self) -> None:
        """Seal the open part: close it, fsync it, and give it its final name atomically."""
        if self._part is None:
            return
        try:
            self._part.close()
        except BaseException:
            self._discard_part()
            raise
        final = self._part_tmp.with_name(self._part_tmp.name[: -len(_TMP_SUFFIX)])
        _atomic_rename(self._part_tmp, final)
        log.debug("sealed %s (%d videos)", final, self._part_count)
        self._part, self._part_tmp, self._part_count, self._part_keys = None, None, 0, []

    def close(self, merge: bool = True) -> None:
        """Seal the last part; with `merge`, fold all parts into `path` (atomically)."""
        if self._closed:
            return
        try:
            self.flush()
            if merge:
                self._merge_parts()
        finally:
            self._closed = True
            if self._lock_file is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(merge=exc_type is None)

    # -- internals
    def _open_part(self) -> h5py.File:
        if self._part is None:
            self._parts_dir.mkdir(parents=True, exist_ok=True)
            # time-ordered, unique names: sorting parts gives write order
            name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.h5{_TMP_SUFFIX}"
            self._part_tmp = self._parts_dir / name
            self._part = h5py.File(self._part_tmp, "w", locking=False)
            dims = self._dims or (-1, -1)
            _init_file_attrs(self._part, self.settings, self.dtype, *dims)
            self._part_opened = time.monotonic()
        return self._part

    def _merge_parts(self) -> None:
        parts = _sealed_parts(self.path)
        if not parts and self.path.exists():
            return
        sources = ([self.path] if self.path.exists() else []) + parts
        if sources:
            merge_caches(sources, self.path, overwrite=True)
        else:  # nothing written at all: still leave a valid, empty cache with the settings
            tmp = self.path.with_name(self.path.name + _MERGE_TMP_SUFFIX)
            with h5py.File(tmp, "w", locking=False) as handle:
                _init_file_attrs(handle, self.settings, self.dtype)
            _atomic_rename(tmp, self.path)
        for part in parts:
            part.unlink(missing_ok=True)
        try:
            self._parts_dir.rmdir()
        except OSError:
            pass


# ----------------------------------------------------------------------------- reader

def _resolve_sources(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    else:
        items = list(source)
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"{text}: no feature cache file matches this pattern")
            for match in matches:
                files += [Path(match)] + _sealed_parts(Path(match))
            continue
        path = Path(text)
        parts = _sealed_parts(path)
        if path.exists():
            files += [path] + parts
        elif parts:
            files += parts
        elif _shards_of(path):
            shards = _shards_of(path)
            _warn_missing_shards(path, shards)
            for shard in shards:
                files += ([shard] if shard.exists() else []) + _sealed_parts(shard)
        else:
            raise FileNotFoundError(f"{path}: no feature cache here (no file, no unmerged parts, "
                                    f"no shard files)")
    # de-duplicate, keep order
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def _warn_missing_shards(path: Path, shards: list[Path]) -> None:
    counts = {int(_SHARD_RE.search(p.name).group(2)) for p in shards}
    for num in counts:
        present = {int(_SHARD_RE.search(p.name).group(1)) for p in shards
                   if int(_SHARD_RE.search(p.name).group(2)) == num}
        missing = sorted(set(range(num)) - present)
        if missing:
            log.warning("%s: shard(s) %s of %d are missing; reading the others", path, missing, num)


class FeatureCache:
    """Read-only view of one or more cache files as one cache.

    `source`: one `.h5` path (its unmerged parts and, if it does not exist, its shards are
    included), a glob pattern, or a list of those. All files must carry the same extractor
    settings. A video present in several files is read from the first one (duplicates only
    arise from an interrupted merge and hold the same features).

    HDF5 handles open lazily and per process, so the object pickles into DataLoader workers.
    """

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike]):
        self.files: list[Path] = _resolve_sources(source)
        if not self.files:
            raise FileNotFoundError(f"{source}: no feature cache files")
        self.settings: dict = {}
        self.visual_dim: int | None = None
        self.audio_dim: int | None = None
        self._index: dict[str, tuple[int, str]] = {}  # key -> (file index, group name)
        first_file: Path | None = None
        for i, path in enumerate(self.files):
            with _open_read(path) as handle:
                settings = _read_file_settings(handle, path)
                if first_file is None:
                    first_file, self.settings = path, settings
                else:
                    _check_same_settings(first_file, self.settings, path, settings)
                vdim, adim = int(handle.attrs.get("visual_dim", -1)), int(handle.attrs.get("audio_dim", -1))
                if vdim >= 0:
                    if self.visual_dim is not None and (vdim, adim) != (self.visual_dim, self.audio_dim):
                        raise ValueError(f"{path}: feature dims ({vdim}, {adim}) differ from "
                                         f"{self.visual_dim, self.audio_dim} in {first_file}")
                    self.visual_dim, self.audio_dim = vdim, adim
                for name in handle.keys():
                    self._index.setdefault(unescape_key(name), (i, name))
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    # -- lazy per-process handles
    def _handle(self, file_index: int) -> h5py.File:
        if self._pid != os.getpid():  # forked into a worker: never share the parent's handles
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(file_index)
        if handle is None:
            handle = self._handles[file_index] = _open_read(self.files[file_index])
        return handle

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- mapping-like API
    def keys(self) -> list[str]:
        return sorted(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def _group(self, key: str) -> h5py.Group:
        try:
            file_index, name = self._index[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in the feature cache {self.files[0]}"
                           f"{' (and %d more files)' % (len(self.files) - 1) if len(self.files) > 1 else ''}") from None
        return self._handle(file_index)[name]

    def read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(visual float32 [T, Dv], audio float32 [T, Da]) of video `key`."""
        group = self._group(key)
        return (group["visual"][()].astype(np.float32, copy=False),
                group["audio"][()].astype(np.float32, copy=False))

    def info(self, key: str) -> dict:
        """dict(fps, n_frames, duration, has_audio) of video `key`."""
        attrs = self._group(key).attrs
        return {"fps": float(attrs["fps"]), "n_frames": int(attrs["n_frames"]),
                "duration": float(attrs["duration"]), "has_audio": bool(attrs["has_audio"])}


# ----------------------------------------------------------------------------- merge

def merge_caches(sources: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
                 *, overwrite: bool = False) -> Path:
    """Copy every video of `sources` (files, shards, parts, globs) into one file `out`.

    Refuses sources with different settings. Written to a temporary name and renamed, so
    `out` is never half written; `out` may itself be one of the sources.
    """
    out = Path(out)
    cache = FeatureCache(sources)
    in_sources = any(out.exists() and f.exists() and f.samefile(out) for f in cache.files)
    if out.exists() and not (overwrite or in_sources):
        raise FileExistsError(f"{out} exists; choose another --out or remove it first")
    storage_dtype = "float16"
    with _open_read(cache.files[0]) as first:
        storage_dtype = str(first.attrs.get("storage_dtype", storage_dtype))
    tmp = out.with_name(f"{out.name}{_MERGE_TMP_SUFFIX}-{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    needed = sum(f.stat().st_size for f in cache.files) + FREE_SPACE_SLACK  # copies every source
    free = shutil.disk_usage(out.parent).free
    if free < needed:
        cache.close()
        raise OSError(errno.ENOSPC, f"no space left on device to merge into {out.name}: "
                                    f"{free / 2**20:.1f} MiB free, {needed / 2**20:.1f} MiB needed; "
                                    f"the sources are untouched", str(out.parent))
    try:
        with h5py.File(tmp, "w", locking=False) as dst:
            _init_file_attrs(dst, cache.settings, storage_dtype,
                             cache.visual_dim if cache.visual_dim is not None else -1,
                             cache.audio_dim if cache.audio_dim is not None else -1)
            for key in cache.keys():
                file_index, name = cache._index[key]
                src = cache._handle(file_index)
                src.copy(src[name], dst, name=name)
        cache.close()
        _atomic_rename(tmp, out)
    except BaseException:
        cache.close()
        tmp.unlink(missing_ok=True)
        raise
    log.info("merged %d videos from %d file(s) into %s", len(cache), len(cache.files), out)
    return out
