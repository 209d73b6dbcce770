"""One synthetic clip: a speaker talks, then the planned forgeries are applied to its frames
and samples.

Randomness: each clip has its own `numpy.random.SeedSequence` (from the dataset seed and
the clip index) split into one generator per purpose (who talks, what is said, camera,
donor person, donor clip, forgeries...). A part that is only computed for some forgery
types (the donor's re-voicing, the donor clip) therefore never shifts the random stream of
another part, and a clip is the same whichever process makes it.

Span placement: forged spans of one modality never overlap and keep a gap of at least
`SPAN_GAP_FRAMES`, so each labelled interval is one forgery; the first and last frames stay
genuine, so every span starts and ends next to a genuine frame. In a "both" clip the audio
spans reuse the visual spans half of the time (a word replaced and lip-synced, as in
LAV-DF) and are placed independently otherwise.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from data.synth.forgeries import AUDIO_FORGERIES, VISUAL_FORGERIES, AudioContext, VisualContext
from data.synth.scene import random_track, render_frames
from data.synth.speaker import random_look, random_speaker, random_voice
from data.synth.speech import (mouth_opening, plan_syllables, random_room, reverberate,
                               room_noise, synth_voice)
from data.synth.tts import (envelope_mouth_opening, random_text, random_tts_voice, tts_speech,
                            words_needed)

SPAN_GAP_FRAMES = 2  # genuine frames at least between two spans of one modality
EDGE_FRAMES = 1  # genuine frames at least at the start and the end of a clip
SEGMENT_COUNT_WEIGHTS = (0.5, 0.3, 0.2)  # chance of 1, 2, 3, ... spans per forged modality
SPEECH_ENGINES = ("espeak", "formant")  # data/synth/tts.py, data/synth/speech.py


@dataclass(frozen=True)
class ForgedSpan:
    modality: str  # "visual" or "audio"
    kind: str  # forgery name, a key of VISUAL_FORGERIES or AUDIO_FORGERIES
    start_frame: int  # first forged frame
    stop_frame: int  # one past the last forged frame

    def seconds(self, fps: float) -> tuple[float, float]:
        """[start, end] in seconds: start = first forged frame / fps, end = (last + 1) / fps."""
        return self.start_frame / fps, self.stop_frame / fps


@dataclass(frozen=True)
class ClipSpec:
    seed: tuple[int, ...]  # entropy of this clip's SeedSequence
    n_frames: int
    fps: float
    size: int  # frame height = width, pixels (even)
    sample_rate: int
    spans: tuple[ForgedSpan, ...]
    speech: str = "formant"  # one of SPEECH_ENGINES: who speaks the clip's words

    @property
    def n_samples(self) -> int:
        return int(round(self.n_frames * self.sample_rate / self.fps))

    def sample_index(self, frame: int) -> int:
        """First audio sample of video frame `frame` (frame i covers [i/fps, (i+1)/fps))."""
        return int(round(frame * self.sample_rate / self.fps))


@dataclass(frozen=True, eq=False)
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    audio: np.ndarray  # float32 [S] mono


def place_segments(n_frames: int, count: int, min_len: int, max_len: int,
                   rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` non-overlapping [start, stop) frame ranges with lengths in [min_len, max_len]."""
    lengths = rng.integers(min_len, max_len + 1, count)
    room = n_frames - 2 * EDGE_FRAMES
    while len(lengths) > 1 and lengths.sum() + SPAN_GAP_FRAMES * (len(lengths) - 1) > room:
        lengths = lengths[:-1]  # fewer spans in a short clip
    lengths[0] = min(lengths[0], room)
    slack = room - int(lengths.sum()) - SPAN_GAP_FRAMES * (len(lengths) - 1)
    # spread the slack randomly before the spans: sorted cut points give the extra gaps
    extra = np.diff(np.sort(rng.integers(0, slack + 1, len(lengths))), prepend=0)
    segments, position = [], EDGE_FRAMES
    for length, before in zip(lengths, extra):
        position += int(before)
        segments.append((position, position + int(length)))
        position += int(length) + SPAN_GAP_FRAMES
    return segments


def plan_spans(n_frames: int, fps: float, visual: bool, audio: bool,
               visual_kinds: tuple[str, ...], audio_kinds: tuple[str, ...],
               rng: np.random.Generator, *, segment_s: tuple[float, float],
               max_segments: int) -> tuple[ForgedSpan, ...]:
    """Forged spans of a clip whose visual and/or audio stream is forged."""
    min_len = max(1, int(round(segment_s[0] * fps)))
    max_len = max(min_len, int(round(segment_s[1] * fps)))
    weights = np.asarray(SEGMENT_COUNT_WEIGHTS[:max_segments], dtype=np.float64)

    def positions() -> list[tuple[int, int]]:
        count = int(rng.choice(np.arange(1, len(weights) + 1), p=weights / weights.sum()))
        return place_segments(n_frames, count, min_len, max_len, rng)

    visual_ranges = positions() if visual else []
    audio_ranges: list[tuple[int, int]] = []
    if audio:
        audio_ranges = visual_ranges if visual and rng.random() < 0.5 else positions()
    spans = [ForgedSpan("visual", str(rng.choice(visual_kinds)), a, b) for a, b in visual_ranges]
    spans += [ForgedSpan("audio", str(rng.choice(audio_kinds)), a, b) for a, b in audio_ranges]
    return tuple(spans)


class _FormantTalker:
    """Who speaks and what, in the built-in formant speech: dry speech of the clip's own
    voice, of a donor voice saying the same syllables (revoice) or other ones (splice), and
    the mouth opening each plan drives. `_EspeakTalker` has the same methods."""

    def __init__(self, spec: ClipSpec, speaker, rngs: dict[str, np.random.Generator]):
        self.spec = spec
        duration = spec.n_frames / spec.fps
        self.voice = speaker.voice
        self.plan = plan_syllables(duration, rngs["words"])
        self.donor_voice = random_voice(rngs["donor_who"])
        self.donor_plan = plan_syllables(duration, rngs["donor_words"])

    def _say(self, voice, plan, rng: np.random.Generator) -> np.ndarray:
        return synth_voice(voice, plan, self.spec.n_samples, self.spec.sample_rate, rng)

    def own(self, rng: np.random.Generator) -> np.ndarray:
        return self._say(self.voice, self.plan, rng)

    def same_words_other_voice(self, rng: np.random.Generator) -> np.ndarray:
        return self._say(self.donor_voice, self.plan, rng)

    def donor_speech(self, rng: np.random.Generator) -> np.ndarray:
        return self._say(self.donor_voice, self.donor_plan, rng)

    def mouth(self, dry: np.ndarray) -> np.ndarray:
        return mouth_opening(self.plan, self.spec.n_frames, self.spec.fps, self.spec.sample_rate)

    def donor_mouth(self, rng: np.random.Generator) -> np.ndarray:
        return mouth_opening(self.donor_plan, self.spec.n_frames, self.spec.fps,
                             self.spec.sample_rate)


class _EspeakTalker:
    """The same as `_FormantTalker` with eSpeak NG words; the mouth follows the loudness of
    the dry speech, as the engine gives no syllable plan."""

    def __init__(self, spec: ClipSpec, speaker, rngs: dict[str, np.random.Generator]):
        self.spec = spec
        duration = spec.n_frames / spec.fps
        self.voice = random_tts_voice(rngs["tts"])
        self.text = random_text(rngs["words"], words_needed(duration, self.voice))
        self.lead_in = float(rngs["words"].uniform(0.05, 0.4))
        self.donor_voice = random_tts_voice(rngs["donor_tts"])
        self.donor_text = random_text(rngs["donor_words"], words_needed(duration, self.donor_voice))

    def _say(self, voice, text: str, lead_in: float) -> np.ndarray:
        return tts_speech(voice, text, self.spec.n_samples, self.spec.sample_rate, lead_in)

    def own(self, rng: np.random.Generator) -> np.ndarray:
        return self._say(self.voice, self.text, self.lead_in)

    def same_words_other_voice(self, rng: np.random.Generator) -> np.ndarray:
        # at the clip's own pace, so the words stay in place
        donor = dataclasses.replace(self.donor_voice, rate_wpm=self.voice.rate_wpm)
        return self._say(donor, self.text, self.lead_in)

    def donor_speech(self, rng: np.random.Generator) -> np.ndarray:
        return self._say(self.donor_voice, self.donor_text, float(rng.uniform(0.05, 0.4)))

    def mouth(self, dry: np.ndarray) -> np.ndarray:
        return envelope_mouth_opening(dry, self.spec.n_frames, self.spec.fps, self.spec.sample_rate)

    def donor_mouth(self, rng: np.random.Generator) -> np.ndarray:
        return self.mouth(self.donor_speech(rng))


_TALKERS = {"espeak": _EspeakTalker, "formant": _FormantTalker}


def make_clip(spec: ClipSpec) -> Clip:
    """Render the clip's speaker talking, then apply its forged spans in order."""
    names = ("who", "words", "voice", "camera", "donor_who", "donor_words", "donor_room",
             "forge", "tts", "donor_tts")
    rngs = dict(zip(names, (np.random.default_rng(s)
                            for s in np.random.SeedSequence(spec.seed).spawn(len(names)))))
    n_samples = spec.n_samples
    speaker = random_speaker(rngs["who"], spec.size)
    donor_look = random_look(rngs["donor_who"], spec.size)
    if spec.speech not in _TALKERS:
        raise ValueError(f"ClipSpec.speech: expected one of {SPEECH_ENGINES}, got {spec.speech!r}")
    talker = _TALKERS[spec.speech](spec, speaker, rngs)

    # audio: the speaker's dry voice in a room
    rng_voice = rngs["voice"]
    room = random_room(rng_voice)
    dry = talker.own(rng_voice)
    noise_floor = room_noise(room, n_samples, spec.sample_rate, rng_voice)
    wave = reverberate(dry, room, spec.sample_rate, rng_voice) + noise_floor  # [S]

    # video: the face's mouth follows the same speech
    rng_camera = rngs["camera"]
    track = random_track(talker.mouth(dry), spec.fps, spec.size, rng_camera,
                         n_sprites=len(speaker.look.sprites))
    frames = render_frames(speaker.look, track, spec.size)  # [T, H, W, 3]
    sensor_noise = rng_camera.normal(0, rng_camera.uniform(1.0, 3.0), frames.shape
                                     ).astype(np.float32)
    frames += sensor_noise

    kinds = {span.kind for span in spec.spans}
    if any(s.modality == "visual" for s in spec.spans):
        visual_ctx = VisualContext(
            look=speaker.look, track=track, noise=sensor_noise, donor_look=donor_look,
            donor_mouth=talker.donor_mouth(rngs["donor_words"]), size=spec.size,
            rng=rngs["forge"])
    if any(s.modality == "audio" for s in spec.spans):
        same_words = (talker.same_words_other_voice(rngs["donor_words"])
                      if "revoice" in kinds else np.zeros(0, np.float32))
        donor_clip = np.zeros(0, np.float32)
        if "splice" in kinds:
            rng_room = rngs["donor_room"]
            donor_room = random_room(rng_room)
            donor_dry = talker.donor_speech(rng_room)
            donor_clip = (reverberate(donor_dry, donor_room, spec.sample_rate, rng_room)
                          + room_noise(donor_room, n_samples, spec.sample_rate, rng_room))
        audio_ctx = AudioContext(sample_rate=spec.sample_rate, room_noise=noise_floor,
                                 donor_dry_same_words=same_words, donor_clip=donor_clip,
                                 rng=rngs["forge"])

    for span in spec.spans:
        if span.modality == "visual":
            VISUAL_FORGERIES[span.kind](frames, span.start_frame, span.stop_frame, visual_ctx)
        else:
            AUDIO_FORGERIES[span.kind](wave, spec.sample_index(span.start_frame),
                                       spec.sample_index(span.stop_frame), audio_ctx)
    frames_u8 = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return Clip(frames=frames_u8, audio=wave.astype(np.float32))
