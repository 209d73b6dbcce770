"""Tests for extractors/decode.py on generated clips (decord, ffmpeg fallback, audio)."""
import numpy as np
import pytest

from extractors.decode import DecodeError, VideoStream, decode_audio, probe, resample_wave
from media import make_clip, make_corrupt, make_vfr_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    return {"tone": make_clip(root / "tone.mp4", 1.0, size=(64, 48)),
            "silent": make_clip(root / "silent.mp4", 0.6, audio=None),
            "vfr": make_vfr_clip(root / "vfr.mp4"),
            "bad": make_corrupt(root / "bad.mp4")}


def test_probe_reads_streams(clips):
    facts = probe(clips["tone"])
    assert (facts["width"], facts["height"], facts["fps"]) == (64, 48, 25.0)
    assert facts["has_video"] and facts["has_audio"] and abs(facts["duration"] - 1.0) < 0.05
    assert not probe(clips["silent"])["has_audio"]


@pytest.mark.parametrize("backend", ["decord", "ffmpeg"])
def test_video_streams_in_bounded_chunks(clips, backend):
    stream = VideoStream(clips["tone"], chunk_frames=8, backend=backend)
    chunks = list(stream)
    assert [c.shape[0] for c in chunks] == [8, 8, 8, 1]  # 25 frames, never more than 8 at once
    assert chunks[0].shape[1:] == (48, 64, 3) and chunks[0].dtype == np.uint8
    info = stream.info
    assert (info.n_frames, info.fps, info.duration, info.width, info.height) == (25, 25.0, 1.0, 64, 48)
    # decord's path spawns no `ffmpeg -i`: audio presence is decode_audio's to find out
    assert info.has_audio is (None if backend == "decord" else True)
    assert info.backend == backend and info.frame_starts is None


def test_fallback_decodes_the_same_frames(clips):
    via_decord = np.concatenate(list(VideoStream(clips["tone"], backend="decord")))
    via_ffmpeg = np.concatenate(list(VideoStream(clips["tone"], backend="ffmpeg")))
    assert via_decord.shape == via_ffmpeg.shape
    # same codec, possibly different yuv->rgb rounding
    assert np.abs(via_decord.astype(int) - via_ffmpeg.astype(int)).mean() < 2.0


def test_variable_frame_rate_gets_frame_starts(clips):
    info = VideoStream(clips["vfr"]).info
    assert info.n_frames == 20 and info.frame_starts is not None
    gaps = np.diff(info.frame_starts)
    assert gaps[:8].max() < 0.05 and gaps[-5:].min() > 0.05  # 40 ms frames, then slower ones
    assert info.fps == pytest.approx(info.n_frames / info.duration)


def test_audio_is_16k_mono_float(clips):
    wave, has_audio = decode_audio(clips["tone"])
    assert has_audio and wave.dtype == np.float32
    assert abs(wave.size - 16000) < 1100  # aac priming/padding: within a frame of 1024 samples
    # a 440 Hz tone: the spectrum peaks at 440 Hz
    spectrum = np.abs(np.fft.rfft(wave[:16000 if wave.size >= 16000 else wave.size]))
    assert abs(np.argmax(spectrum) * 16000 / min(wave.size, 16000) - 440) < 5


def test_no_audio_stream_gives_silence_and_warns(clips, caplog):
    wave, has_audio = decode_audio(clips["silent"])
    assert not has_audio and wave.shape == (9600,) and not wave.any()
    assert "no audio stream" in caplog.text


def test_corrupt_file_raises_decode_error_naming_it(clips):
    with pytest.raises(DecodeError, match="bad.mp4"):
        VideoStream(clips["bad"])
    with pytest.raises(DecodeError, match="no such file"):
        VideoStream(clips["bad"].with_name("missing.mp4"))


def test_resample_wave_changes_length():
    wave = np.sin(np.linspace(0, 100, 8000)).astype(np.float32)
    assert resample_wave(wave, 8000, 16000).shape == (16000,)


def test_decord_path_and_audio_spawn_no_probe(clips, monkeypatch):
    """Per-clip overhead (issue 13): decord's path and the audio decode must not run a
    separate `ffmpeg -i`; audio presence comes from the decoding ffmpeg itself."""
    import extractors.decode as decode

    def no_probe(path):
        raise AssertionError(f"probe({path}) ran")

    monkeypatch.setattr(decode, "probe", no_probe)
    stream = VideoStream(clips["tone"])
    assert sum(len(c) for c in stream) == 25 and stream.info.has_audio is None
    wave, has_audio = decode_audio(clips["tone"], duration=stream.info.duration)
    assert has_audio and wave.size > 15000
    silent = VideoStream(clips["silent"])
    wave, has_audio = decode_audio(clips["silent"], duration=silent.info.duration)
    assert not has_audio and wave.shape == (9600,) and not wave.any()
