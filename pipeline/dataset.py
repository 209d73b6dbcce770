"""Torch Dataset over a feature cache and metadata records, and the padding collate.

Each item is one video: visual `[T, Dv]`, audio `[T, Da]` float32 on the shared frame
timeline, and its 4-class label. `pad_collate` pads a list of items to `[B, T, D]` and
builds the bool mask `[B, T]` (True = valid frame).

Choices:
- Training crops are random windows of `max_len` frames. The crop offset of item `i` in
  epoch `e` is drawn from a numpy Generator seeded with `(seed, e, i)`, not from a
  stream shared across items, so it does not depend on the number of DataLoader workers,
  on which rank reads the item, or on whether the run was resumed.
- Evaluation items are whole sequences (`max_len=None`); windowing, when wanted, is the
  caller's job (see `iter_windows`).
- If the visual and audio arrays of a video disagree in length (the cache should align
  them), both are cut to the shorter one rather than padded, so no frame is invented.
- Lazy mode reads `cache.read(key)` per item; the FeatureCache opens its HDF5 handle
  once per process, so this is safe with DataLoader workers. `in_memory=True` reads
  everything up front (progress bar) and never touches the file again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from data.labels import LABELS
from data.records import VideoRecord

def cache_name(cache) -> str:
    """A human name for a FeatureCache in error messages: its path(s), comma-separated."""
    for attr in ("source", "path", "paths", "files"):
        value = getattr(cache, attr, None)
        if value:
            if isinstance(value, (list, tuple)):
                return ", ".join(str(v) for v in value)
            return str(value)
    return repr(cache)


def check_finite_features(cache, key: str, visual: np.ndarray, audio: np.ndarray) -> None:
    """ValueError naming the cache, the video and the modality when its features hold NaN or
    Inf: fed to the model they turn every output of the batch into NaN, far from the cause."""
    for modality, array in (("visual", visual), ("audio", audio)):  # [T, D] each
        finite = np.isfinite(array).all(axis=1)  # [T]
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(f"{cache_name(cache)}: video {key!r}: {modality} features hold NaN "
                             f"or Inf in {len(bad)} of {len(finite)} frames (first: frame "
                             f"{bad[0]}); re-extract it or leave it out of the metadata")


def missing_keys_error(cache, missing: Sequence[str], remedy: str) -> ValueError:
    """The error for metadata videos absent from `cache`: names the cache, the first 5 keys
    and how many more, then `remedy` (what the user can do)."""
    shown = ", ".join(repr(m) for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return ValueError(f"{cache_name(cache)}: {len(missing)} video(s) of the metadata are not in the "
                      f"feature cache: key {shown}{more}; {remedy}")


class FeatureDataset(Dataset):
    """Videos of `records` read from `cache`; random crops of `max_len` when training."""

    def __init__(self, cache, records: Sequence[VideoRecord], *, max_len: int | None = None,
                 seed: int = 0, in_memory: bool = False) -> None:
        self.cache = cache  # FeatureCache (pickles without an open handle)
        self.records = list(records)  # one item per record, in this order
        self.max_len = max_len  # None: whole sequences (evaluation)
        self.seed = seed  # crop randomness, see module docstring
        self.epoch = 0  # set by the trainer before each epoch
        missing = [r.file for r in self.records if r.file not in cache]
        if missing:
            raise missing_keys_error(cache, missing, "run `rtdl extract` for them or pass the cache "
                                                     "shards that hold them")
        for r in self.records:
            if not 0 <= r.label < len(LABELS):
                raise ValueError(f"metadata record {r.file!r}: field 'label' is {r.label}, "
                                 f"expected 0..{len(LABELS) - 1}")
        self._memory: list[tuple[np.ndarray, np.ndarray]] | None = None
        if in_memory:
            self._memory = [self._read(r.file) for r in
                            tqdm(self.records, desc="loading features into memory", unit="video",
                                 leave=False, disable=len(self.records) < 100)]

    def set_epoch(self, epoch: int) -> None:
        """Select the crop offsets of this epoch (call before creating the loader iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        visual, audio = trim_to_shorter(*self.cache.read(key))  # [T, Dv], [T, Da]
        if visual.shape[0] == 0:
            raise ValueError(f"{cache_name(self.cache)}: key {key!r} has zero frames")
        check_finite_features(self.cache, key, visual, audio)
        return visual, audio

    def check_features(self) -> None:
        """Read every video once, so bad features (NaN/Inf, zero frames) stop a run before
        its first step rather than epochs later; a no-op for in-memory sets (checked on load)."""
        if self._memory is not None:
            return
        for record in tqdm(self.records, desc="checking features", unit="video", leave=False,
                           disable=len(self.records) < 100):
            self._read(record.file)

    def video_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole (uncropped) visual [T, Dv] and audio [T, Da] of item `index`."""
        if self._memory is not None:
            return self._memory[index]
        return self._read(self.records[index].file)

    def crop_start(self, index: int, length: int) -> int:
        """First frame of item `index`'s training crop this epoch (0 when no crop)."""
        if self.max_len is None or length <= self.max_len:
            return 0
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return int(rng.integers(0, length - self.max_len + 1))

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        visual, audio = self.video_arrays(index)  # [T, Dv], [T, Da]
        start = self.crop_start(index, visual.shape[0])
        stop = visual.shape[0] if self.max_len is None else start + self.max_len
        return {
            "visual": torch.from_numpy(np.ascontiguousarray(visual[start:stop])),  # [T, Dv]
            "audio": torch.from_numpy(np.ascontiguousarray(audio[start:stop])),  # [T, Da]
            "label": record.label,
            "index": index,
        }


@dataclass
class Batch:
    visual: torch.Tensor  # [B, T, Dv] float32, zero-padded
    audio: torch.Tensor  # [B, T, Da] float32, zero-padded
    mask: torch.Tensor  # [B, T] bool, True = valid frame
    labels: torch.Tensor  # [B] long, index into LABELS
    index: torch.Tensor  # [B] long, position in the dataset's records

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in
                       (self.visual, self.audio, self.mask, self.labels, self.index)))

    def pin_memory(self) -> "Batch":  # called by DataLoader(pin_memory=True)
        return Batch(*(t.pin_memory() for t in
                       (self.visual, self.audio, self.mask, self.labels, self.index)))

    def __len__(self) -> int:
        return self.labels.shape[0]


def trim_to_shorter(visual, audio) -> tuple[np.ndarray, np.ndarray]:
    """float32 visual [T, Dv] and audio [T, Da], both cut to the shorter of the two: the
    cache aligns them, and a disagreement is met by dropping frames, never inventing them."""
    n = min(visual.shape[0], audio.shape[0])
    return np.asarray(visual[:n], np.float32), np.asarray(audio[:n], np.float32)


def pad_sequences(visual: Sequence, audio: Sequence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad per-video visual [t, Dv] and audio [t, Da] (tensors or arrays) to the longest:
    (visual [B, T, Dv], audio [B, T, Da], mask [B, T] bool, True = valid frame)."""
    lengths = [v.shape[0] for v in visual]
    batch, longest = len(lengths), max(lengths)
    dv, da = visual[0].shape[1], audio[0].shape[1]
    padded_visual = torch.zeros(batch, longest, dv)  # [B, T, Dv]
    padded_audio = torch.zeros(batch, longest, da)  # [B, T, Da]
    mask = torch.zeros(batch, longest, dtype=torch.bool)  # [B, T]
    for b, n in enumerate(lengths):
        padded_visual[b, :n] = torch.as_tensor(visual[b])
        padded_audio[b, :n] = torch.as_tensor(audio[b])
        mask[b, :n] = True
    return padded_visual, padded_audio, mask


def pad_collate(items: list[dict]) -> Batch:
    """Pad items to the longest sequence of the batch; mask marks the real frames."""
    visual, audio, mask = pad_sequences([item["visual"] for item in items],
                                        [item["audio"] for item in items])
    labels = torch.tensor([item["label"] for item in items], dtype=torch.long)  # [B]
    index = torch.tensor([item["index"] for item in items], dtype=torch.long)  # [B]
    return Batch(visual, audio, mask, labels, index)


def iter_windows(length: int, window: int) -> Iterator[tuple[int, int]]:
    """(start, stop) frame ranges covering `length` frames with windows of `window` frames.

    Windows do not overlap; the last one is shorter. `window` 0 means one whole window.
    """
    if window <= 0 or length <= window:
        yield 0, length
        return
    for start in range(0, length, window):
        yield start, min(start + window, length)
