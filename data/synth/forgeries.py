"""Named visual and audio manipulations, each applied in place to one span of a clip.

A visual forgery changes frames [start, stop) of a float32 [T, H, W, 3] array and nothing
else; an audio forgery changes samples [start, stop) of a float32 [S] wave and nothing
else. That is what makes the ground truth exact: the labelled interval in seconds is
[start / fps, stop / fps] and is exactly the set of frames (and, for audio, the samples of
exactly those frames) the function touched.

They differ in kind, as real forgeries do:
- visual: `mouth_resync` (lips re-rendered following another utterance: lip-sync),
  `face_swap` (skin colour, texture and eyes blended 50-100 % towards another person's,
  on the same head pose),
  `face_blur` (the face region blurred and blended back: a low-quality face replacement),
  `face_recolour` (the face region colour-graded: hue turned 25-60 degrees around the grey
  axis and saturation scaled 0.45-0.7x or 1.3-1.7x, brightness kept, blended back with the
  soft face mask as `face_blur` is: a badly colour-matched face replacement; shape, texture
  and motion stay exactly as rendered),
  `frozen_frames` (the picture stalls: every frame of the span repeats the span's first
  frame, sensor noise included). The first frame itself is left as rendered, so the
  labelled interval is exactly the run of identical frames; holding the frame *before* the
  span instead would make the run start one frame early (the decoded frames before and
  at the span start would then differ only by compressed-away noise).
- audio: `revoice` (the same words re-spoken by another voice at the same pace, dry, into
  the original room noise: TTS/voice conversion), `splice` (a span of another clip, other speaker and
  room), `time_stretch` (the span's sound played 0.6-0.8x or 1.25-1.6x as fast, pitch kept,
  by overlap-add of windowed grains), `spectral_smooth` (magnitude spectrum smoothed over
  frequency and time, phase kept: a vocoder-like loss of detail), `pitch_shift` (the
  span's voice 2-5 semitones higher or lower at the same tempo, by resampling and a
  phase vocoder, the room noise left as recorded: a voice changer; same words and
  timing, other pitch and timbre).
Audio spans fade from and back to the original over `AUDIO_FADE_S` inside the span, as an
editor's crossfade would, so the edit never leaks outside its labelled interval.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from data.synth.scene import Track, face_mask, render_frames
from data.synth.speaker import Look

AUDIO_FADE_S = 0.005


@dataclass(frozen=True, eq=False)
class VisualContext:
    """What a visual forgery may use besides the frames."""
    look: Look  # the clip's own speaker
    track: Track  # the clip's per-frame scene state
    noise: np.ndarray  # float32 [T, H, W, 3] sensor noise that was added to the frames
    donor_look: Look  # another person (face swap)
    donor_mouth: np.ndarray  # float32 [T2] mouth opening of another utterance (lip-sync)
    size: int
    rng: np.random.Generator  # for the forgery's own choices


@dataclass(frozen=True, eq=False)
class AudioContext:
    """What an audio forgery may use besides the wave."""
    sample_rate: int
    room_noise: np.ndarray  # float32 [S] the room's noise in the original wave
    donor_dry_same_words: np.ndarray  # float32 [S] another voice saying the same plan, dry
    donor_clip: np.ndarray  # float32 [S2] another clip (speaker and room), finished
    rng: np.random.Generator


# ---------------------------------------------------------------- visual forgeries


def mouth_resync(frames: np.ndarray, start: int, stop: int, ctx: VisualContext) -> None:
    """Re-render the mouth following another utterance's opening (out of sync with audio)."""
    length = stop - start
    donor = ctx.donor_mouth
    # take the donor window with the most mouth movement among a few, so the fake is visible
    offsets = ctx.rng.integers(0, max(1, len(donor) - length + 1), 8)
    best = max(offsets, key=lambda o: float(np.abs(np.diff(donor[o:o + length])).sum()))
    mouth = np.zeros(length, dtype=np.float32)
    window = donor[best:best + length]
    mouth[:len(window)] = window
    track = ctx.track.slice(start, stop).with_mouth(mouth)
    frames[start:stop] = render_frames(ctx.look, track, ctx.size) + ctx.noise[start:stop]


def face_swap(frames: np.ndarray, start: int, stop: int, ctx: VisualContext) -> None:
    """Re-render the face with another person's skin colour, texture and eyes, blended
    50-100 % towards the donor (swaps range from subtle to blatant)."""
    mix = np.float32(ctx.rng.uniform(0.5, 1.0))
    own, donor = ctx.look, ctx.donor_look

    def blend(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a + (b - a) * mix).astype(np.float32)

    swapped = dataclasses.replace(own, skin_rgb=blend(own.skin_rgb, donor.skin_rgb),
                                  lip_rgb=blend(own.lip_rgb, donor.lip_rgb),
                                  iris_rgb=blend(own.iris_rgb, donor.iris_rgb),
                                  skin_texture=blend(own.skin_texture, donor.skin_texture))
    track = ctx.track.slice(start, stop)
    frames[start:stop] = render_frames(swapped, track, ctx.size) + ctx.noise[start:stop]


def box_blur(images: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur over H and W of [N, H, W, C] via cumulative sums, edges clamped."""
    out = images
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        summed = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
        width = 2 * radius + 1
        hi = np.take(summed, np.arange(width, summed.shape[axis]), axis=axis)
        lo = np.take(summed, np.arange(0, summed.shape[axis] - width), axis=axis)
        out = (hi - lo) / width
    return out.astype(np.float32)


def face_blur(frames: np.ndarray, start: int, stop: int, ctx: VisualContext) -> None:
    """Blur the face region and blend it back with a soft mask."""
    radius = int(ctx.rng.integers(1, 3)) + ctx.size // 64
    strength = float(ctx.rng.uniform(0.75, 1.0))
    span = frames[start:stop]
    blurred = box_blur(span, radius)
    alpha = face_mask(ctx.look, ctx.track.slice(start, stop), ctx.size)[..., None] * strength
    frames[start:stop] = span + (blurred - span) * alpha


def colour_grade_matrix(hue_degrees: float, saturation: float) -> np.ndarray:
    """float32 [3, 3] RGB matrix (applied as `pixels @ matrix.T`) that turns the hue by
    `hue_degrees` around the grey axis and scales the chroma (the part of a colour off the
    grey axis) by `saturation`. Greys, and so every pixel's mean of R, G and B, are kept:
    the grade changes colour only, not brightness."""
    axis = np.full(3, 1 / np.sqrt(3))
    grey = np.outer(axis, axis)  # projection onto the grey axis
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    theta = np.deg2rad(hue_degrees)
    # Rodrigues' rotation restricted to the chroma plane, scaled there by `saturation`
    chroma = np.cos(theta) * (np.eye(3) - grey) + np.sin(theta) * cross
    return (grey + saturation * chroma).astype(np.float32)


def face_recolour(frames: np.ndarray, start: int, stop: int, ctx: VisualContext) -> None:
    """Colour-grade the face region (hue turned, saturation changed) and blend it back with
    a soft mask, as `face_blur` does. The hue turn, 25-60 degrees either way, takes skin
    out of the natural skin tones (a real other person's skin is `face_swap`); the
    saturation is either washed out (0.45-0.7x) or boosted (1.3-1.7x), never left alone."""
    hue = float(ctx.rng.choice([-1.0, 1.0])) * float(ctx.rng.uniform(25.0, 60.0))
    saturation = float(ctx.rng.choice([ctx.rng.uniform(0.45, 0.7), ctx.rng.uniform(1.3, 1.7)]))
    strength = float(ctx.rng.uniform(0.75, 1.0))
    span = frames[start:stop]
    graded = span @ colour_grade_matrix(hue, saturation).T
    alpha = face_mask(ctx.look, ctx.track.slice(start, stop), ctx.size)[..., None] * strength
    frames[start:stop] = span + (graded - span) * alpha


def frozen_frames(frames: np.ndarray, start: int, stop: int, ctx: VisualContext) -> None:
    """The picture stalls: frames [start, stop) all show frame `start`."""
    frames[start + 1:stop] = frames[start]


# ---------------------------------------------------------------- audio forgeries


def _fade_in(wave: np.ndarray, start: int, stop: int, new: np.ndarray, sample_rate: int) -> None:
    """Replace wave[start:stop] by `new`, crossfading at both ends inside the span."""
    length = stop - start
    fade = min(int(AUDIO_FADE_S * sample_rate), length // 2)
    weight = np.ones(length, dtype=np.float32)
    if fade > 0:
        ramp = (np.arange(fade, dtype=np.float32) + 0.5) / fade
        weight[:fade] = ramp
        weight[length - fade:] = ramp[::-1]
    wave[start:stop] = wave[start:stop] * (1 - weight) + new[:length] * weight


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def revoice(wave: np.ndarray, start: int, stop: int, ctx: AudioContext) -> None:
    """The same words spoken by another voice, dry, mixed into the original room noise."""
    donor = ctx.donor_dry_same_words[start:stop]
    original_voice = wave[start:stop] - ctx.room_noise[start:stop]
    gain = _rms(original_voice) / _rms(donor) if _rms(donor) > 1e-4 else 1.0
    _fade_in(wave, start, stop, donor * min(gain, 4.0) + ctx.room_noise[start:stop],
             ctx.sample_rate)


def splice(wave: np.ndarray, start: int, stop: int, ctx: AudioContext) -> None:
    """Paste a same-length span of another clip (another speaker in another room)."""
    length = stop - start
    source = ctx.donor_clip
    offset = int(ctx.rng.integers(0, max(1, len(source) - length + 1)))
    piece = np.zeros(length, dtype=np.float32)
    window = source[offset:offset + length]
    piece[:len(window)] = window
    _fade_in(wave, start, stop, piece, ctx.sample_rate)


def overlap_add(grains: np.ndarray, positions: np.ndarray, window: np.ndarray, length: int
                ) -> np.ndarray:
    """Weighted overlap-add: grains [J, G] (already analysis-windowed) times the synthesis
    `window` [G], placed at `positions` [J], divided by the summed squared window: [length]."""
    n_grains, grain = grains.shape
    index = (positions[:, None] + np.arange(grain)[None, :]).ravel()  # [J*G]
    keep = (index >= 0) & (index < length)
    total = np.bincount(index[keep], (grains * window).ravel()[keep], minlength=length)
    norm = np.bincount(index[keep], np.broadcast_to(window ** 2, grains.shape).ravel()[keep],
                       minlength=length)
    return (total / np.maximum(norm, 1e-3)).astype(np.float32)


def time_stretch(wave: np.ndarray, start: int, stop: int, ctx: AudioContext) -> None:
    """Play the sound from `start` faster or slower (pitch kept) to fill the span."""
    rate = float(ctx.rng.choice([ctx.rng.uniform(0.6, 0.8), ctx.rng.uniform(1.25, 1.6)]))
    length = stop - start
    grain, hop = 512, 128
    needed = int(np.ceil(length * rate)) + grain
    source_start = max(0, min(start, len(wave) - needed))
    source = np.zeros(needed, dtype=np.float32)
    available = wave[source_start:source_start + needed]
    source[:len(available)] = available
    out_positions = np.arange(-grain // 2, length, hop)  # [J]
    # the grain written at output q is read where its centre maps to: (q + G/2) * rate - G/2
    in_positions = np.clip(np.round((out_positions + grain / 2) * rate - grain / 2),
                           0, needed - grain).astype(np.int64)
    grains = source[in_positions[:, None] + np.arange(grain)[None, :]]  # [J, G]
    window = np.hanning(grain).astype(np.float32)
    stretched = overlap_add(grains * window, out_positions, window, length)
    _fade_in(wave, start, stop, stretched, ctx.sample_rate)


PV_FFT, PV_HOP = 512, 128  # phase vocoder frames: 32 ms every 8 ms at 16 kHz


def phase_vocoder(x: np.ndarray, length: int, rate: float) -> np.ndarray:
    """`length` samples of `x` played `rate` times as fast with the pitch kept: float32.

    Output frame m (centred on sample m * hop) takes the magnitude interpolated between
    the analysis frames around x[m * hop * rate], and a phase advanced from frame to frame
    by each bin's measured frequency, so partials stay continuous across frames. Plain
    overlap-add of grains (as `time_stretch` does) would not do here: without phase
    continuity a steady tone comes out as the grain rate's comb around the original pitch,
    not at the new one. With rate 1 the input comes back unchanged (tested)."""
    half = PV_FFT // 2
    window = np.hanning(PV_FFT).astype(np.float32)
    # frame j is centred on x[j * hop]; zeros before the start and past the end
    padded = np.pad(x.astype(np.float32), (half, half + PV_FFT))
    starts = np.arange(0, len(padded) - PV_FFT + 1, PV_HOP)
    spectra = np.fft.rfft(padded[starts[:, None] + np.arange(PV_FFT)] * window, axis=1)  # [J, K]
    centres = np.arange(0, length + half, PV_HOP)  # [M] output frame centres
    steps = np.minimum(centres * rate / PV_HOP, len(spectra) - 1.001)  # fractional frame
    low = steps.astype(np.int64)
    frac = (steps - low)[:, None]
    magnitude = (1 - frac) * np.abs(spectra[low]) + frac * np.abs(spectra[low + 1])
    # the phase each bin's centre frequency turns through in one hop; the measured turn
    # differs from it by the partial's offset from the bin centre, wrapped to [-pi, pi)
    expected = 2 * np.pi * PV_HOP * np.arange(spectra.shape[1]) / PV_FFT
    deviation = np.angle(spectra[low + 1]) - np.angle(spectra[low]) - expected
    advance = expected + np.mod(deviation + np.pi, 2 * np.pi) - np.pi  # [M, K]
    phase = _locked_phases(advance, np.angle(spectra[low]), nearest_peaks(magnitude))
    grains = np.fft.irfft(magnitude * np.exp(1j * phase), PV_FFT, axis=1)
    # grains carry the analysis window; overlap_add applies the synthesis one
    return overlap_add(grains.astype(np.float32), centres - half, window, length)


def nearest_peaks(magnitude: np.ndarray) -> np.ndarray:
    """For each bin of each frame of `magnitude` [M, K], the bin of the nearest spectral
    peak (a bin above its left neighbour and not below its right one): int [M, K]. A frame
    without peaks maps every bin to itself."""
    n_bins = magnitude.shape[1]
    bins = np.arange(n_bins)
    peak = np.zeros(magnitude.shape, dtype=bool)
    peak[:, 1:-1] = ((magnitude[:, 1:-1] > magnitude[:, :-2])
                     & (magnitude[:, 1:-1] >= magnitude[:, 2:]))
    before = np.maximum.accumulate(np.where(peak, bins, -1), axis=1)  # -1: none yet
    after = np.minimum.accumulate(np.where(peak, bins, n_bins)[:, ::-1], axis=1)[:, ::-1]
    take_after = (before < 0) | ((after < n_bins) & (after - bins < bins - before))
    nearest = np.where(take_after, after, before)
    return np.where((nearest < 0) | (nearest >= n_bins), bins, nearest)


def _locked_phases(advance: np.ndarray, analysis: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Output phases [M, K] with identity phase locking (Laroche and Dolson): each bin's
    phase runs on from the previous output frame by its measured advance, then every bin
    takes its peak's phase plus the phase difference the analysis frame has between them.
    Without the locking, the bins of one partial drift apart in phase after a pause or an
    onset and cancel: speech came out 20-40 % quieter."""
    analysis = analysis.astype(np.float64)
    relative = analysis - np.take_along_axis(analysis, peaks, axis=1)  # [M, K]
    phase = np.empty_like(analysis)
    running = analysis[0]
    for m in range(len(analysis)):  # a recurrence: each frame starts from the last one
        if m:
            # wrapped, so that precision does not fall as the phases grow frame by frame
            running = np.mod(phase[m - 1] + advance[m - 1], 2 * np.pi)
        phase[m] = running[peaks[m]] + relative[m]
    return phase


def pitch_shifted(x: np.ndarray, semitones: float) -> np.ndarray:
    """`x` shifted by `semitones` with its length and timing kept: float32 [len(x)].

    Resampling by the pitch factor (linear interpolation) scales every frequency and the
    tempo alike; `phase_vocoder` then restores the tempo and keeps the new pitch. Sample
    time t of the output lines up with time t of the input. Shifting up lets a little
    energy above 8 kHz / factor fold back (no anti-alias filter): faint in speech, and
    one more artefact of a cheap voice changer."""
    factor = 2.0 ** (semitones / 12)
    resampled = np.interp(np.arange(0.0, len(x) - 1, factor), np.arange(len(x)), x)
    return phase_vocoder(resampled, len(x), len(resampled) / len(x))


def pitch_shift(wave: np.ndarray, start: int, stop: int, ctx: AudioContext) -> None:
    """Shift the span's voice 2-5 semitones up or down, keeping its length and tempo.

    Only the voice (the wave less the room noise) is shifted; the room noise stays as
    recorded, so the edit is a changed voice, not a changed room. The shift is computed on
    the voice with PV_FFT samples of context each side (read, never written), so the
    span's ends are not the vocoder's zero-padded edges."""
    semitones = float(ctx.rng.choice([-1.0, 1.0])) * float(ctx.rng.uniform(2.0, 5.0))
    low, high = max(0, start - PV_FFT), min(len(wave), stop + PV_FFT)
    voice = wave[low:high] - ctx.room_noise[low:high]
    shifted = pitch_shifted(voice, semitones)[start - low:stop - low]
    _fade_in(wave, start, stop, shifted + ctx.room_noise[start:stop], ctx.sample_rate)


def spectral_smooth(wave: np.ndarray, start: int, stop: int, ctx: AudioContext) -> None:
    """Smooth the span's magnitude spectrum over frequency and time, keeping the phase."""
    length = stop - start
    grain, hop = 512, 128
    segment = np.pad(wave[start:stop], (grain, grain), mode="reflect")
    positions = np.arange(0, len(segment) - grain + 1, hop)  # [J]
    window = np.hanning(grain).astype(np.float32)
    spectra = np.fft.rfft(segment[positions[:, None] + np.arange(grain)] * window, axis=1)
    width = int(ctx.rng.integers(6, 14))  # bins (31.25 Hz each at 16 kHz)
    kernel = np.ones(width) / width
    magnitude = np.abs(spectra)
    smooth = np.apply_along_axis(lambda m: np.convolve(m, kernel, mode="same"), 1, magnitude)
    smooth = (smooth + np.roll(smooth, 1, 0) + np.roll(smooth, -1, 0)) / 3  # over time
    grains = np.fft.irfft(smooth * np.exp(1j * np.angle(spectra)), grain, axis=1)
    # grains already carry the analysis window; overlap_add applies the synthesis one
    rebuilt = overlap_add(grains.astype(np.float32), positions, window, len(segment))
    _fade_in(wave, start, stop, rebuilt[grain:grain + length], ctx.sample_rate)


VisualForgery = Callable[[np.ndarray, int, int, VisualContext], None]
AudioForgery = Callable[[np.ndarray, int, int, AudioContext], None]

VISUAL_FORGERIES: dict[str, VisualForgery] = {
    "mouth_resync": mouth_resync,
    "face_swap": face_swap,
    "face_blur": face_blur,
    "frozen_frames": frozen_frames,
    "face_recolour": face_recolour,
}
AUDIO_FORGERIES: dict[str, AudioForgery] = {
    "revoice": revoice,
    "splice": splice,
    "time_stretch": time_stretch,
    "spectral_smooth": spectral_smooth,
    "pitch_shift": pitch_shift,
}
