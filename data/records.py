"""One record type for every dataset's metadata, and the 4-class label map.

The label order is part of every checkpoint (see `LABELS`): index 0 is real,
1 visual-only, 2 audio-only, 3 both, the video-level classes of Sec. 3.1 of the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

LABELS: tuple[str, ...] = ("real", "visual_only", "audio_only", "both")
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

Segment = tuple[float, float]  # (start, end) in seconds


def label_from_flags(visual_modified: bool, audio_modified: bool) -> int:
    """4-class label index from the two per-modality 'modified' flags."""
    return int(bool(visual_modified)) + 2 * int(bool(audio_modified))


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
        return self.label != 0
