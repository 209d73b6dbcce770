"""Tests for pipeline/extract.py on generated clips with stand-in extractors."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data.cache import FeatureCache, merge_caches, parts_dir, shard_path
from extractors.align import pool_to_frames
from extractors.decode import VideoStream, decode_audio
from fake_extractors import MeanColourVisual, RmsAudio
from media import make_clip, make_corrupt
from pipeline.extract import collect_videos, resolve_shard, run_extraction
from pipeline.options import ExtractionOptions
from pipeline.video_features import extract_video_features

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
OPTS = ExtractionOptions(chunk_frames=8, flush_every=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "tone": make_clip(root / "a" / "tone.mp4", 1.0),
        "noise": make_clip(root / "b" / "noise.mp4", 0.6, audio="noise"),
        "silent": make_clip(root / "b" / "silent.mp4", 0.4, audio=None),
        "short_audio": make_clip(root / "c" / "short_audio.mp4", 1.0, audio_seconds=0.4),
        "bad": make_corrupt(root / "c" / "bad.mp4"),
        "root": root,
    }


def _extract(path):
    return extract_video_features(path, MeanColourVisual(), RmsAudio(), chunk_frames=8)


def test_single_video_shapes_and_alignment(clips):
    visual, audio, info = _extract(clips["tone"])
    assert visual.shape == (25, 4) and audio.shape == (25, 2)
    assert (info["fps"], info["n_frames"], info["duration"], info["has_audio"]) == (25.0, 25, 1.0, True)
    # chunks of 8 frames arrive in order: the stand-in numbers frames consecutively
    np.testing.assert_array_equal(visual[:, 3], np.arange(25))
    # 20 ms audio hops -> two per 40 ms frame, averaged
    wave, _ = decode_audio(clips["tone"])
    feats, centres = RmsAudio()(wave)
    np.testing.assert_allclose(audio, pool_to_frames(feats, centres, 25, 25.0))
    # ffmpeg's sine source has amplitude 1/8: RMS 0.125 / sqrt(2) in the steady middle
    np.testing.assert_allclose(audio[5:20, 0], 0.125 / np.sqrt(2), rtol=0.1)


def test_no_audio_clip_gives_zero_audio_on_the_frame_timeline(clips):
    visual, audio, info = _extract(clips["silent"])
    assert visual.shape == (10, 4) and audio.shape == (10, 2)
    assert info["has_audio"] is False and not audio.any()


def test_audio_shorter_than_video_is_padded_with_the_last_vector(clips):
    visual, audio, info = _extract(clips["short_audio"])
    assert visual.shape[0] == audio.shape[0] == 25 and info["has_audio"]
    np.testing.assert_array_equal(audio[-1], audio[-5])  # past the audio: the nearest (last) vector


def test_corrupt_video_raises_naming_the_file(clips):
    with pytest.raises(Exception, match="bad.mp4"):
        _extract(clips["bad"])


def test_collect_videos_keys(clips):
    paths = [clips["tone"], clips["noise"]]
    assert [k for k, _ in collect_videos(paths)] == ["noise.mp4", "tone.mp4"]
    assert [k for k, _ in collect_videos(paths, root=clips["root"])] == ["a/tone.mp4", "b/noise.mp4"]
    with pytest.raises(ValueError, match="share the cache key"):
        collect_videos([clips["tone"], clips["tone"]])
    with pytest.raises(ValueError, match="not inside"):
        collect_videos(paths, root=clips["root"] / "a")


def _run(out, videos, root=None, **kwargs):
    return run_extraction(out, videos, root=root, options=kwargs.pop("options", OPTS),
                          visual_extractor=kwargs.pop("visual", MeanColourVisual()),
                          audio_extractor=RmsAudio(), progress=False, **kwargs)


def _good(clips):
    return [clips[k] for k in ("tone", "noise", "silent", "short_audio")]


def _assert_same_cache(a, b):
    ca, cb = FeatureCache(a), FeatureCache(b)
    assert ca.keys() == cb.keys() and ca.settings == cb.settings
    for key in ca.keys():
        for xa, xb in zip(ca.read(key), cb.read(key)):
            np.testing.assert_array_equal(xa, xb)
        assert ca.info(key) == cb.info(key)


def test_batch_with_corrupt_file_reports_it_and_extracts_the_rest(clips, tmp_path):
    out = tmp_path / "cache.h5"
    summary = _run(out, _good(clips) + [clips["bad"]], root=clips["root"])
    assert summary.n_failed == 1 and summary.n_extracted == 4 and summary.n_frames == 25 + 15 + 10 + 25
    report = [json.loads(line) for line in summary.failures_path.read_text().splitlines()]
    assert [r["file"] for r in report] == ["c/bad.mp4"] and "bad.mp4" in report[0]["reason"]
    cache = FeatureCache(out)
    assert cache.keys() == ["a/tone.mp4", "b/noise.mp4", "b/silent.mp4", "c/short_audio.mp4"]
    assert cache.info("b/silent.mp4")["has_audio"] is False
    # a rerun skips the done videos and retries only the failed one
    again = _run(out, _good(clips) + [clips["bad"]], root=clips["root"])
    assert (again.n_skipped, again.n_extracted, again.n_failed) == (4, 0, 1)


def test_shards_merged_equal_a_single_process_run(clips, tmp_path):
    single = tmp_path / "single.h5"
    # three decode workers in the single run: their interleaving must not change anything
    _run(single, _good(clips) + [clips["bad"]], root=clips["root"],
         options=dataclasses.replace(OPTS, decode_workers=3))
    out = tmp_path / "sharded.h5"
    for index in range(3):
        summary = _run(out, _good(clips), root=clips["root"], num_shards=3, shard_index=index)
        assert summary.out == shard_path(out, index, 3)
    _assert_same_cache(single, out)  # shards read as one cache
    merge_caches(out, out)  # `out` does not exist: its shards are merged into it
    assert FeatureCache(out).files == [out]
    _assert_same_cache(single, out)


def test_torchrun_environment_picks_the_shard(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert resolve_shard(None, None) == (4, 2)
    assert resolve_shard(2, 1) == (2, 1)
    with pytest.raises(ValueError, match="shard-index"):
        resolve_shard(2, 2)


def test_mixing_extractor_settings_refused(clips, tmp_path):
    out = tmp_path / "cache.h5"
    _run(out, [clips["tone"]])
    with pytest.raises(ValueError, match=r"visual\.tag"):
        _run(out, [clips["noise"]], visual=MeanColourVisual(tag="v2"))


def test_metadata_and_root(clips, tmp_path):
    records = [{"file": key, "n_fakes": 0, "fake_periods": [], "duration": d, "original": None,
                "modify_video": False, "modify_audio": False, "split": "test",
                "video_frames": n, "audio_channels": 1, "audio_frames": int(d * 16000)}
               for key, d, n in [("a/tone.mp4", 1.0, 25), ("b/noise.mp4", 0.6, 15)]]
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(records))
    out = tmp_path / "cache.h5"
    summary = run_extraction(out, metadata=meta, root=clips["root"], options=OPTS, limit=1,
                             visual_extractor=MeanColourVisual(), audio_extractor=RmsAudio(),
                             progress=False)
    assert summary.n_extracted == 1 and FeatureCache(out).keys() == ["a/tone.mp4"]


def test_a_truncated_video_shorter_than_its_metadata_is_a_failure(tmp_path, caplog):
    """The first half of an mp4 with its index up front decodes without error, just shorter."""
    import logging

    from data.ffmpeg_bin import ffmpeg_exe

    whole = make_clip(tmp_path / "whole.mp4", 2.44)
    front = tmp_path / "front.mp4"  # the layout rtdl synth and most web video use
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(whole), "-c", "copy",
                    "-movflags", "+faststart", str(front)], check=True)
    data = front.read_bytes()
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "clips" / "ok.mp4").write_bytes(data)
    records = [{"file": key, "n_fakes": 0, "fake_periods": [], "duration": 2.44,
                "modify_video": False, "modify_audio": False, "split": "test",
                "video_frames": 61} for key in ("cut.mp4", "ok.mp4")]
    meta = tmp_path / "clips" / "metadata.json"
    meta.write_text(json.dumps(records))
    out = tmp_path / "cache.h5"
    with caplog.at_level(logging.WARNING, logger="pipeline.extract"):
        summary = run_extraction(out, metadata=meta, options=OPTS, visual_extractor=MeanColourVisual(),
                                 audio_extractor=RmsAudio(), progress=False)
    assert (summary.n_extracted, summary.n_failed) == (1, 1)
    assert FeatureCache(out).keys() == ["ok.mp4"]
    [failure] = [json.loads(line) for line in summary.failures_path.read_text().splitlines()]
    assert failure["file"] == "cut.mp4"
    assert "but the metadata gives video_frames 61 (2.44 s): the file is truncated" \
        in failure["reason"] and failure["reason"].startswith("decoded ")
    # without metadata the container's own length is the yardstick: a warning names both
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline.extract"):
        _run(tmp_path / "plain.h5", [tmp_path / "clips" / "cut.mp4"])
    assert any("but the container declares 61" in r.getMessage() for r in caplog.records)


_JOB = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from fake_extractors import MeanColourVisual, RmsAudio
from pipeline.extract import run_extraction
from pipeline.options import ExtractionOptions
run_extraction({out!r}, {videos!r}, root={root!r}, options=ExtractionOptions(chunk_frames=5, flush_every=1),
               visual_extractor=MeanColourVisual(), audio_extractor=RmsAudio(), progress=False)
"""


def test_resume_after_kill_9_matches_an_uninterrupted_run(clips, tmp_path):
    videos = [str(make_clip(tmp_path / "v" / f"{i}.mp4", 0.4, audio="noise" if i % 2 else "sine"))
              for i in range(6)]
    reference = tmp_path / "reference.h5"
    run_extraction(reference, videos, root=tmp_path / "v", options=ExtractionOptions(chunk_frames=5),
                   visual_extractor=MeanColourVisual(), audio_extractor=RmsAudio(), progress=False)

    out = tmp_path / "killed.h5"
    script = tmp_path / "job.py"
    script.write_text(_JOB.format(repo=str(REPO), tests=str(TESTS), out=str(out), videos=videos,
                                  root=str(tmp_path / "v")))
    env = dict(os.environ, RTDL_TEST_SLEEP_S="0.15")  # 2 visual calls per video: ~0.3 s each
    job = subprocess.Popen([sys.executable, str(script)], env=env)
    deadline = time.monotonic() + 60
    try:
        while len(list(parts_dir(out).glob("part-*.h5"))) < 2:  # two videos sealed
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "the job did not seal a part in time"
            time.sleep(0.02)
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait()
    assert job.returncode == -signal.SIGKILL and not out.exists()
    interrupted = FeatureCache(out)  # sealed parts are readable as they are
    assert 2 <= len(interrupted) < 6

    summary = run_extraction(out, videos, root=tmp_path / "v",
                             options=ExtractionOptions(chunk_frames=5, flush_every=1),
                             visual_extractor=MeanColourVisual(), audio_extractor=RmsAudio(),
                             progress=False)
    assert summary.n_skipped == len(interrupted) and summary.n_extracted == 6 - len(interrupted)
    assert not parts_dir(out).exists() and not list(tmp_path.glob("killed.h5.merge-tmp*"))
    _assert_same_cache(reference, out)


def test_cli_extract_weight_free_with_failure_then_shards_and_merge(clips, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    runner = CliRunner()
    common = ["--visual-model", "lowlevel", "--audio-model", "logmel", "--device", "cpu",
              "--root", str(clips["root"])]
    videos = [str(clips["tone"]), str(clips["silent"]), str(clips["bad"])]
    result = runner.invoke(main, ["extract", *videos, "--out", str(tmp_path / "c.h5"), *common])
    assert result.exit_code == 1, result.output
    assert "1 failed of 3 videos" in result.output and "failures.jsonl" in result.output
    assert "visual: lowlevel (weight-free)" in result.output
    cache = FeatureCache(tmp_path / "c.h5")
    assert cache.keys() == ["a/tone.mp4", "b/silent.mp4"]
    assert cache.settings["visual"]["kind"] == "lowlevel" and cache.settings["audio"]["kind"] == "logmel"
    visual, audio = cache.read("a/tone.mp4")
    assert visual.shape == (25, cache.visual_dim) and audio.shape == (25, cache.audio_dim)

    good = videos[:2]
    for index in range(2):
        result = runner.invoke(main, ["extract", *good, "--out", str(tmp_path / "s.h5"), *common,
                                      "--num-shards", "2", "--shard-index", str(index)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["merge", str(tmp_path / "s.shard-*-of-2.h5"), "--out", str(tmp_path / "m.h5")])
    assert result.exit_code == 0 and "2 videos" in result.output, result.output
    _assert_same_cache(tmp_path / "c.h5", tmp_path / "m.h5")

    result = runner.invoke(main, ["extract", "--out", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "--metadata" in result.output


def test_variable_frame_rate_audio_follows_frame_timestamps(tmp_path):
    from media import make_vfr_clip

    clip = make_vfr_clip(tmp_path / "vfr.mp4", ramp_audio=True)
    visual, audio, info = _extract(clip)
    starts = VideoStream(clip).info.frame_starts
    assert starts is not None and visual.shape[0] == audio.shape[0] == 20
    ends = np.append(starts[1:], starts[-1] + 1 / info["fps"])
    # ramp tone: RMS at time t is 0.3 t / sqrt(2), so each frame's pooled RMS tells its mid time
    mid_times = audio[:, 0] * np.sqrt(2) / 0.3
    # (the first frames see aac's start-up ramp, the last one the audio's end)
    np.testing.assert_allclose(mid_times[2:-1], ((starts + ends) / 2)[2:-1], atol=0.03)
    # a uniform grid at the average fps would misplace frames by more than 0.1 s
    uniform_mids = (np.arange(20) + 0.5) / info["fps"]
    assert np.abs(mid_times[2:-1] - uniform_mids[2:-1]).max() > 0.1


def test_random_backbones_are_flagged_but_weight_free_ones_are_not(tmp_path, caplog):
    # a random-initialised backbone must be named as such; the weight-free extractors are
    # not random and must not be described as if they were
    import logging

    from extractors.build import build_audio_extractor, build_visual_extractor
    from pipeline.extract import run_extraction
    from media import make_clip

    clip = make_clip(tmp_path / "a.mp4", seconds=0.4)
    weight_free = (build_visual_extractor("lowlevel"), build_audio_extractor("logmel"))
    random_audio = (build_visual_extractor("lowlevel"), build_audio_extractor("random", random_config="tiny"))
    for name, (visual, audio) in (("free", weight_free), ("random", random_audio)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="pipeline.extract"):
            run_extraction(tmp_path / f"{name}.h5", [clip], visual_extractor=visual,
                           audio_extractor=audio, progress=False)
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        if name == "free":
            assert not any("RANDOM" in m for m in warned)
        else:
            assert any("audio features come from a RANDOM-initialised" in m for m in warned)
