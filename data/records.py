"""One record type for every dataset's metadata (labels laid out as in `data/labels.py`)."""
from __future__ import annotations

from dataclasses import dataclass

from data.labels import LABELS, REAL

Segment = tuple[float, float]  # (start, end) in seconds


@dataclass(frozen=True)
class VideoRecord:
    file: str  # the dataset's own key, e.g. "test/000001.mp4"; also the cache key
    split: str  # "train", "dev", "test", "val", "test_unseen", ...
    duration: float  # seconds
    fps: float  # frames per second of the video stream
    n_frames: int  # video frame count
    label: int  # index into LABELS
    fake_segments: tuple[Segment, ...]  # all forged intervals, any modality
    # per-modality intervals when the dataset gives them (AV-Deepfake1M, rtdl synth);
    # None when it does not (LAV-DF gives one list per video)
    visual_fake_segments: tuple[Segment, ...] | None = None
    audio_fake_segments: tuple[Segment, ...] | None = None

    @property
    def label_name(self) -> str:
        return LABELS[self.label]

    @property
    def is_fake(self) -> bool:
        return self.label != REAL
