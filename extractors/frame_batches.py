"""Shared front of the visual extractors: check a chunk of frames, run it in batches.

Both visual extractors (`tsn`, `lowlevel`) take uint8 RGB frames [N,H,W,3] from one
video and return float32 [N,dim]; only what they do to one batch differs, so the
frame check, the batching loop and the empty-chunk case live here once.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def as_frames(frames: np.ndarray | torch.Tensor, extractor_name: str) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] as a tensor (no copy), or an error naming the extractor."""
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"{extractor_name} expects uint8 frames [N,H,W,3], got {frames.dtype} "
                         f"{tuple(frames.shape)}")
    return frames


def map_frame_batches(frames: np.ndarray | torch.Tensor, batch_size: int, dim: int,
                      extractor_name: str,
                      batch_fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """uint8 RGB frames [N,H,W,3] -> float32 [N,dim] (numpy).

    `batch_fn` gets consecutive uint8 CPU slices [b,H,W,3] (b <= batch_size) and returns
    features [b,dim] on any device; `extractor_name` names the caller in the error.
    """
    frames = as_frames(frames, extractor_name)
    outputs = [batch_fn(frames[start:start + batch_size]).float().cpu()  # [b,dim]
               for start in range(0, frames.shape[0], batch_size)]
    if not outputs:
        return np.zeros((0, dim), dtype=np.float32)
    return torch.cat(outputs).numpy()  # [N,dim]
