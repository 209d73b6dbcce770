"""Weight-free low-level visual descriptor, 320-d per frame (20 statistics x 4x4 regions).

Random ResNet-50 features are nearly constant and carry no signal, so offline runs need a
descriptor that responds to the manipulations `rtdl synth` plants without any learned
weights:
- mouth re-rendered out of sync      -> temporal difference in the mouth's regions no
                                        longer follows the audio envelope
- face texture / colour swapped      -> region colour means/stds, chroma change, DCT shape
- face region blurred or blended     -> gradient, Laplacian and high-frequency energy drop
- frozen frames                      -> temporal difference exactly 0

Each frame is resized (bilinear, antialiased, on the uint8 frame) to `size` x `size`
ignoring aspect ratio, so the grid always covers the whole frame, then split into
`grid` x `grid` regions. Per region, in this order (20 values):
  0-2   mean of R, G, B in [0, 1]
  3-5   standard deviation of R, G, B
  6     log mean squared Sobel gradient magnitude of grey (edge energy)
  7     log mean squared Laplacian of grey (blur statistic: falls when blurred)
  8     log mean squared residual of grey minus its 2x down-up-sampled copy (fine texture)
  9     mean |grey_t - grey_{t-1}| (motion; 0 for a repeated frame)
  10    mean |chroma_t - chroma_{t-1}| with chroma = (R - G, B - G) (colour change)
  11-15 low-frequency DCT-II coefficients (0,1), (1,0), (1,1), (0,2), (2,0) of the region's
        grey values pooled to 8x8 (coarse shape/shading, orthonormal scaling)
  16-17 statistics 7 and 8 minus their median over the frame's regions (local detail
        relative to the frame: a blurred or blended face loses detail against its own
        background, while focus, compression and exposure move every region alike)
  18    log(motion + 1e-3) minus its median over the frame's regions (local against global
        motion: a camera pan or zoom moves every region, a re-rendered mouth one or two)
  19    log(mean motion over the frame + 1e-4), the same in every region (frozen frames
        fall to the floor whatever the camera did)
Statistics 16-19 are there for real footage, where camera motion, exposure and
compression change the absolute statistics of every frame.
Feature index = region * 20 + statistic, regions in row-major order (top-left first).
Logs use a 1e-6 floor; the gradient filters see the frame's border replicated. The
temporal statistics compare with the previous frame of the same video: state is carried
across chunks and reset by `start_video()`; the first frame of a video compares with
itself (0).

Speed: every statistic is computed for the whole batch at once, the filters as shifted
slices rather than single-channel convolutions, the per-pixel maps are written into
buffers kept across batches and averaged per region in one pass, and the resize runs on
uint8 (torch's vectorised antialiasing kernel) before the conversion to float, so the
float work is on `size`-sized frames only. The uint8 resize rounds to whole grey levels:
features differ from a float resize by at most 0.005 (on the log energies). On the CPU the ops run on `threads` intra-op threads (default 1,
see `extractors/threads.py`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from extractors.frame_batches import map_frame_batches
from extractors.threads import intra_op_threads

STATS_PER_REGION = 20
_DCT_SIZE = 8
_DCT_COEFFS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))
_GREY = (0.299, 0.587, 0.114)
VERSION = 2  # of the statistics' definition (2: statistics 16-19 added)
_MAPS = 12  # per-pixel maps averaged per region: RGB, RGB^2, edge, Laplacian, fine, 3 diffs


def _dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix [n,n]: coefficients = D @ x @ D.T."""
    k = torch.arange(n, dtype=torch.float64).view(n, 1)
    i = torch.arange(n, dtype=torch.float64).view(1, n)
    mat = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    mat[0] /= math.sqrt(2.0)
    return mat.float()


def _dct_basis(n: int) -> torch.Tensor:
    """[n*n, len(_DCT_COEFFS)]: a flattened n x n block times this gives the kept coefficients."""
    d = _dct_matrix(n)
    return torch.stack([torch.outer(d[i], d[j]).flatten() for i, j in _DCT_COEFFS], 1)


def _region_mean(x: torch.Tensor, grid: int) -> torch.Tensor:
    """[N,C,S,S] -> per-region mean [N,grid*grid,C] (regions row-major)."""
    n, c, s, _ = x.shape
    r = s // grid
    x = x.reshape(n, c, grid, r, grid, r).mean(dim=(3, 5))  # [N,C,grid,grid]
    return x.flatten(2).transpose(1, 2)  # [N,grid*grid,C]


def _filter_energies(grey: torch.Tensor, out: torch.Tensor) -> None:
    """grey [N,S,S] -> squared Sobel magnitude and squared Laplacian per pixel, written to
    `out` [N,2,S,S].

    3x3 filters written as sums of shifted slices of the border-replicated frame: for one
    input channel this is several times faster than conv2d on the CPU.
    """
    p = F.pad(grey[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]  # [N,S+2,S+2]
    dx = p[:, :, 2:] - p[:, :, :-2]  # [N,S+2,S] horizontal central difference
    dy = p[:, 2:, :] - p[:, :-2, :]  # [N,S,S+2] vertical central difference
    gx = dx[:, :-2] + dx[:, 2:]
    gx.add_(dx[:, 1:-1], alpha=2).square_()  # Sobel x = smooth_y(diff_x), squared
    gy = dy[:, :, :-2] + dy[:, :, 2:]
    gy.add_(dy[:, :, 1:-1], alpha=2).square_()  # Sobel y = smooth_x(diff_y), squared
    torch.add(gx, gy, out=out[:, 0])
    lap = torch.add(p[:, :-2, 1:-1], p[:, 2:, 1:-1], out=out[:, 1])
    lap.add_(p[:, 1:-1, :-2]).add_(p[:, 1:-1, 2:]).add_(p[:, 1:-1, 1:-1], alpha=-4).square_()


class LowLevelVisualExtractor:
    """uint8 RGB frames [N,H,W,3] -> float32 [N, grid*grid*20] (320 by default)."""

    name = "lowlevel"

    def __init__(self, size: int = 128, grid: int = 4, batch_size: int = 64,
                 device: str | torch.device = "cpu", threads: int | None = 1):
        if grid < 1 or size % grid or size // grid < _DCT_SIZE:
            raise ValueError(f"lowlevel: size {size} must be a multiple of grid {grid} with "
                             f"regions of at least {_DCT_SIZE} pixels")
        self.size = size  # frames are resized to size x size
        self.grid = grid  # regions per side
        self.batch_size = batch_size  # frames per vectorised step
        self.device = torch.device(device)
        self.threads = threads  # CPU intra-op threads while extracting (None = torch's setting)
        self.dim = grid * grid * STATS_PER_REGION
        self._dct_basis = _dct_basis(_DCT_SIZE).to(self.device)  # [64,5]
        self._previous: torch.Tensor | None = None  # [3,S,S] grey+chroma of the last frame
        self._maps: torch.Tensor | None = None  # workspace, see _workspace
        self._planes: torch.Tensor | None = None
        self.settings = {
            "kind": "lowlevel", "name": self.name, "dim": self.dim, "pretrained": False,
            "size": size, "grid": grid, "stats_per_region": STATS_PER_REGION,
            "version": VERSION,  # bump when the statistics change, so old caches are not mixed
        }

    def start_video(self) -> None:
        """Forget the previous frame: temporal statistics restart at the next video."""
        self._previous = None

    def _dct_terms(self, grey: torch.Tensor) -> torch.Tensor:
        """grey [N,S,S] -> the kept DCT coefficients of each region pooled to 8x8 [N,R,5]."""
        n, g, r = grey.shape[0], self.grid, self.size // self.grid
        if r % _DCT_SIZE == 0:  # every region's 8x8 cells in one pooling pass over the frame
            cells = F.avg_pool2d(grey[:, None], r // _DCT_SIZE)  # [N,1,8g,8g]
            pooled = cells.view(n, g, _DCT_SIZE, g, _DCT_SIZE).permute(0, 1, 3, 2, 4)
        else:
            blocks = grey.reshape(n, g, r, g, r).permute(0, 1, 3, 2, 4).reshape(n * g * g, 1, r, r)
            pooled = F.adaptive_avg_pool2d(blocks, _DCT_SIZE)  # [N*R,1,8,8]
        return pooled.reshape(n, g * g, _DCT_SIZE * _DCT_SIZE) @ self._dct_basis  # [N,R,5]

    def _workspace(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Buffers reused across batches (allocating them anew for every chunk cost more in
        page faults than the arithmetic): per-pixel maps [n,12,S,S] and grey+chroma
        [n+1,3,S,S] whose slot 0 holds the previous frame."""
        if self._maps is None or self._maps.shape[0] < n:
            s = self.size
            self._maps = torch.empty(n, _MAPS, s, s, device=self.device)
            self._planes = torch.empty(n + 1, 3, s, s, device=self.device)
        return self._maps[:n], self._planes[:n + 1]

    def _frame_stats(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [N,3,S,S] -> [N, grid*grid, 20] statistics."""
        n, g = frames.shape[0], self.grid
        maps, planes = self._workspace(n)
        rgb = maps[:, 0:3].copy_(frames).mul_(1 / 255.0)  # [N,3,S,S] in [0,1]
        torch.mul(rgb, rgb, out=maps[:, 3:6])
        grey = planes[1:, 0]  # [N,S,S]
        torch.mul(rgb[:, 0], _GREY[0], out=grey)
        grey.add_(rgb[:, 1], alpha=_GREY[1]).add_(rgb[:, 2], alpha=_GREY[2])
        torch.sub(rgb[:, 0::2], rgb[:, 1:2], out=planes[1:, 1:3])  # chroma: R - G, B - G

        _filter_energies(grey, out=maps[:, 6:8])
        coarse = F.interpolate(F.avg_pool2d(grey[:, None], 2), scale_factor=2, mode="bilinear",
                               align_corners=False)[:, 0]  # [N,S,S]
        torch.sub(grey, coarse, out=maps[:, 8]).square_()  # fine-texture residual energy

        # temporal differences against the previous frame (state carried across chunks)
        if self._previous is None:
            planes[0].copy_(planes[1])  # a video's first frame compares with itself
        else:
            planes[0].copy_(self._previous)
        torch.sub(planes[1:], planes[:-1], out=maps[:, 9:12]).abs_()
        self._previous = planes[-1].clone()

        region = _region_mean(maps, g)  # [N,R,12]
        mean = region[..., 0:3]
        std = (region[..., 3:6] - mean * mean).clamp_min(0).sqrt()  # [N,R,3]
        logs = torch.log(region[..., 6:9] + 1e-6)  # [N,R,3]: edge, Laplacian, fine
        motion = region[..., 9:10]  # [N,R,1]
        colour_change = region[..., 10:11] + region[..., 11:12]  # [N,R,1]
        dct = self._dct_terms(grey)  # [N,R,5]
        detail = logs[..., 1:3]  # [N,R,2]: Laplacian, fine
        relative_detail = detail - detail.median(dim=1, keepdim=True).values  # [N,R,2]
        log_motion = torch.log(motion + 1e-3)  # [N,R,1]
        relative_motion = log_motion - log_motion.median(dim=1, keepdim=True).values
        global_motion = torch.log(motion.mean(dim=1, keepdim=True) + 1e-4).expand_as(motion)
        return torch.cat([mean, std, logs, motion, colour_change, dct, relative_detail,
                          relative_motion, global_motion], -1)  # [N,R,20]

    def _batch_features(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [b,H,W,3] (CPU) -> [b,dim] on the extractor's device."""
        frames = batch.to(self.device).permute(0, 3, 1, 2)  # [b,3,H,W] uint8, channels-last
        if frames.shape[-2:] != (self.size, self.size):
            frames = F.interpolate(frames, size=(self.size, self.size), mode="bilinear",
                                   align_corners=False, antialias=True)  # [b,3,S,S] uint8
        return self._frame_stats(frames).flatten(1)  # [b,dim]

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 RGB frames [N,H,W,3] (consecutive, one video) -> float32 [N, dim] (numpy)."""
        with intra_op_threads(self.threads, self.device):
            return map_frame_batches(frames, self.batch_size, self.dim, "lowlevel",
                                     self._batch_features)
