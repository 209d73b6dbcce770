"""Speech from a real text-to-speech engine (eSpeak NG), for clips whose audio should carry
real phonetics: words of a real language, their coarticulation, stress and phrase prosody.

Why: the additive formant synthesis of `data/synth/speech.py` draws a random vowel per
syllable, so nothing in one frame predicts the next; real speech is words, and an
autoencoder trained on authentic speech can predict much of it from context. On recorded
speech the FDN's audio reconstruction error marked forged audio at 0.80 / 0.996 frame AUC
(seen / held-out types; the project's held-out real-footage benchmark), on the formant
speech at 0.50 / 0.56. With this engine, measured on three demo seeds (BENCHMARKS.md,
"Real words in the synth"), the audio head stops ranking forged audio below authentic
(0.47 -> 0.56) and the reconstruction error marks held-out time stretch at 0.65; re-voiced
spans stay hard for log-mel features (a frame-supervised probe 0.60-0.63 with either
engine). A TTS engine is also what made the audio forgeries of LAV-DF (replaced words
spoken by a TTS voice).

The engine: eSpeak NG, a rule-based formant synthesiser, loaded through the
`espeakng-loader` wheel (the shared library and its language data ship inside it, so
nothing is downloaded at run time; eSpeak NG is GPL-3.0, used as a separate library, and
rtdl installs the wheel as a dependency). Bindings are ctypes on its
C API (`espeak_Initialize` in synchronous mode, a callback collecting the 16-bit samples).

A voice here is an eSpeak accent ("en", "en-us", ...), a voice variant (its formant and
timbre set: m1-m7, f1-f5, ...), a base pitch and pitch range (0-100, eSpeak's scale) and a
rate in words per minute. Text is a random sequence of common English words with commas
and full stops, so the engine's phrase prosody and pauses appear.

Not bit-exact across runs. eSpeak holds global state, so one synthesis runs at a time per
process (a lock), each in a forked child so that the samples do not depend on what was
said before in the process (`_Engine.speak`); without that, the same call changed even its
length on a second run. Within one process the same call then gives the same samples. From
one process run to the next, some utterances still come out slightly different (measured:
the same utterance in six fresh processes, one of the six differed from the sample 308 on,
by up to 5 % of the peak; `benchmarks/espeak_repeatability.py`: 3 of 10 clips differed in
every fresh run, the other 7 never; the cause inside the library was not found). A seed therefore
fixes the words, voices, spans and labels of an `espeak` clip, not every sample; rtdl
synth's default speech stays the bit-exact "formant".
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from dataclasses import dataclass

import numpy as np

ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
# common English words, content and function words mixed, so the prosody has both
WORDS = tuple("""
the a of and to in is was he she it they we you that this for on with as at by from
his her their our not but or an be have had has do did said will would can could
time year people way day man woman child world life hand part place case week company
system program question work government number night point home water room mother area
money story fact month lot right study book eye job word business issue side kind head
house service friend father power hour game line end member law car city community name
president team minute idea kid body information back parent face others level office door
health person art war history party result change morning reason research girl guy moment
air teacher force education good new first last long great little own other old big high
different small large next early young important few public bad same able know get make
go see come think look want give use find tell ask seem feel try leave call keep let
begin help talk turn start show hear play run move like live believe hold bring happen
write provide sit stand lose pay meet include continue set learn lead understand watch
follow stop create speak read allow add spend grow open walk win offer remember love
consider appear buy wait serve die send expect build stay fall cut reach kill remain
river mountain garden window morning evening summer winter yellow purple orange silver
""".split())

_RATE_PARAM = 1  # espeakRATE
_PITCH_PARAM = 3  # espeakPITCH
_RANGE_PARAM = 4  # espeakRANGE
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: espeak_Synth returns when all audio is delivered
_POS_CHARACTER = 1
_RAND_SEED = 1  # eSpeak draws its noise from libc's rand: seeded the same for every utterance
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


@dataclass(frozen=True)
class TtsVoice:
    accent: str  # eSpeak language/accent name, one of ACCENTS
    variant: str  # eSpeak voice variant, one of VARIANTS
    pitch: int  # base pitch, 0-100 (eSpeak's scale; 50 is the default)
    pitch_range: int  # intonation range, 0-100 (0: monotone)
    rate_wpm: int  # speaking rate, words per minute

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


def random_tts_voice(rng: np.random.Generator) -> TtsVoice:
    return TtsVoice(accent=str(rng.choice(ACCENTS)), variant=str(rng.choice(VARIANTS)),
                    pitch=int(rng.integers(25, 76)), pitch_range=int(rng.integers(30, 91)),
                    rate_wpm=int(rng.integers(140, 201)))


def random_text(rng: np.random.Generator, n_words: int) -> str:
    """`n_words` common words in phrases of 2-7, separated by commas and full stops."""
    words, phrase = [], 0
    for i in range(n_words):
        word = str(rng.choice(WORDS))
        phrase += 1
        last = i == n_words - 1
        if last or (phrase >= 2 and rng.random() < 0.25):
            word += "." if last or rng.random() < 0.4 else ","
            phrase = 0
        words.append(word)
    return " ".join(words)


def words_needed(duration_s: float, voice: TtsVoice) -> int:
    """Enough words to cover `duration_s` at the voice's rate, with room for pauses."""
    return max(2, int(np.ceil(duration_s * voice.rate_wpm / 60 * 1.3)) + 2)


class EspeakUnavailable(RuntimeError):
    pass


class _Engine:
    """The loaded library, initialised once per process."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as error:
            raise EspeakUnavailable(
                "speech='espeak' needs eSpeak NG: pip install espeakng-loader (rtdl's "
                "dependencies include it), or synthesise with speech='formant'") from error
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = int(self.lib.espeak_Initialize(
            _SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0))
        if self.sample_rate <= 0:
            raise EspeakUnavailable(f"eSpeak NG failed to initialise (returned {self.sample_rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive: eSpeak holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or None)  # srand for eSpeak's rand

    def _collect(self, samples, count, _events) -> int:
        if count > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0: go on synthesising

    def speak(self, text: str, voice: TtsVoice) -> np.ndarray:
        """int16 samples at `self.sample_rate` of `voice` saying `text`, the same whatever
        was synthesised before in this process (not always across processes: module doc).

        eSpeak NG keeps state across utterances (its pitch flutter and noise generators,
        libc's `rand`), which `espeak_Terminate` does not reset: the same call gives other
        samples on its second run in a process. So each utterance is synthesised in a
        forked child of this process, whose library state is always the one right after
        initialisation, with `rand` seeded the same; the child sends the samples back
        through a pipe. Where there is no fork (Windows), it runs here and is repeatable
        only within the same sequence of calls.
        """
        with self.lock:
            if not hasattr(os, "fork"):
                return self._synthesise(text, voice)
            return self._synthesise_in_child(text, voice)

    def _synthesise(self, text: str, voice: TtsVoice) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice.name!r}")
        self.lib.espeak_SetParameter(_RATE_PARAM, int(voice.rate_wpm), 0)
        self.lib.espeak_SetParameter(_PITCH_PARAM, int(voice.pitch), 0)
        self.lib.espeak_SetParameter(_RANGE_PARAM, int(voice.pitch_range), 0)
        self._chunks = []
        self.libc.srand(_RAND_SEED)
        data = text.encode()
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        if status != 0:
            raise RuntimeError(f"eSpeak NG espeak_Synth failed with status {status}")
        self.lib.espeak_Synchronize()
        chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def _synthesise_in_child(self, text: str, voice: TtsVoice) -> np.ndarray:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: synthesise, write, leave without running any cleanup
            code = 1
            try:
                os.close(read_end)
                payload = self._synthesise(text, voice).astype("<i2").tobytes()
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(len(payload).to_bytes(8, "little") + payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            raw = pipe.read()
        _, status = os.waitpid(pid, 0)
        size = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
        if status != 0 or size != len(raw) - 8:
            raise RuntimeError(f"eSpeak NG synthesis of voice {voice.name!r} failed in its "
                               f"child process (exit status {status}, {len(raw)} bytes back)")
        return np.frombuffer(raw[8:], dtype="<i2").astype(np.int16)


@functools.lru_cache(maxsize=1)
def engine() -> _Engine:
    return _Engine()


def espeak_available() -> bool:
    try:
        engine()
    except EspeakUnavailable:
        return False
    return True


def tts_speech(voice: TtsVoice, text: str, n_samples: int, sample_rate: int,
               lead_in_s: float) -> np.ndarray:
    """Dry speech of `voice` saying `text`, starting after `lead_in_s` of silence, resampled
    to `sample_rate` and cut or zero-padded to `n_samples`: float32 [S], peak about 0.5."""
    from scipy.signal import resample_poly

    tts = engine()
    raw = tts.speak(text, voice).astype(np.float32) / 32768.0
    divisor = np.gcd(int(sample_rate), tts.sample_rate)
    wave = resample_poly(raw, sample_rate // divisor, tts.sample_rate // divisor).astype(np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 0:
        wave *= 0.5 / peak
    out = np.zeros(n_samples, np.float32)
    start = min(n_samples, int(round(lead_in_s * sample_rate)))
    piece = wave[:n_samples - start]
    out[start:start + len(piece)] = piece
    return out


def envelope_mouth_opening(dry: np.ndarray, n_frames: int, fps: float, sample_rate: int
                           ) -> np.ndarray:
    """How far the mouth is open in each video frame from the dry speech's loudness:
    float32 [T] in [0, 1], the frame's RMS over the clip's 95th percentile of frame RMS."""
    bounds = np.minimum(np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64),
                        len(dry))
    energy = np.concatenate([[0.0], np.cumsum(np.square(dry, dtype=np.float64))])  # [S + 1]
    rms = np.sqrt(np.diff(energy[bounds]) / np.maximum(np.diff(bounds), 1))  # [T]
    top = float(np.percentile(rms, 95)) if rms.size else 0.0
    return np.clip(rms / max(top, 1e-6), 0, 1).astype(np.float32)
