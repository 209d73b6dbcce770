"""Stand-in extractors with the extractor interface of `extractors/build.py`, for fast tests.

Their features are simple functions of the input (per-frame channel means; per-20 ms RMS
and mean), so a test can compute the expected values by hand. `RTDL_TEST_SLEEP_S` (seconds
per visual call) slows them down for the kill-and-resume test.
"""
from __future__ import annotations

import os
import time

import numpy as np


class MeanColourVisual:
    """uint8 frames [N,H,W,3] -> [N,4]: mean R, G, B in [0,1] and the frame index in the video."""

    name = "mean_colour"
    dim = 4

    def __init__(self, tag: str = "v1"):
        self.settings = {"kind": "test_mean_colour", "name": self.name, "dim": self.dim, "tag": tag}
        self.calls = 0
        self._next_index = 0

    def start_video(self) -> None:
        self._next_index = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.calls += 1
        delay = float(os.environ.get("RTDL_TEST_SLEEP_S", "0"))
        if delay:
            time.sleep(delay)
        frames = np.asarray(frames)
        means = frames.reshape(frames.shape[0], -1, 3).mean(axis=1) / 255.0  # [N, 3]
        index = np.arange(self._next_index, self._next_index + frames.shape[0])[:, None]
        self._next_index += frames.shape[0]
        return np.concatenate([means, index], axis=1).astype(np.float32)


class RmsAudio:
    """wave [S] at 16 kHz -> ([M, 2] RMS and mean of each 320-sample hop, centres [M])."""

    name = "rms"
    dim = 2
    sample_rate = 16000
    hop = 320

    def __init__(self):
        self.settings = {"kind": "test_rms", "name": self.name, "dim": self.dim, "hop": self.hop}

    def start_video(self) -> None:
        pass

    def __call__(self, wave: np.ndarray):
        wave = np.asarray(wave, np.float32)
        m = len(wave) // self.hop
        blocks = wave[: m * self.hop].reshape(m, self.hop)
        feats = np.stack([np.sqrt((blocks ** 2).mean(axis=1)), blocks.mean(axis=1)], axis=1)
        centres = (np.arange(m) * self.hop + self.hop / 2) / self.sample_rate
        return feats.astype(np.float32), centres
