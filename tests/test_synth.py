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
from data.synth.forgeries import AUDIO_FORGERIES, VISUAL_FORGERIES
from data.synth.speech import SyllablePlan, mouth_opening
from pipeline.cli import main
from pipeline.synth import SPLITS, SynthConfig, merge_periods, split_sizes, synth_dataset

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
