"""Weight-free low-level visual descriptor, 256-d per frame (16 statistics x 4x4 regions).

Issue 6: random ResNet-50 features are nearly constant and carry no signal, so offline runs
need a descriptor that responds to the manipulations `rtdl synth` plants without any
learned weights:
- mouth re-rendered out of sync      -> temporal difference in the mouth's regions no
                                        longer follows the audio envelope
- face texture / colour swapped      -> region colour means/stds, chroma change, DCT shape
- face region blurred or blended     -> gradient, Laplacian and high-frequency energy drop
- frozen frames                      -> temporal difference exactly 0

Each frame is resized (bilinear, antialiased) to `size` x `size` ignoring aspect ratio, so
the grid always covers the whole frame, then split into `grid` x `grid` regions. Per region,
in this order (16 values):
  0-2   mean of R, G, B in [0, 1]
  3-5   standard deviation of R, G, B
  6     log mean squared Sobel gradient magnitude of grey (edge energy)
  7     log mean squared Laplacian of grey (blur statistic: falls when blurred)
  8     log mean squared residual of grey minus its 2x down-up-sampled copy (fine texture)
  9     mean |grey_t - grey_{t-1}| (motion; 0 for a repeated frame)
  10    mean |chroma_t - chroma_{t-1}| with chroma = (R - G, B - G) (colour change)
  11-15 low-frequency DCT-II coefficients (0,1), (1,0), (1,1), (0,2), (2,0) of the region's
        grey values pooled to 8x8 (coarse shape/shading, orthonormal scaling)
Feature index = region * 16 + statistic, regions in row-major order (top-left first).
Logs use a 1e-6 floor. The temporal statistics compare with the previous frame of the same
video: state is carried across chunks and reset by `start_video()`; the first frame of a
video compares with itself (0).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from extractors.frame_batches import map_frame_batches

STATS_PER_REGION = 16
_DCT_SIZE = 8
_DCT_COEFFS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))
_GREY = (0.299, 0.587, 0.114)


def _dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix [n,n]: coefficients = D @ x @ D.T."""
    k = torch.arange(n, dtype=torch.float64).view(n, 1)
    i = torch.arange(n, dtype=torch.float64).view(1, n)
    mat = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    mat[0] /= math.sqrt(2.0)
    return mat.float()


def _region_mean(x: torch.Tensor, grid: int) -> torch.Tensor:
    """[N,C,S,S] -> per-region mean [N,grid*grid,C] (regions row-major)."""
    n, c, s, _ = x.shape
    r = s // grid
    x = x.view(n, c, grid, r, grid, r).mean(dim=(3, 5))  # [N,C,grid,grid]
    return x.flatten(2).transpose(1, 2)  # [N,grid*grid,C]


class LowLevelVisualExtractor:
    """uint8 RGB frames [N,H,W,3] -> float32 [N, grid*grid*16] (256 by default)."""

    name = "lowlevel"

    def __init__(self, size: int = 128, grid: int = 4, batch_size: int = 64,
                 device: str | torch.device = "cpu"):
        if grid < 1 or size % grid or size // grid < _DCT_SIZE:
            raise ValueError(f"lowlevel: size {size} must be a multiple of grid {grid} with "
                             f"regions of at least {_DCT_SIZE} pixels")
        self.size = size  # frames are resized to size x size
        self.grid = grid  # regions per side
        self.batch_size = batch_size  # frames per vectorised step
        self.device = torch.device(device)
        self.dim = grid * grid * STATS_PER_REGION
        self._dct = _dct_matrix(_DCT_SIZE).to(self.device)
        self._sobel = torch.tensor([[[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]]],
                                   device=self.device)  # [1,3,3], x-derivative
        self._laplace = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]],
                                     device=self.device).view(1, 1, 3, 3)
        self._previous: torch.Tensor | None = None  # [3,S,S] grey+chroma of the last frame
        self.settings = {
            "kind": "lowlevel", "name": self.name, "dim": self.dim, "pretrained": False,
            "size": size, "grid": grid, "stats_per_region": STATS_PER_REGION,
            "version": 1,  # bump when the statistics change, so old caches are not mixed
        }

    def start_video(self) -> None:
        """Forget the previous frame: temporal statistics restart at the next video."""
        self._previous = None

    def _frame_stats(self, rgb: torch.Tensor) -> torch.Tensor:
        """[N,3,S,S] float RGB in [0,1] -> [N, grid*grid, 16] statistics."""
        n, g = rgb.shape[0], self.grid
        grey = (rgb * torch.tensor(_GREY, device=rgb.device).view(1, 3, 1, 1)).sum(
            1, keepdim=True)  # [N,1,S,S]
        chroma = torch.cat([rgb[:, 0:1] - rgb[:, 1:2], rgb[:, 2:3] - rgb[:, 1:2]], 1)  # [N,2,S,S]

        mean = _region_mean(rgb, g)  # [N,R,3]
        std = (_region_mean(rgb * rgb, g) - mean * mean).clamp_min(0).sqrt()  # [N,R,3]

        padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")  # [N,1,S+2,S+2]
        gx = F.conv2d(padded, self._sobel.view(1, 1, 3, 3))
        gy = F.conv2d(padded, self._sobel.transpose(1, 2).reshape(1, 1, 3, 3))
        edge = _region_mean(gx * gx + gy * gy, g)  # [N,R,1]
        lap = _region_mean(F.conv2d(padded, self._laplace) ** 2, g)  # [N,R,1]
        coarse = F.interpolate(F.avg_pool2d(grey, 2), scale_factor=2, mode="bilinear",
                               align_corners=False)  # [N,1,S,S]
        fine = _region_mean((grey - coarse) ** 2, g)  # [N,R,1]

        # temporal differences against the previous frame (state carried across chunks)
        current = torch.cat([grey, chroma], 1)  # [N,3,S,S]
        previous = current[:1] if self._previous is None else self._previous[None]
        shifted = torch.cat([previous, current[:-1]], 0)  # [N,3,S,S]: frame t-1 for each t
        self._previous = current[-1].clone()
        diff = _region_mean((current - shifted).abs(), g)  # [N,R,3]
        motion = diff[..., 0:1]  # [N,R,1]
        colour_change = diff[..., 1:2] + diff[..., 2:3]  # [N,R,1]

        r = self.size // g
        blocks = grey.view(n, 1, g, r, g, r).permute(0, 2, 4, 1, 3, 5).reshape(n * g * g, 1, r, r)
        pooled = F.adaptive_avg_pool2d(blocks, _DCT_SIZE)[:, 0]  # [N*R,8,8]
        coeffs = self._dct @ pooled @ self._dct.T  # [N*R,8,8]
        dct = torch.stack([coeffs[:, i, j] for i, j in _DCT_COEFFS], -1).view(n, g * g, -1)

        logs = torch.log(torch.cat([edge, lap, fine], -1) + 1e-6)  # [N,R,3]
        return torch.cat([mean, std, logs, motion, colour_change, dct], -1)  # [N,R,16]

    def _batch_features(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [b,H,W,3] (CPU) -> [b,dim] on the extractor's device."""
        rgb = batch.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)  # [b,3,H,W]
        if rgb.shape[-2:] != (self.size, self.size):
            rgb = F.interpolate(rgb, size=(self.size, self.size), mode="bilinear",
                                align_corners=False, antialias=True)  # [b,3,S,S]
        return self._frame_stats(rgb).flatten(1)  # [b,dim]

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 RGB frames [N,H,W,3] (consecutive, one video) -> float32 [N, dim] (numpy)."""
        return map_frame_batches(frames, self.batch_size, self.dim, "lowlevel",
                                 self._batch_features)
