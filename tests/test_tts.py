"""eSpeak NG speech for rtdl synth (data/synth/tts.py) and how clips use it."""
import sys

import numpy as np
import pytest

from data.synth import tts
from data.synth.clip import ClipSpec, ForgedSpan, make_clip
from data.synth.tts import (TtsVoice, envelope_mouth_opening, random_text, random_tts_voice,
                            tts_speech, words_needed)

VOICE = TtsVoice(accent="en", variant="m3", pitch=50, pitch_range=50, rate_wpm=170)


def test_random_text_is_words_in_phrases():
    rng = np.random.default_rng(0)
    text = random_text(rng, 12)
    words = text.split()
    assert len(words) == 12 and text.endswith(".")
    assert all(w.strip(".,") in tts.WORDS for w in words)
    assert random_text(np.random.default_rng(0), 12) == text


def test_words_needed_grows_with_duration_and_rate():
    slow = TtsVoice("en", "m1", 50, 50, 140)
    assert words_needed(6.0, VOICE) > words_needed(3.0, VOICE)
    assert words_needed(6.0, VOICE) > words_needed(6.0, slow)


def test_speech_has_lead_in_length_and_level():
    wave = tts_speech(VOICE, "the river and the mountain.", 16000 * 2, 16000, lead_in_s=0.25)
    assert wave.shape == (32000,) and wave.dtype == np.float32
    assert np.all(wave[:4000] == 0)  # 0.25 s of silence before the first word
    assert np.abs(wave[4000:]).max() == pytest.approx(0.5, abs=1e-3)
    # deterministic: the same text and voice give the same samples
    assert np.array_equal(wave, tts_speech(VOICE, "the river and the mountain.", 32000, 16000, 0.25))


def test_another_voice_sounds_different_in_pitch():
    high = TtsVoice("en", "f2", 75, 50, 170)
    low = TtsVoice("en", "m3", 25, 50, 170)

    def pitch_hz(wave):  # autocorrelation peak over 60-400 Hz on the loudest 0.2 s
        start = int(np.argmax(np.convolve(wave ** 2, np.ones(3200), "valid")))
        x = wave[start:start + 3200] - wave[start:start + 3200].mean()
        ac = np.correlate(x, x, "full")[len(x) - 1:]
        lags = np.arange(40, 267)
        return 16000 / lags[np.argmax(ac[lags])]

    text = "we live near the yellow garden in summer."
    assert pitch_hz(tts_speech(high, text, 48000, 16000, 0.1)) > \
        1.3 * pitch_hz(tts_speech(low, text, 48000, 16000, 0.1))


def test_random_voice_draws_from_known_names():
    voice = random_tts_voice(np.random.default_rng(5))
    assert voice.accent in tts.ACCENTS and voice.variant in tts.VARIANTS
    assert 0 <= voice.pitch <= 100 and 140 <= voice.rate_wpm <= 200


def test_mouth_opening_follows_loudness():
    dry = np.zeros(16000, np.float32)
    dry[6400:9600] = 0.4 * np.sin(np.arange(3200) * 0.3)  # loud from 0.4 s to 0.6 s
    mouth = envelope_mouth_opening(dry, 25, 25.0, 16000)
    assert mouth.shape == (25,)
    assert np.all(mouth[10:15] > 0.5) and np.all(mouth[:10] == 0) and np.all(mouth[15:] == 0)


def test_revoice_keeps_the_words_in_place():
    """The re-voiced span says the clip's own words: its loudness follows the original's
    (the same text at the same pace), unlike a splice of other words."""
    def span_envelopes(kind):
        base = ClipSpec(seed=(4, 5, 6), n_frames=125, fps=25.0, size=32, sample_rate=16000,
                        spans=(), speech="espeak")
        forged = ClipSpec(**{**base.__dict__, "spans": (ForgedSpan("audio", kind, 10, 115),)})
        a, b = base.sample_index(10), base.sample_index(115)
        env = [envelope_mouth_opening(make_clip(s).audio[a:b], 105, 25.0, 16000)
               for s in (base, forged)]
        return np.corrcoef(env[0], env[1])[0, 1]

    assert span_envelopes("revoice") > 0.5
    assert span_envelopes("revoice") > span_envelopes("splice") + 0.2


def test_missing_engine_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    tts.engine.cache_clear()
    try:
        with pytest.raises(tts.EspeakUnavailable, match=r"espeakng-loader.*formant"):
            tts.engine()
        assert not tts.espeak_available()
    finally:
        tts.engine.cache_clear()
