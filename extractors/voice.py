"""Weight-free voice descriptors per audio frame: pitch, voicing and the spectral envelope.

Log-mel frames say what sound is being made; which *voice* makes it shows in them only as
harmonic spacing and formant positions, mixed with the phonetic content. A frame-supervised
probe on log-mel alone marks re-voiced spans of rtdl synth's speech at about 0.6 frame AUC.
These descriptors give the model (and the clip-deviation evidence) the voice directly.
Opt-in (`--audio-model logmel_voice`): they raise that probe's ceiling on seen audio
forgeries (0.67 -> 0.73) but measured end to end they did not earn the default
(BENCHMARKS.md, "Real words in the synth"). All come from the real
cepstrum of a 40 ms Hann-windowed frame (FFT size 1024 at 16 kHz), the classic source-
filter split of speech:

  0   voiced log2 pitch: log2(f0 / 100 Hz) x voicing, f0 from the cepstral peak between
      60 and 400 Hz; 0 where the frame is unvoiced, so silence does not read as a pitch
  1   voicing in [0, 1]: the cepstral peak prominence (the peak over the mean of the
      searched quefrencies) mapped linearly from 0.04 -> 0 to 0.10 -> 1 (on eSpeak speech the
      loud frames' prominence has median 0.08, 90th percentile 0.13; silence 0), times a loudness
      gate (0 below -40 dB of the clip's loudest frame, 1 above -30 dB)
  2-13  cepstral coefficients c1..c12: the smooth spectral envelope (vocal tract, channel)

The frames share the log-mel frames' centres (10 ms hop, centre (160 j + 200) / 16000 s),
so the two concatenate frame by frame; the wave is zero-padded by 120 samples at both ends
so the longer window fits around the first and last centres.
"""
from __future__ import annotations

import torch

SAMPLE_RATE = 16000
WINDOW = 640  # 40 ms: two periods of the lowest pitch searched
FFT_SIZE = 1024
PITCH_RANGE_HZ = (60.0, 400.0)
N_CEPSTRA = 12
VOICE_DIM = 2 + N_CEPSTRA
PROMINENCE_RANGE = (0.04, 0.10)  # cepstral peak prominence read as unvoiced .. voiced
GATE_DB = (-40.0, -30.0)  # loudness below the clip's loudest frame: silent .. speech


def voice_descriptors(wave: torch.Tensor, hop: int, centre_offset: int, n_frames: int
                      ) -> torch.Tensor:
    """float32 wave [S] at 16 kHz -> [n_frames, VOICE_DIM], frame j centred on sample
    hop * j + centre_offset."""
    pad = WINDOW // 2 - centre_offset
    needed = hop * (n_frames - 1) + WINDOW
    padded = torch.nn.functional.pad(wave, (pad, max(0, needed - pad - wave.shape[0])))
    frames = padded.unfold(0, WINDOW, hop)[:n_frames]  # [M, WINDOW]
    frames = frames * torch.hann_window(WINDOW, periodic=False, dtype=wave.dtype, device=wave.device)
    log_magnitude = torch.log(torch.fft.rfft(frames, FFT_SIZE).abs() + 1e-6)  # [M, F]
    cepstrum = torch.fft.irfft(log_magnitude, FFT_SIZE)  # [M, FFT_SIZE]

    low = int(SAMPLE_RATE / PITCH_RANGE_HZ[1])
    high = int(SAMPLE_RATE / PITCH_RANGE_HZ[0])
    searched = cepstrum[:, low:high + 1]  # [M, Q]
    peak, where = searched.max(dim=1)
    f0 = SAMPLE_RATE / (where + low).to(wave.dtype)
    prominence = peak - searched.mean(dim=1)
    voicing = ((prominence - PROMINENCE_RANGE[0]) / (PROMINENCE_RANGE[1] - PROMINENCE_RANGE[0])
               ).clamp(0, 1)
    loudness_db = 10 * torch.log10(frames.square().mean(dim=1) + 1e-10)
    gate = ((loudness_db - loudness_db.max() - GATE_DB[0]) / (GATE_DB[1] - GATE_DB[0])).clamp(0, 1)
    voicing = voicing * gate
    pitch = torch.log2(f0 / 100.0) * voicing
    envelope = cepstrum[:, 1:1 + N_CEPSTRA]
    return torch.cat([pitch[:, None], voicing[:, None], envelope], dim=1).float()
