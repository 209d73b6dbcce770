"""Weight-free audio features: log-mel spectrogram frames with their centre times.

The LAV-DF baseline's audio input, and the offline fallback when no wav2vec 2.0 weights
can be had: unlike random-initialised wav2vec 2.0 features, log-mel frames carry signal
(BENCHMARKS.md, "Weight-free features against random backbones").

Choices: 64 mel bands, 25 ms Hann window (400 samples), 10 ms hop (160 samples) at 16 kHz,
power spectrum, HTK mel scale from 0 Hz to 8 kHz, natural log with a 1e-6 floor. Frames are
not centre-padded (`center=False`): frame j covers samples [160 j, 160 j + 400), so its centre
is (160 j + 200) / 16000 s and no frame mixes in reflected padding. Waves shorter than one
window are zero-padded to 400 samples (one frame). No per-clip normalisation: absolute
level and spectral tilt are evidence of splices, and the model normalises its inputs.
With `voice=True` (the extractor name `logmel_voice`) each frame also carries 14 voice
descriptors (pitch, voicing, cepstral envelope; `extractors/voice.py`) after the 64 bands:
a change of speaker shows in them directly, where log-mel mixes it with what is being said.
They are opt-in: on rtdl synth they raise what a frame-supervised probe gets from seen
audio forgeries (0.67 -> 0.73 frame AUC) but the weakly-supervised model takes none of it,
held-out time stretch gets worse and the dev objective ties (BENCHMARKS.md, "Real words in
the synth"). Caches from before record no `voice` and were extracted without them.
On the CPU it runs on `threads` intra-op threads (default 1, see `extractors/threads.py`).
"""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

from extractors.threads import intra_op_threads
from extractors.voice import VOICE_DIM, voice_descriptors


class LogMelAudioExtractor:
    """float32 wave [S] at 16 kHz -> (log-mel float32 [M, n_mels], centre times float64 [M])."""

    name = "logmel"
    sample_rate = 16000

    def __init__(self, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0,
                 f_min: float = 0.0, f_max: float = 8000.0, voice: bool = False,
                 device: str | torch.device = "cpu", threads: int | None = 1):
        self.device = torch.device(device)
        self.threads = threads  # CPU intra-op threads while extracting (None = torch's setting)
        self.win_length = int(round(win_ms * self.sample_rate / 1000))  # 400 samples
        self.hop_length = int(round(hop_ms * self.sample_rate / 1000))  # 160 samples
        if self.win_length < 1 or self.hop_length < 1 or n_mels < 1:
            raise ValueError(f"logmel needs positive n_mels/win_ms/hop_ms, got {n_mels}, "
                             f"{win_ms}, {hop_ms}")
        self.voice = voice  # append the voice descriptors of extractors/voice.py
        self.name = "logmel_voice" if voice else "logmel"  # as `--audio-model` names it
        self.dim = n_mels + (VOICE_DIM if voice else 0)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=self.win_length, win_length=self.win_length,
            hop_length=self.hop_length, f_min=f_min, f_max=f_max, n_mels=n_mels, power=2.0,
            center=False, mel_scale="htk").to(self.device)
        self.settings = {
            "kind": "logmel", "name": self.name, "dim": self.dim, "n_mels": n_mels,
            "voice": voice, "pretrained": False,
            "sample_rate": self.sample_rate, "win_ms": win_ms, "hop_ms": hop_ms,
            "f_min": f_min, "f_max": f_max, "frame_rate_hz": self.sample_rate / self.hop_length,
        }

    def start_video(self) -> None:
        """Each call is one whole clip: nothing to reset (kept for the extractor interface)."""

    @torch.inference_mode()
    def __call__(self, wave: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """float32 wave [S] -> (features float32 [M, n_mels], centre times float64 [M])."""
        with intra_op_threads(self.threads, self.device):
            return self._extract(wave)

    def _extract(self, wave: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        wave = torch.as_tensor(wave, dtype=torch.float32).to(self.device)
        if wave.ndim != 1:
            raise ValueError(f"logmel expects a mono wave [S], got shape {tuple(wave.shape)}")
        if wave.shape[0] < self.win_length:
            wave = torch.nn.functional.pad(wave, (0, self.win_length - wave.shape[0]))
        power = self.mel(wave)  # [n_mels, M]
        features = torch.log(power + 1e-6).T.contiguous()  # [M, n_mels]
        if self.voice:
            voice = voice_descriptors(wave, self.hop_length, self.win_length // 2, features.shape[0])
            features = torch.cat([features, voice.to(features.dtype)], dim=1)  # [M, dim]
        index = np.arange(features.shape[0], dtype=np.float64)
        centres = (index * self.hop_length + self.win_length / 2) / self.sample_rate  # [M]
        return features.cpu().numpy().astype(np.float32), centres
