"""Spectral detail: is a frame's harmonic fine structure what its envelope predicts?

rtdl's addition, not a paper component. On rtdl's benchmark the localizer's audio evidence
missed one seen forgery almost entirely: a span whose magnitude spectrum was smoothed over
frequency (a vocoder-like loss of detail) reads 0.60 frame AUC in the desynchrony and
0.67 in the learned deviation (BENCHMARKS.md, "Spectral detail"). No label-free cue on the
log-mel frames as a whole marks it: a Gaussian of authentic frames finds smoothed frames
too *typical* (section "Untrained audio cues, per frame"). What smoothing removes is the
ripple across neighbouring mel bands that the harmonics of a voice draw; how much ripple a
frame should have depends on what is being said (silence, a vowel, a fricative), which the
smooth spectral envelope tells.

How it works, per frame of log-mel audio (`extractors/logmel.py`; raw, not standardised):
- detail: log of the mean squared second difference across the bands `BANDS` (a share of
  the mel bands: 10-40 of 64, about 0.37-2.7 kHz, where voiced harmonics are resolved);
- envelope: the first `ENVELOPE_TERMS` coefficients of the frame's DCT-II over all its mel
  bands (the mel cepstrum: the smooth shape of the spectrum, not its ripple);
- on authentic training clips only (no forgery label, no gradient), a least-squares line
  from envelope to detail; a frame's residual over the median absolute residual says how
  much more or less detail it has than frames of its kind in authentic footage;
- its absolute value, so too little detail (smoothing) and too much (a splice's or a
  resynthesis's artefacts) both count and nothing seen in training can set a direction;
  then a running median over `WINDOW` frames against single-frame noise.
The model maps it to its percentile among authentic training frames (`model/evidence.py`)
and the localizer may take, in the audio curve, the larger of it and the desynchrony,
squared so that it is a percentile again (`evidence="sync_or_spectral_detail"` in
`pipeline/proposals.py`), chosen on dev.

Only for log-mel audio: it reads the bands' order along frequency, which other features
(wav2vec 2.0) have not. The trainer fits it when the cache's audio features are log-mel
(`fit_spectral_detail` in `model/rtdeeploc.py`); otherwise, and in checkpoints written
before it, it stays unset and gives zeros, and the tuning leaves its evidence out.

Settings, chosen on the dev split of the 2,100-clip benchmark alone
(`benchmarks/spectral_detail_settings.py`; BENCHMARKS.md, "Spectral detail"): bands 10-40,
12 envelope terms and a 15-frame median were the best of 48 settings on dev's audio frames
(frame AUC 0.685, spectral smoothing 0.908; with 8 or more terms all lay within
0.645-0.685). Alone it marks neither splice nor revoice (about 0.5): the desynchrony does.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from model.deviation_scorer import masked_moving_median
from model.layers import KeepsBuffersMissingFromOldCheckpoints

BANDS = (10 / 64, 40 / 64)  # the share of the mel bands whose ripple is measured
ENVELOPE_TERMS = 12  # mel-cepstral coefficients that describe the envelope
WINDOW = 15  # frames of the running median
FLOOR = 1e-6  # inside the log: a perfectly flat frame has finite detail


def dct_matrix(bands: int, terms: int) -> Tensor:
    """[bands, terms] float64: x [.., bands] @ it = the first `terms` DCT-II coefficients of x
    with orthonormal scaling (as scipy.fft.dct(x, norm="ortho"))."""
    n = torch.arange(bands, dtype=torch.float64)
    k = torch.arange(terms, dtype=torch.float64)
    basis = torch.cos(math.pi * k[None, :] * (2 * n[:, None] + 1) / (2 * bands)) * math.sqrt(2 / bands)
    basis[:, 0] /= math.sqrt(2)
    return basis


def band_bounds(n_mels: int, bands: tuple[float, float] = BANDS) -> tuple[int, int]:
    """The first and one past the last mel band whose ripple is measured."""
    return round(n_mels * bands[0]), round(n_mels * bands[1])


def band_range(n_mels: int, bands: tuple[float, float] = BANDS) -> tuple[int, int]:
    """`band_bounds`, checked: the second difference across bands needs at least 3."""
    low, high = band_bounds(n_mels, bands)
    if high - low < 3:
        raise ValueError(f"SpectralDetail: {n_mels} mel bands leave {high - low} in "
                         f"{bands}; the second difference needs 3")
    return low, high


def applies_to(audio_settings: dict) -> bool:
    """Whether audio features with these extractor settings (a cache's `settings["audio"]`)
    are log-mel bands with enough bands in `BANDS` for the spectral detail."""
    if audio_settings.get("kind") != "logmel":
        return False
    low, high = band_bounds(int(audio_settings.get("n_mels", 0)))
    return high - low >= 3


class SpectralDetail(KeepsBuffersMissingFromOldCheckpoints):
    """Raw log-mel audio [B, T, Ca] (the first `n_mels` dims are the bands, low to high)
    and mask [B, T] -> per-frame atypicality of the spectral detail [B, T] (0 on padding,
    and everywhere until `fit` has run)."""

    def __init__(self, *, bands: tuple[float, float] = BANDS, envelope_terms: int = ENVELOPE_TERMS,
                 window: int = WINDOW):
        # the keyword settings are for benchmarks/spectral_detail_settings.py; the model uses
        # the module's defaults, which checkpoints rely on (they fix the buffers' shapes)
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"SpectralDetail window: must be an odd number of frames, got {window}")
        self.bands, self.window = tuple(bands), int(window)
        # envelope coefficients and an intercept -> expected detail
        self.register_buffer("coefficients", torch.zeros(envelope_terms + 1, dtype=torch.float64))
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))  # median |residual|
        self.register_buffer("n_mels", torch.zeros((), dtype=torch.long))  # bands the fit saw
        self.register_buffer("is_set", torch.zeros((), dtype=torch.bool))

    def _measure(self, n_mels: int) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """For `n_mels` bands: one clip's log-mel [T, >= n_mels] (on the CPU) -> (detail [T],
        design [T, terms + 1]) float64; the band range and the DCT basis are made once."""
        low, high = band_range(n_mels, self.bands)
        basis = dct_matrix(n_mels, self.coefficients.numel() - 1)

        def measure(audio: Tensor) -> tuple[Tensor, Tensor]:
            bands = audio[:, :n_mels].double()
            ripple = bands[:, low + 2:high] - 2 * bands[:, low + 1:high - 1] + bands[:, low:high - 2]
            detail = torch.log(ripple.square().mean(dim=1) + FLOOR)
            return detail, torch.cat([bands @ basis, torch.ones_like(detail)[:, None]], dim=1)

        return measure

    @torch.no_grad()
    def fit(self, read_audio: Callable[[], Iterable[Tensor]], n_mels: int) -> None:
        """Fit the envelope -> detail line on authentic clips: `read_audio()` yields each
        clip's raw log-mel frames [T, >= n_mels] (called once)."""
        measure = self._measure(n_mels)
        designs, details = [], []
        for audio in read_audio():
            detail, design = measure(torch.as_tensor(np.asarray(audio)))
            details.append(detail)
            designs.append(design)
        if not details or sum(len(d) for d in details) <= self.coefficients.numel():
            raise ValueError("SpectralDetail.fit: needs authentic clips with more frames than "
                             f"{self.coefficients.numel()} coefficients")
        x, y = torch.cat(designs), torch.cat(details)
        # a small ridge keeps the normal equations solvable when a coefficient never varies
        gram = x.T @ x + 1e-3 * torch.eye(x.shape[1], dtype=x.dtype)
        coefficients = torch.linalg.solve(gram, x.T @ y)
        residual = y - x @ coefficients
        self.coefficients.copy_(coefficients)
        self.scale.copy_(residual.abs().median().clamp_min(1e-6))
        self.n_mels.fill_(n_mels)
        self.is_set.fill_(True)

    @torch.no_grad()
    def forward(self, audio: Tensor, mask: Tensor) -> Tensor:
        out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        if not bool(self.is_set):
            return out
        measure = self._measure(int(self.n_mels))
        coefficients, scale = self.coefficients.cpu(), self.scale.cpu()
        for b, n in enumerate(mask.sum(dim=1).tolist()):  # valid frames are a prefix
            if n == 0:
                continue
            detail, design = measure(audio[b, :n].cpu())
            atypical = ((detail - design @ coefficients) / scale).abs()
            valid = torch.ones(1, n, dtype=torch.bool)
            smoothed = masked_moving_median(atypical[None, :, None], valid, self.window)[0, :, 0]
            out[b, :n] = smoothed.float().to(mask.device)
        return out
