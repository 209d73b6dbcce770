"""Audio-visual desynchrony: a frame evidence fitted on authentic clips, without labels.

rtdl's addition, not a paper component. The paper's AICL (Sec. 3.3) pulls the two
modalities of an authentic video together and pushes forged ones apart, at the video level;
the localizer never asks, frame by frame, whether the picture still moves with the sound.
Yet many forgeries break exactly that: a re-rendered mouth (lip-sync), a spliced or
re-voiced span, sound played faster or slower, a frozen picture over running speech.

How it works. On authentic training clips only (no forgery label, no gradient), canonical
correlation analysis (CCA) finds K pairs of directions, one in a visual view and one in an
audio view, whose projections correlate as strongly as possible frame by frame. Each view is
the standardised input minus its clip median (the clip's identity removed) together with
its frame-to-frame difference, stacked over a few neighbouring frames so that a small
lag between lips and sound is allowed (`VISUAL_LAGS`, `AUDIO_LAGS`). In an authentic clip
the paired projections u_k, v_k move together (correlation rho_k); where one modality was
replaced they become unrelated. Per frame the agreement is one of two
(`ModelConfig.av_sync_agreement`, one of `model.config.AV_SYNC_AGREEMENTS`), averaged over
`WINDOW` frames; the desynchrony is its negative:
- "product" (the first form): sum_k w_k u_k v_k with w_k = rho_k / (1 - rho_k), the product
  term of a correlated Gaussian pair's log-likelihood ratio alone. A frame where one
  projection moves and the other stays near 0 reads 0, "no evidence either way".
- "likelihood_ratio": the whole log-likelihood ratio of the pair under the fitted
  correlation against independence, sum_k [2 rho_k u_k v_k - rho_k^2 (u_k^2 + v_k^2)] /
  (2 (1 - rho_k^2)) (the constant -1/2 log(1 - rho_k^2) dropped: it shifts every frame
  alike). The square terms make one stream moving while its partner stays still count
  against the frame: a face swapped under running speech, a mouth re-rendered to other
  sounds. Alone it is the better cue on the 2,100-clip benchmark's dev split (frame AUC
  0.802 -> 0.841 visual, 0.744 -> 0.764 audio), but inside the localizer's curves it gains
  nothing and dev's objective fell by 3.9 points in every seed, so the model keeps the
  product (BENCHMARKS.md, "The desynchrony's whole likelihood ratio").
The model maps the desynchrony to its percentile among authentic training
frames (`model/evidence.py`) and the localizer mixes it in where dev says it helps
(`evidence="sync"` in `pipeline/proposals.py`).

Why closed-form CCA and not a trained network: it needs only authentic clips, has no seed
(the same training split gives the same directions), and cannot learn the seen forgery
types' direction, the failure of every trained signal on held-out types in BENCHMARKS.md.
A ridge term (`RIDGE` x the mean variance) keeps the covariances invertible when the views
are wider than the number of authentic frames. Inputs wider than `MAX_INPUT_DIMS` are first
reduced to their leading principal components (of the clip contrast, in authentic clips),
which bounds the fit's cost for the pretrained backbones' features.

Settings, chosen on the dev split of the 2,100-clip benchmark (mean per-video frame AUC of
the forged modality, visual and audio averaged; BENCHMARKS.md, "Audio-visual
desynchrony"): lags, K and the ridge moved the dev AUC by under 0.01 (0.769-0.779 over 3 x 3
x 2 settings); a 9-frame window beat 15 and 25 frames in every setting (0.775 / 0.767 /
0.737 at the values below).
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from model.config import AV_SYNC_AGREEMENTS
from model.layers import KeepsBuffersMissingFromOldCheckpoints

VISUAL_LAGS = (-1, 0, 1)  # visual frames stacked around each frame
AUDIO_LAGS = (-3, -2, -1, 0, 1, 2, 3)  # audio frames stacked around each frame
COMPONENTS = 16  # K canonical pairs kept
RIDGE = 0.1  # added to each covariance's diagonal, times its mean variance
WINDOW = 9  # frames the agreement is averaged over
# wider inputs (TSN 2048-d, wav2vec 2.0 768-d) are first projected on this many principal
# components of their clip contrast in authentic clips, so the lagged views stay a few
# thousand wide (their covariances, eigendecompositions and the fit's memory grow with the
# square and cube of the width); the weight-free features (320 / 64) are used as they are
MAX_INPUT_DIMS = 320


def minus_clip_median(standardised: Tensor) -> Tensor:
    """[T, C] -> [T, C] float64: each frame minus the clip's (lower) median frame."""
    x = standardised.double()
    return x - x.median(dim=0, keepdim=True).values


def sync_view(standardised: Tensor, lags: tuple[int, ...]) -> Tensor:
    """One clip's view [T, C] -> [T, 2 C len(lags)]: the frame minus the clip's median frame
    and its difference from the previous frame (0 for the first), stacked at each lag (frame
    indices clipped to the clip, so the edges repeat)."""
    contrast = minus_clip_median(standardised)
    delta = torch.diff(contrast, dim=0, prepend=contrast[:1])
    both = torch.cat([contrast, delta], dim=1)  # [T, 2C]
    frames = torch.arange(len(both))
    return torch.cat([both[(frames + lag).clamp(0, len(both) - 1)] for lag in lags], dim=1)


def moving_average(values: Tensor, frames: int) -> Tensor:
    """Centred moving average of [T] over an odd number of `frames` (edges average over what
    exists; any T >= 1)."""
    kernel = torch.ones(1, 1, frames, dtype=values.dtype)
    total = torch.nn.functional.conv1d(values[None, None], kernel, padding=frames // 2)[0, 0]
    count = torch.nn.functional.conv1d(torch.ones_like(values)[None, None], kernel,
                                       padding=frames // 2)[0, 0]
    return (total / count)[:len(values)]


def project(x: Tensor, basis: Tensor) -> Tensor:
    """[T, C] on the basis [C, P]; a square basis is the identity and is skipped (exactly x)."""
    return x if basis.shape[0] == basis.shape[1] else x.double() @ basis.double()


def pair_agreement(u: Tensor, v: Tensor, weights: Tensor, rho: Tensor, agreement: str) -> Tensor:
    """Paired canonical projections u, v [n, K] -> per-frame agreement [n] (module
    docstring): "product" weighs u v by `weights` (rho / (1 - rho)); "likelihood_ratio" is
    the pair's Gaussian log-likelihood ratio against independence under correlations `rho`."""
    if agreement == "product":
        return (u * v * weights).sum(dim=1)
    ratio = (2 * rho * u * v - rho * rho * (u * u + v * v)) / (2 * (1 - rho * rho))
    return ratio.sum(dim=1)


def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors / np.sqrt(eigenvalues)) @ vectors.T


class AVSync(KeepsBuffersMissingFromOldCheckpoints):
    """Standardised inputs (visual [B, T, Cv], audio [B, T, Ca], mask [B, T]) -> per-frame
    desynchrony [B, T] (0 on padding, and everywhere until `fit` has run)."""

    def __init__(self, visual_dim: int, audio_dim: int, *, visual_lags: tuple[int, ...] = VISUAL_LAGS,
                 audio_lags: tuple[int, ...] = AUDIO_LAGS, components: int = COMPONENTS,
                 ridge: float = RIDGE, window: int = WINDOW, max_input_dims: int = MAX_INPUT_DIMS,
                 agreement: str = "product"):
        # the keyword settings other than `agreement` are for benchmarks/av_sync_settings.py;
        # the model uses the module's defaults, which checkpoints rely on (they fix the
        # buffers' shapes). `agreement` changes no buffer: it is the model's config.
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"AVSync window: must be an odd number of frames, got {window}")
        if agreement not in AV_SYNC_AGREEMENTS:
            raise ValueError(f"AVSync agreement: expected one of {AV_SYNC_AGREEMENTS}, got {agreement!r}")
        self.agreement = agreement
        self.visual_lags, self.audio_lags = tuple(visual_lags), tuple(audio_lags)
        self.ridge, self.window = float(ridge), int(window)
        kept_v, kept_a = min(visual_dim, max_input_dims), min(audio_dim, max_input_dims)
        width_v = 2 * kept_v * len(self.visual_lags)
        width_a = 2 * kept_a * len(self.audio_lags)
        components = min(components, width_v, width_a)
        # [C, P]: the principal directions the input is projected on (identity: not reduced)
        self.register_buffer("visual_basis", torch.eye(visual_dim)[:, :kept_v].contiguous())
        self.register_buffer("audio_basis", torch.eye(audio_dim)[:, :kept_a].contiguous())
        self.register_buffer("visual_mean", torch.zeros(width_v))
        self.register_buffer("audio_mean", torch.zeros(width_a))
        self.register_buffer("visual_directions", torch.zeros(width_v, components))  # [Wv, K]
        self.register_buffer("audio_directions", torch.zeros(width_a, components))  # [Wa, K]
        self.register_buffer("weights", torch.zeros(components))  # [K] rho / (1 - rho)
        self.register_buffer("correlations", torch.zeros(components))  # [K] rho, for reports
        self.register_buffer("is_set", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _fit_bases(self, read_clips: Callable[[], Iterable[tuple[Tensor, Tensor]]]) -> None:
        """Leading principal directions of each reduced modality's clip contrast (one pass)."""
        reduced = [i for i, basis in enumerate((self.visual_basis, self.audio_basis))
                   if basis.shape[0] != basis.shape[1]]
        if not reduced:
            return
        scatter = {i: 0.0 for i in reduced}
        for clip in read_clips():
            for i in reduced:
                x = minus_clip_median(torch.as_tensor(clip[i])).numpy()
                scatter[i] = scatter[i] + x.T @ x
        for i, basis in ((0, self.visual_basis), (1, self.audio_basis)):
            if i in reduced:
                _, vectors = np.linalg.eigh(scatter[i])  # ascending eigenvalues
                basis.copy_(torch.as_tensor(vectors[:, ::-1][:, :basis.shape[1]].copy()))

    @torch.no_grad()
    def fit(self, read_clips: Callable[[], Iterable[tuple[Tensor, Tensor]]]) -> None:
        """Fit the canonical directions on authentic clips. `read_clips()` yields (visual
        [T, Cv], audio [T, Ca]), the standardised inputs of each clip's valid frames; it is
        called twice when an input is wider than `max_input_dims` (a pass for the principal
        directions first), so it must give the same clips each time."""
        self._fit_bases(read_clips)
        sums = None
        for visual, audio in read_clips():
            x = sync_view(project(torch.as_tensor(visual), self.visual_basis), self.visual_lags).numpy()
            y = sync_view(project(torch.as_tensor(audio), self.audio_basis), self.audio_lags).numpy()
            if sums is None:
                sums = {"n": 0, "x": 0.0, "y": 0.0, "xx": 0.0, "yy": 0.0, "xy": 0.0}
            sums["n"] += len(x)
            sums["x"] = sums["x"] + x.sum(0)
            sums["y"] = sums["y"] + y.sum(0)
            sums["xx"] = sums["xx"] + x.T @ x
            sums["yy"] = sums["yy"] + y.T @ y
            sums["xy"] = sums["xy"] + x.T @ y
        if sums is None or sums["n"] < 2:
            raise ValueError("AVSync.fit: needs authentic clips with at least 2 frames in all")
        n = sums["n"]
        mean_x, mean_y = sums["x"] / n, sums["y"] / n
        cov_xx = sums["xx"] / n - np.outer(mean_x, mean_x)
        cov_yy = sums["yy"] / n - np.outer(mean_y, mean_y)
        cov_xy = sums["xy"] / n - np.outer(mean_x, mean_y)
        for cov in (cov_xx, cov_yy):
            cov[np.diag_indices_from(cov)] += self.ridge * max(float(np.trace(cov)) / len(cov), 1e-6)
        whiten_x, whiten_y = _inverse_sqrt(cov_xx), _inverse_sqrt(cov_yy)
        left, rho, right_t = np.linalg.svd(whiten_x @ cov_xy @ whiten_y)
        k = self.weights.numel()
        rho = np.clip(rho[:k], 0.0, 0.999)
        self.visual_mean.copy_(torch.as_tensor(mean_x))
        self.audio_mean.copy_(torch.as_tensor(mean_y))
        self.visual_directions.copy_(torch.as_tensor(whiten_x @ left[:, :k]))
        self.audio_directions.copy_(torch.as_tensor(whiten_y @ right_t[:k].T))
        self.correlations.copy_(torch.as_tensor(rho))
        self.weights.copy_(torch.as_tensor(rho / (1.0 - rho)))
        self.is_set.fill_(True)

    @torch.no_grad()
    def forward(self, visual: Tensor, audio: Tensor, mask: Tensor) -> Tensor:
        out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        if not bool(self.is_set):
            return out
        # the fitted buffers on the CPU in float64 once per batch, not once per video
        visual_basis, audio_basis = self.visual_basis.cpu(), self.audio_basis.cpu()
        visual_mean, audio_mean = self.visual_mean.cpu().double(), self.audio_mean.cpu().double()
        visual_directions = self.visual_directions.cpu().double()
        audio_directions = self.audio_directions.cpu().double()
        weights = self.weights.cpu().double()
        rho = self.correlations.cpu().double()
        for b, n in enumerate(mask.sum(dim=1).tolist()):  # valid frames are a prefix
            if n == 0:
                continue
            visual_view = sync_view(project(visual[b, :n].cpu(), visual_basis), self.visual_lags)
            audio_view = sync_view(project(audio[b, :n].cpu(), audio_basis), self.audio_lags)
            u = (visual_view - visual_mean) @ visual_directions  # [n, K]
            v = (audio_view - audio_mean) @ audio_directions
            agreement = pair_agreement(u, v, weights, rho, self.agreement)  # [n]
            out[b, :n] = (-moving_average(agreement, self.window)).float().to(mask.device)
        return out
