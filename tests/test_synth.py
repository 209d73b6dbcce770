"""Tests for `rtdl synth`: metadata vs. written frames, determinism, held-out types, classes."""
from __future__ import annotations

import json
from pathlib import Path

import decord
import numpy as np
import pytest
from click.testing import CliRunner

from data.metadata import load_metadata
from data.labels import LABELS
from data.synth.clip import SPEECH_ENGINES, ClipSpec, ForgedSpan, make_clip, place_segments
from data.synth.forgeries import (AUDIO_FORGERIES, VISUAL_FORGERIES, AudioContext,
                                  VisualContext, colour_grade_matrix, face_recolour,
                                  phase_vocoder, pitch_shift)
from data.synth.scene import face_mask, random_track, render_frames
from data.synth.speaker import random_look
from data.synth.speech import SyllablePlan, mouth_opening
from pipeline.cli import main
from pipeline.synth import (SPLITS, SynthConfig, merge_periods, plan_dataset, split_sizes,
                            synth_dataset)

# tiny but valid: 16 clips (4 per split, one per class), 1.6-2.0 s at 32 px
TINY = dict(duration_s=(1.6, 2.0), size=32, segment_s=(0.2, 0.8))
FPS = 25.0


def decode(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()  # [T, H, W, 3] uint8


@pytest.fixture(scope="module")
def lossless_set(tmp_path_factory) -> Path:
    """A set whose held-out visual type is frozen_frames, encoded losslessly (crf 0), so
    every test_unseen visual forgery is a freeze whose frames must decode identical."""
    out = tmp_path_factory.mktemp("synth_lossless")
    return synth_dataset(out, 16, 5, progress=False, crf=0,
                         unseen_types=("frozen_frames", "spectral_smooth"), **TINY)


def test_split_sizes_by_hand():
    assert split_sizes(16, (0.6, 0.1, 0.15, 0.15)) == [4, 4, 4, 4]
    # spare 84 -> 50.4, 8.4, 12.6, 12.6 -> floors 50, 8, 12, 12 and the two .6 get the rest
    assert split_sizes(100, (0.6, 0.1, 0.15, 0.15)) == [54, 12, 17, 17]


def test_merge_periods_by_hand():
    assert merge_periods([(2.0, 3.0), (0.4, 1.0), (0.8, 1.2), (1.2, 1.6)]) == [[0.4, 1.6],
                                                                               [2.0, 3.0]]
    assert merge_periods([]) == []


def test_place_segments_non_overlapping_with_gaps():
    rng = np.random.default_rng(0)
    for _ in range(200):
        segments = place_segments(50, 3, 5, 20, rng)
        assert 1 <= len(segments) <= 3
        assert segments[0][0] >= 1 and segments[-1][1] <= 49  # edge frames stay genuine
        for (a, b), (c, _) in zip(segments, segments[1:]):
            assert c - b >= 2  # SPAN_GAP_FRAMES
        assert all(5 <= b - a <= 20 for a, b in segments)


def test_mouth_follows_syllables():
    # one syllable of vowel 'a' from 0.2 s to 0.4 s: frames 5..9 at 25 fps open, rest closed
    plan = SyllablePlan(onsets_s=np.array([0.2]), durations_s=np.array([0.2]),
                        vowels=np.array([0]), accents=np.array([0.0]),
                        consonant=np.array([False]))
    mouth = mouth_opening(plan, 15, FPS, 16000)
    assert np.all(mouth[5:10] > 0.1)
    assert np.all(mouth[:5] == 0) and np.all(mouth[10:] == 0)


@pytest.mark.parametrize("speech", SPEECH_ENGINES)
@pytest.mark.parametrize("kind", sorted(VISUAL_FORGERIES) + sorted(AUDIO_FORGERIES))
def test_forgery_changes_only_its_span(kind, speech):
    """The same clip with and without one forged span differs exactly inside the span."""
    modality = "visual" if kind in VISUAL_FORGERIES else "audio"
    start, stop = 12, 27
    base = ClipSpec(seed=(1, 2, 3), n_frames=40, fps=FPS, size=32, sample_rate=16000, spans=(),
                    speech=speech)
    forged_spec = ClipSpec(**{**base.__dict__, "spans": (ForgedSpan(modality, kind, start, stop),)})
    clean, forged = make_clip(base), make_clip(forged_spec)
    if modality == "visual":
        changed = np.abs(clean.frames.astype(int) - forged.frames).reshape(40, -1).max(1) > 0
        assert not changed[:start].any() and not changed[stop:].any()
        # frozen frames keeps the span's first frame; every other kind alters most frames
        assert changed[start + 1:stop].mean() > 0.5
        assert np.array_equal(clean.audio, forged.audio)
    else:
        a, b = base.sample_index(start), base.sample_index(stop)
        assert (a, b) == (start * 640, stop * 640)
        assert np.array_equal(clean.audio[:a], forged.audio[:a])
        assert np.array_equal(clean.audio[b:], forged.audio[b:])
        assert np.abs(clean.audio[a:b] - forged.audio[a:b]).mean() > 1e-3
        assert np.array_equal(clean.frames, forged.frames)


def test_metadata_passes_reader_and_matches_files(lossless_set):
    meta_path = lossless_set
    raw = json.loads(meta_path.read_text())
    records = load_metadata(meta_path)
    assert len(records) == len(raw) == 16
    for rec, entry in zip(records, raw):
        assert rec.fps == FPS and rec.n_frames == entry["video_frames"]
        assert rec.duration == pytest.approx(rec.n_frames / FPS)
        assert entry["audio_frames"] == round(rec.duration * 16000)
        assert len(decode(meta_path.parent / rec.file)) == rec.n_frames
        periods = list(rec.visual_fake_segments) + list(rec.audio_fake_segments)
        assert bool(rec.visual_fake_segments) == entry["modify_video"]
        assert bool(rec.audio_fake_segments) == entry["modify_audio"]
        for start, end in periods:  # frame-aligned, 0.2-0.8 s long, inside the clip
            assert start * FPS == pytest.approx(round(start * FPS), abs=1e-9)
            assert end * FPS == pytest.approx(round(end * FPS), abs=1e-9)
            assert 5 <= round((end - start) * FPS) <= 20
            assert 0 < start < end < rec.duration
        assert len(entry["visual_forgery_types"]) == len(rec.visual_fake_segments)
        assert len(entry["audio_forgery_types"]) == len(rec.audio_fake_segments)
    for split in SPLITS:  # all four classes in every split
        assert {r.label for r in records if r.split == split} == set(range(len(LABELS)))


def test_frozen_frames_identical_exactly_inside_label(lossless_set):
    meta_path = lossless_set
    checked = 0
    for entry in json.loads(meta_path.read_text()):
        frames = decode(meta_path.parent / entry["file"]).astype(np.int16)
        same_as_previous = np.all(frames[1:] == frames[:-1], axis=(1, 2, 3))  # [T-1]
        frozen = np.zeros(len(frames), dtype=bool)  # frame i equals frame i-1
        frozen[1:] = same_as_previous
        expected = np.zeros(len(frames), dtype=bool)
        for (start, end), kind in zip(entry["visual_fake_periods"],
                                      entry["visual_forgery_types"]):
            if kind == "frozen_frames":
                first, stop = round(start * FPS), round(end * FPS)
                expected[first + 1:stop] = True  # the run starts at the first forged frame
                checked += 1
        np.testing.assert_array_equal(frozen, expected, err_msg=entry["file"])
    assert checked >= 2  # test_unseen holds a visual-only and a both clip


def test_unseen_split_holds_only_heldout_types(lossless_set):
    held_out = {"frozen_frames", "spectral_smooth"}
    for entry in json.loads(lossless_set.read_text()):
        types = set(entry["forgery_types"])
        assert types == set(entry["visual_forgery_types"]) | set(entry["audio_forgery_types"])
        assert bool(types) == bool(entry["fake_periods"])
        if entry["split"] == "test_unseen":
            assert types <= held_out
        else:
            assert not types & held_out


def test_same_seed_same_files_cli_and_function(tmp_path):
    options = ["--num-videos", "16", "--seed", "11", "--duration", "1.6", "--size", "32",
               "--segment", "0.2,0.6"]
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "a")] + options)
    assert result.exit_code == 0, result.output
    assert "s per clip" in result.output
    synth_dataset(tmp_path / "b", 16, 11, progress=False, duration_s=(1.6, 1.6), size=32,
                  segment_s=(0.2, 0.6))
    meta_a = (tmp_path / "a" / "metadata.json").read_bytes()
    assert meta_a == (tmp_path / "b" / "metadata.json").read_bytes()
    for entry in json.loads(meta_a):
        path_a, path_b = tmp_path / "a" / entry["file"], tmp_path / "b" / entry["file"]
        assert path_a.read_bytes() == path_b.read_bytes()
    first = json.loads(meta_a)[0]["file"]
    np.testing.assert_array_equal(decode(tmp_path / "a" / first), decode(tmp_path / "b" / first))
    # and another seed gives another dataset
    synth_dataset(tmp_path / "c", 16, 12, progress=False, duration_s=(1.6, 1.6), size=32,
                  segment_s=(0.2, 0.6))
    assert (tmp_path / "c" / "metadata.json").read_bytes() != meta_a


@pytest.mark.parametrize("options, field", [
    (dict(unseen_types=("warp",)), "unseen_types"),
    (dict(unseen_types=("face_blur",)), "unseen_types"),  # no held-out audio type
    (dict(unseen_types=tuple(VISUAL_FORGERIES) + ("splice",)), "unseen_types"),
    (dict(size=47), "size"),
    (dict(size=48), "size"),  # decord cannot read 48x48 back
    (dict(duration_s=(0.2, 0.3)), "duration_s"),
    (dict(colour="red"), "colour"),
    (dict(speech="robot"), "speech"),
    (dict(validation_types=("warp",)), "validation_types"),
    (dict(validation_types=("face_blur", "pitch_shift")), "validation_types"),  # also unseen
    (dict(validation_types=("mouth_resync", "face_swap", "frozen_frames")),
     "validation_types"),  # with face_blur unseen, no seen visual type is left
    (dict(validation_types=("pitch_shift",), validation_share=1.5), "validation_share"),
    (dict(validation_types=("pitch_shift",), validation_share=-0.1), "validation_share"),
])
def test_bad_settings_name_the_field(tmp_path, options, field):
    with pytest.raises(ValueError, match=field):
        synth_dataset(tmp_path, 16, 0, progress=False, **options)
    assert not (tmp_path / "metadata.json").exists()


def test_too_few_videos_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path), "--num-videos", "8"])
    assert result.exit_code != 0 and "num_videos" in result.output


def test_default_config_holds_out_one_visual_and_one_audio_type():
    cfg = SynthConfig()
    assert len(cfg.unseen_visual) == 1 and len(cfg.unseen_audio) == 1
    assert set(cfg.seen_visual).isdisjoint(cfg.unseen_types)


# ---------------------------------------------------------------- the two opt-in forgeries


def scene(seed: int, n_frames: int = 30, size: int = 64):
    """A rendered speaker without sensor noise: (look, track, frames [T, H, W, 3] float32)."""
    rng = np.random.default_rng(seed)
    look = random_look(rng, size)
    mouth = np.abs(np.sin(np.arange(n_frames) / 3)).astype(np.float32)
    track = random_track(mouth, FPS, size, rng, n_sprites=len(look.sprites))
    return look, track, render_frames(look, track, size)


def recoloured(look, track, frames, start, stop, seed) -> np.ndarray:
    ctx = VisualContext(look=look, track=track, noise=np.zeros_like(frames), donor_look=look,
                        donor_mouth=track.mouth_open, size=frames.shape[1],
                        rng=np.random.default_rng(seed))
    out = frames.copy()
    face_recolour(out, start, stop, ctx)
    return out


def test_colour_grade_matrix_turns_hue_and_scales_saturation_only():
    np.testing.assert_allclose(colour_grade_matrix(0.0, 1.0), np.eye(3), atol=1e-6)
    matrix = colour_grade_matrix(40.0, 1.5)
    np.testing.assert_allclose(matrix @ np.full(3, 100.0), np.full(3, 100.0), rtol=1e-5)  # grey
    colour = np.array([200.0, 120.0, 80.0])
    chroma, graded = colour - colour.mean(), matrix @ colour - (matrix @ colour).mean()
    assert (matrix @ colour).mean() == pytest.approx(colour.mean(), rel=1e-5)  # brightness
    assert np.linalg.norm(graded) == pytest.approx(1.5 * np.linalg.norm(chroma), rel=1e-5)
    angle = np.degrees(np.arccos(graded @ chroma / np.linalg.norm(graded) / np.linalg.norm(chroma)))
    assert angle == pytest.approx(40.0, abs=1e-3)


def test_face_recolour_changes_only_the_face_in_its_span():
    look, track, frames = scene(3)
    start, stop = 8, 21
    out = recoloured(look, track, frames, start, stop, seed=0)
    assert np.array_equal(out[:start], frames[:start]) and np.array_equal(out[stop:], frames[stop:])
    mask = face_mask(look, track.slice(start, stop), frames.shape[1])  # [T, H, W]
    change = np.abs(out[start:stop] - frames[start:stop]).max(-1)  # [T, H, W]
    assert not change[mask == 0].any()  # nothing outside the face
    assert change[mask > 0.9].mean() > 5  # clearly visible on the face (0-255 levels)
    # a colour change only: each pixel keeps its brightness (mean of R, G, B)
    np.testing.assert_allclose(out.mean(-1), frames.mean(-1), atol=1e-3)


def test_face_recolour_is_a_function_of_the_context_rng():
    look, track, frames = scene(4)
    first = recoloured(look, track, frames, 5, 20, seed=7)
    assert np.array_equal(first, recoloured(look, track, frames, 5, 20, seed=7))
    assert not np.array_equal(first, recoloured(look, track, frames, 5, 20, seed=8))


SR = 16000


def gated_tone(seconds: float = 2.0, hz: float = 440.0) -> np.ndarray:
    """A 440 Hz tone switched on and off 3 times a second: a pitch and a tempo to measure."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


def shifted(wave: np.ndarray, start: int, stop: int, seed: int,
            room_noise: np.ndarray | None = None) -> np.ndarray:
    noise = np.zeros_like(wave) if room_noise is None else room_noise
    empty = np.zeros(0, np.float32)  # pitch_shift uses no donor
    ctx = AudioContext(sample_rate=SR, room_noise=noise, donor_dry_same_words=empty,
                       donor_clip=empty, rng=np.random.default_rng(seed))
    out = wave.copy()
    pitch_shift(out, start, stop, ctx)
    return out


def peak_hz(x: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * SR / len(x))


def envelope(x: np.ndarray) -> np.ndarray:
    return np.convolve(np.abs(x), np.ones(400) / 400, "same")  # 25 ms moving mean


def test_phase_vocoder_keeps_the_input_at_rate_one_and_the_pitch_at_other_rates():
    x = np.random.default_rng(0).normal(size=8000).astype(np.float32)
    np.testing.assert_allclose(phase_vocoder(x, len(x), 1.0), x, atol=1e-4)
    tone = gated_tone(1.0)
    slow = phase_vocoder(tone, 2 * len(tone), 0.5)  # twice as long, same pitch
    assert len(slow) == 2 * len(tone)
    assert peak_hz(slow) == pytest.approx(440, abs=3)


@pytest.mark.parametrize("seed", range(6))
def test_pitch_shift_moves_pitch_not_tempo_loudness_or_outside(seed):
    wave = gated_tone()
    noise = np.random.default_rng(seed).normal(0, 0.01, len(wave)).astype(np.float32)
    start, stop = 8000, 24000  # 0.5-1.5 s
    out = shifted(wave + noise, start, stop, seed, room_noise=noise)
    assert out.shape == wave.shape
    assert np.array_equal(out[:start], (wave + noise)[:start])
    assert np.array_equal(out[stop:], (wave + noise)[stop:])
    voice, original = out[start:stop] - noise[start:stop], wave[start:stop]
    semitones = 12 * np.log2(peak_hz(voice) / 440)
    assert 1.8 <= abs(semitones) <= 5.2  # 2-5 semitones, up to the spectrum's resolution
    # the bursts stay where they were (a plain resample would move them) at the same level
    assert np.corrcoef(envelope(voice), envelope(original))[0, 1] > 0.95
    assert np.std(voice) == pytest.approx(np.std(original), rel=0.15)


def test_pitch_shift_is_a_function_of_the_context_rng_and_goes_both_ways():
    wave = gated_tone()
    assert np.array_equal(shifted(wave, 4000, 20000, 3), shifted(wave, 4000, 20000, 3))
    directions = {np.sign(np.log2(peak_hz(shifted(wave, 4000, 20000, seed)[4000:20000]) / 440))
                  for seed in range(8)}
    assert directions == {-1.0, 1.0}


# ---------------------------------------------------------------- validation types in the plan

VALIDATION = ("face_recolour", "pitch_shift")


def kinds_of(clip) -> set[str]:
    return {span.kind for span in clip.spec.spans}


def test_default_plan_is_unchanged_by_the_validation_fields():
    base = dict(num_videos=100, seed=3, unseen_types=("frozen_frames", "spectral_smooth"))
    default = plan_dataset(SynthConfig(**base))
    assert default == plan_dataset(SynthConfig(**base, validation_types=()))
    assert default == plan_dataset(SynthConfig(**base, validation_types=(), validation_share=0.9))
    assert not set().union(*map(kinds_of, plan_dataset(SynthConfig(num_videos=200)))) \
        & set(VALIDATION)


def test_default_plan_is_the_one_seeds_had_before_the_opt_in_types():
    """Seed 0's 16-clip plan as written before face_recolour and pitch_shift existed:
    adding a forgery type to the registries must not change what an old seed makes."""
    expected = [
        "2 122 splice:47-87", "0 142", "1 126 face_swap:3-37 frozen_frames:41-84 face_swap:86-109",
        "3 102 frozen_frames:1-30 face_swap:48-59 face_swap:63-89 splice:47-86",
        "3 150 face_swap:110-130 revoice:8-27 splice:30-61 revoice:77-123",
        "2 119 spectral_smooth:3-46 revoice:57-74 splice:77-118",
        "1 142 mouth_resync:2-32 frozen_frames:96-132", "0 108",
        "1 131 mouth_resync:1-34 frozen_frames:38-76 face_swap:93-130",
        "3 118 frozen_frames:76-110 splice:76-110", "0 144", "2 102 revoice:38-70", "0 118",
        "2 139 time_stretch:19-41",
        "3 103 face_blur:1-13 face_blur:30-71 face_blur:75-80 time_stretch:1-13 "
        "time_stretch:30-71 time_stretch:75-80",
        "1 129 face_blur:2-45 face_blur:101-108",
    ]
    got = [" ".join([str(c.label), str(c.spec.n_frames)]
                    + [f"{s.kind}:{s.start_frame}-{s.stop_frame}" for s in c.spec.spans])
           for c in plan_dataset(SynthConfig(num_videos=16, seed=0))]
    assert got == expected


def test_validation_types_only_in_dev_beside_seen_fakes():
    cfg = SynthConfig(num_videos=200, seed=1, validation_types=VALIDATION)
    validation_clips = seen_fakes = 0
    for clip in plan_dataset(cfg):
        kinds = kinds_of(clip)
        if clip.split != "dev":
            assert not kinds & set(VALIDATION), clip.file
        elif kinds:
            # both modalities have validation types, so a clip is one kind or the other
            assert kinds <= set(VALIDATION) or not kinds & set(VALIDATION), clip.file
            validation_clips += kinds <= set(VALIDATION)
            seen_fakes += not kinds & set(VALIDATION)
            if kinds <= set(VALIDATION):  # every forged modality uses its validation type
                for span in clip.spec.spans:
                    assert span.kind == ("face_recolour" if span.modality == "visual"
                                         else "pitch_shift")
    assert validation_clips >= 3 and seen_fakes >= 3


def test_a_modality_without_validation_types_keeps_the_seen_ones():
    cfg = SynthConfig(num_videos=200, seed=2, validation_types=("face_recolour",),
                      validation_share=1.0)
    dev = [clip for clip in plan_dataset(cfg) if clip.split == "dev"]
    for clip in dev:
        for span in clip.spec.spans:
            if span.modality == "visual":
                assert span.kind == "face_recolour"  # share 1: every fake dev clip
            else:
                assert span.kind in cfg.seen_audio
    assert any(span.modality == "audio" for clip in dev for span in clip.spec.spans)


def test_validation_share_zero_keeps_dev_seen_and_positions_never_move():
    default = plan_dataset(SynthConfig(num_videos=100, seed=4))
    for share in (0.0, 0.5):
        plan = plan_dataset(SynthConfig(num_videos=100, seed=4, validation_types=VALIDATION,
                                        validation_share=share))
        if share == 0.0:
            assert not set().union(*map(kinds_of, plan)) & set(VALIDATION)
        # only the forgery names may change: files, classes, lengths and spans stay
        def layout(clip):
            spans = [(s.modality, s.start_frame, s.stop_frame) for s in clip.spec.spans]
            return clip.file, clip.label, clip.spec.n_frames, spans

        assert [layout(clip) for clip in default] == [layout(clip) for clip in plan]


def test_cli_validation_types_reach_dev_records_and_synth_config(tmp_path):
    result = CliRunner().invoke(main, [
        "synth", "--out", str(tmp_path), "--num-videos", "16", "--seed", "2", "--duration",
        "1.6,2", "--size", "32", "--segment", "0.2,0.8", "--validation-types",
        "face_recolour,pitch_shift", "--validation-share", "1"])
    assert result.exit_code == 0, result.output
    assert "held out for dev validation: face_recolour, pitch_shift" in result.output
    config = json.loads((tmp_path / "synth_config.json").read_text())["config"]
    assert config["validation_types"] == list(VALIDATION) and config["validation_share"] == 1.0
    for entry in json.loads((tmp_path / "metadata.json").read_text()):
        types = set(entry["forgery_types"])
        if entry["split"] == "dev" and entry["fake_periods"]:
            assert types and types <= set(VALIDATION), entry["file"]
        else:
            assert not types & set(VALIDATION), entry["file"]
