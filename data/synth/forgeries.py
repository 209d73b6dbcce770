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
  `frozen_frames` (the picture stalls: every frame of the span repeats the span's first
  frame, sensor noise included). The first frame itself is left as rendered, so the
  labelled interval is exactly the run of identical frames; holding the frame *before* the
  span instead would make the run start one frame early (the decoded frames before and
  at the span start would then differ only by compressed-away noise).
- audio: `revoice` (the same words re-spoken by another voice at the same pace, dry, into
  the original room noise: TTS/voice conversion), `splice` (a span of another clip, other speaker and
  room), `time_stretch` (the span's sound played 0.6-0.8x or 1.25-1.6x as fast, pitch kept,
  by overlap-add of windowed grains), `spectral_smooth` (magnitude spectrum smoothed over
  frequency and time, phase kept: a vocoder-like loss of detail).
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
}
AUDIO_FORGERIES: dict[str, AudioForgery] = {
    "revoice": revoice,
    "splice": splice,
    "time_stretch": time_stretch,
    "spectral_smooth": spectral_smooth,
}
