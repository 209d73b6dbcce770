"""Speech-like audio: words of voiced syllables with a pitch contour and vowel formants,
consonant bursts, pauses, and a room (reverberation plus background noise).

Source-filter synthesis done additively: the voiced source is a sum of harmonics of the
pitch contour, each harmonic weighted by the vowel's three formant resonances at that
instant, so pitch and formants move smoothly (coarticulation) without any filter loop.
The syllable envelope also drives the mouth opening of the rendered face (see
`mouth_opening`), which is what makes audio and video of one clip consistent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synth.speaker import Voice

# (F1, F2, F3) in Hz of an average adult tract, and how far the mouth opens for the vowel
VOWEL_FORMANTS = np.array([[730, 1090, 2440],  # a
                           [530, 1840, 2480],  # e
                           [270, 2290, 3010],  # i
                           [570, 840, 2410],  # o
                           [300, 870, 2240]], dtype=np.float32)  # u
VOWEL_OPENNESS = np.array([1.0, 0.65, 0.35, 0.75, 0.4], dtype=np.float32)
FORMANT_BANDWIDTH_HZ = np.array([90, 110, 160], dtype=np.float32)
MAX_HARMONIC_HZ = 4000.0  # harmonics above this carry little energy in speech and cost time


@dataclass(frozen=True, eq=False)
class SyllablePlan:
    """What is said and when: one entry per syllable (arrays of equal length N)."""
    onsets_s: np.ndarray  # float64 [N] syllable start times
    durations_s: np.ndarray  # float64 [N]
    vowels: np.ndarray  # int64 [N], index into VOWEL_FORMANTS
    accents: np.ndarray  # float64 [N] in [-1, 1], pitch accent of the syllable
    consonant: np.ndarray  # bool [N], syllable starts with a noise burst


@dataclass(frozen=True)
class Room:
    noise_level: float  # background noise standard deviation (full scale = 1)
    reverb_s: float  # decay time constant of the room's impulse response
    hum_hz: float  # mains hum frequency (50 or 60)


def plan_syllables(duration_s: float, rng: np.random.Generator) -> SyllablePlan:
    """Words of 1-4 syllables separated by short and occasional long pauses."""
    onsets, durations = [], []
    t = rng.uniform(0.05, 0.4)  # leading silence
    while t < duration_s - 0.15:
        for _ in range(int(rng.integers(1, 5))):
            length = rng.uniform(0.12, 0.28)
            if t + length > duration_s - 0.02:
                break
            onsets.append(t)
            durations.append(length)
            t += length + rng.uniform(0.0, 0.03)
        t += rng.uniform(0.6, 1.0) if rng.random() < 0.2 else rng.uniform(0.1, 0.35)
    n = len(onsets)
    return SyllablePlan(
        onsets_s=np.asarray(onsets, dtype=np.float64),
        durations_s=np.asarray(durations, dtype=np.float64),
        vowels=rng.integers(0, len(VOWEL_FORMANTS), n),
        accents=rng.uniform(-1, 1, n),
        consonant=rng.random(n) < 0.6,
    )


def random_room(rng: np.random.Generator) -> Room:
    return Room(noise_level=float(10 ** rng.uniform(-3.0, -2.0)),
                reverb_s=float(rng.uniform(0.01, 0.06)),
                hum_hz=float(rng.choice([50.0, 60.0])))


def syllable_envelope(plan: SyllablePlan, n_samples: int, sample_rate: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loudness envelope in [0, 1] and vowel openness, float32 [S] each."""
    envelope = np.zeros(n_samples, dtype=np.float32)
    openness = np.zeros(n_samples, dtype=np.float32)
    for onset, length, vowel in zip(plan.onsets_s, plan.durations_s, plan.vowels):
        start = int(round(onset * sample_rate))
        stop = min(n_samples, int(round((onset + length) * sample_rate)))
        if stop <= start:
            continue
        x = (np.arange(stop - start, dtype=np.float32) + 0.5) / (stop - start)
        # fast attack, slower release: the shape of a spoken syllable's loudness
        shape = np.sin(np.pi * x ** 0.7) ** 0.8
        envelope[start:stop] = np.maximum(envelope[start:stop], shape)
        openness[start:stop] = VOWEL_OPENNESS[vowel]
    return envelope, openness


def _targets_per_sample(plan: SyllablePlan, values: np.ndarray, n_samples: int,
                        sample_rate: int, default: np.ndarray) -> np.ndarray:
    """Interpolate per-syllable targets (at syllable centres) to every sample: [S, ...]."""
    if len(plan.onsets_s) == 0:
        return np.broadcast_to(default, (n_samples,) + default.shape).astype(np.float32)
    centres = (plan.onsets_s + plan.durations_s / 2) * sample_rate
    samples = np.arange(n_samples, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(centres), -1)
    out = np.stack([np.interp(samples, centres, values[:, j]) for j in range(values.shape[1])], -1)
    return out.astype(np.float32).reshape((n_samples,) + default.shape)


def synth_voice(voice: Voice, plan: SyllablePlan, n_samples: int, sample_rate: int,
                rng: np.random.Generator) -> np.ndarray:
    """Dry (no room) speech of `voice` saying `plan`: float32 [S], peak about 0.5."""
    envelope, _ = syllable_envelope(plan, n_samples, sample_rate)
    t = np.arange(n_samples, dtype=np.float32) / sample_rate
    duration = max(n_samples / sample_rate, 1e-3)
    # pitch: per-syllable accents, a falling declination over the utterance, slight vibrato
    accent = _targets_per_sample(plan, plan.accents, n_samples, sample_rate, np.zeros(()))
    f0 = voice.f0_hz * (1 + voice.pitch_range * accent) * (1 - 0.12 * t / duration) \
        * (1 + 0.01 * np.sin(2 * np.pi * 5.0 * t))  # [S]
    formants = _targets_per_sample(plan, VOWEL_FORMANTS[plan.vowels], n_samples, sample_rate,
                                   VOWEL_FORMANTS[0]) * voice.formant_scale  # [S, 3]
    phase = 2 * np.pi * np.cumsum(f0, dtype=np.float64) / sample_rate  # [S]
    voiced = np.zeros(n_samples, dtype=np.float32)
    active = envelope > 0  # only synthesise where a syllable sounds
    if active.any():
        idx = np.flatnonzero(active)
        f0_active = f0[idx]  # [A]
        formants_active = formants[idx]  # [A, 3]
        top = min(MAX_HARMONIC_HZ, sample_rate / 2 - 200)
        # harmonic k is Im(z**k) with z = exp(i phase): one complex multiply per harmonic
        # instead of a sine, and no [K, A] temporaries
        z = np.exp(1j * phase[idx]).astype(np.complex64)  # [A]
        z_k = np.ones_like(z)
        total = np.zeros(len(idx), dtype=np.float32)
        for k in range(1, int(top // (0.7 * voice.f0_hz)) + 1):
            z_k *= z
            freq = k * f0_active  # [A]
            gain = np.zeros_like(freq)
            for j in range(3):  # three formant resonances, each a Lorentzian bump
                gain += 1 / (1 + ((freq - formants_active[:, j]) / FORMANT_BANDWIDTH_HZ[j]) ** 2)
            total += gain * (freq < top) * np.float32(k ** -voice.tilt) * z_k.imag
        voiced[idx] = total
        voiced /= max(float(np.abs(voiced).max()), 1e-6)
    white = rng.standard_normal(n_samples).astype(np.float32)
    aspiration = np.diff(white, prepend=0.0) * 0.5  # high-passed noise
    wave = envelope * ((1 - voice.breathiness) * voiced + voice.breathiness * aspiration)
    # consonants: a short decaying burst of high-passed noise at the syllable start
    for onset, has_consonant in zip(plan.onsets_s, plan.consonant):
        if not has_consonant:
            continue
        start = int(round(onset * sample_rate))
        length = min(int(0.04 * sample_rate), n_samples - start)
        if length > 0:
            decay = np.exp(-np.arange(length, dtype=np.float32) / (0.012 * sample_rate))
            wave[start:start + length] += 0.35 * decay * aspiration[start:start + length]
    return (0.5 * wave).astype(np.float32)


def fft_convolve(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear convolution truncated to len(signal): float32 [S]."""
    n = len(signal) + len(kernel) - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(kernel, size), size)
    return out[:len(signal)].astype(np.float32)


def room_noise(room: Room, n_samples: int, sample_rate: int, rng: np.random.Generator
               ) -> np.ndarray:
    """Pink-ish background noise plus mains hum: float32 [S]."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples, 1 / sample_rate)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))  # 1/f power
    noise = np.fft.irfft(spectrum, n_samples)
    noise *= room.noise_level / max(float(noise.std()), 1e-12)
    t = np.arange(n_samples) / sample_rate
    hum = 0.3 * room.noise_level * np.sin(2 * np.pi * room.hum_hz * t + rng.uniform(0, 2 * np.pi))
    return (noise + hum).astype(np.float32)


def reverberate(dry: np.ndarray, room: Room, sample_rate: int, rng: np.random.Generator
                ) -> np.ndarray:
    """Direct sound plus an exponentially decaying noise tail: float32 [S]."""
    length = int(4 * room.reverb_s * sample_rate)
    tail = rng.standard_normal(length) * np.exp(-np.arange(length) / (room.reverb_s * sample_rate))
    kernel = np.concatenate([[1.0], 0.15 * tail / np.sqrt((tail ** 2).sum() + 1e-12)])
    return fft_convolve(dry, kernel)


def mouth_opening(plan: SyllablePlan, n_frames: int, fps: float, sample_rate: int
                  ) -> np.ndarray:
    """How far the mouth is open in each video frame, float32 [T] in [0, 1].

    Mean of loudness x vowel openness over the frame's samples, so the face's lips
    follow the speech envelope frame by frame.
    """
    n_samples = int(round(n_frames * sample_rate / fps))
    envelope, openness = syllable_envelope(plan, n_samples, sample_rate)
    drive = envelope * openness  # [S]
    bounds = np.round(np.arange(n_frames) * sample_rate / fps).astype(np.int64)
    sums = np.add.reduceat(drive, bounds)  # [T]
    counts = np.diff(np.append(bounds, n_samples))
    return np.clip(sums / np.maximum(counts, 1), 0, 1).astype(np.float32)
