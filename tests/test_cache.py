"""Tests for data/cache.py: round trip, crash leftovers, resume, shards, mixing refused."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from data.cache import (CacheWriter, FeatureCache, escape_key, merge_caches, parts_dir,
                        shard_path, unescape_key)
from data.feature_settings import settings_difference

SETTINGS = {"visual": {"name": "stand_in", "dim": 3}, "audio": {"name": "stand_in", "dim": 2}}


def _video(seed: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_frames, 3)).astype(np.float32), rng.standard_normal((n_frames, 2)).astype(np.float32)


def _write(writer: CacheWriter, key: str, seed: int, n_frames: int = 5) -> tuple[np.ndarray, np.ndarray]:
    visual, audio = _video(seed, n_frames)
    writer.write(key, visual, audio, fps=25.0, duration=n_frames / 25.0, has_audio=seed % 2 == 0)
    return visual, audio


def test_key_escaping_round_trips():
    for key in ["test/000001.mp4", "a%2Fb/c.mp4", "plain.mp4", "x/y/z%"]:
        assert "/" not in escape_key(key)
        assert unescape_key(escape_key(key)) == key
    assert escape_key("a%2Fb") != escape_key("a/b")


def test_write_read_round_trip_float16(tmp_path):
    out = tmp_path / "cache.h5"
    with CacheWriter(out, SETTINGS) as writer:
        v0, a0 = _write(writer, "train/000001.mp4", seed=0, n_frames=7)
        v1, a1 = _write(writer, "train/000002.mp4", seed=1, n_frames=3)
        assert writer.has("train/000001.mp4") and not writer.has("nope.mp4")
    assert out.exists() and not parts_dir(out).exists()  # parts merged and removed
    cache = FeatureCache(out)
    assert cache.keys() == ["train/000001.mp4", "train/000002.mp4"]
    assert len(cache) == 2 and "train/000002.mp4" in cache
    assert cache.settings == SETTINGS and (cache.visual_dim, cache.audio_dim) == (3, 2)
    visual, audio = cache.read("train/000001.mp4")
    assert visual.dtype == np.float32 and visual.shape == (7, 3) and audio.shape == (7, 2)
    # float16 storage: ~3 significant digits
    np.testing.assert_allclose(visual, v0, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(audio, a0, rtol=1e-3, atol=1e-3)
    assert cache.info("train/000002.mp4") == {"fps": 25.0, "n_frames": 3, "duration": 3 / 25.0,
                                              "has_audio": False}
    with h5py.File(out, "r") as handle:
        assert handle["train%2F000001.mp4/visual"].dtype == np.float16
        assert handle["train%2F000001.mp4/visual"].chunks is not None
    with pytest.raises(KeyError, match="missing.mp4"):
        cache.read("missing.mp4")


def test_float32_storage_is_exact(tmp_path):
    out = tmp_path / "c.h5"
    with CacheWriter(out, SETTINGS, dtype="float32") as writer:
        v0, a0 = _write(writer, "a.mp4", seed=3)
    visual, audio = FeatureCache(out).read("a.mp4")
    np.testing.assert_array_equal(visual, v0)
    np.testing.assert_array_equal(audio, a0)


def test_write_rejects_bad_shapes(tmp_path):
    with CacheWriter(tmp_path / "c.h5", SETTINGS) as writer:
        with pytest.raises(ValueError, match="frame count"):
            writer.write("a.mp4", np.zeros((4, 3)), np.zeros((5, 2)), fps=25, duration=0.2, has_audio=True)
        _write(writer, "b.mp4", seed=0)
        with pytest.raises(ValueError, match="dims"):
            writer.write("c.mp4", np.zeros((4, 4)), np.zeros((4, 2)), fps=25, duration=0.2, has_audio=True)
        with pytest.raises(ValueError, match="already"):
            _write(writer, "b.mp4", seed=0)


def test_crash_leftovers_are_ignored_and_resume_skips_done(tmp_path):
    out = tmp_path / "cache.h5"
    writer = CacheWriter(out, SETTINGS, flush_every=1)
    _write(writer, "a.mp4", seed=0)
    _write(writer, "b.mp4", seed=1)
    # simulate kill -9: sealed parts stay, a half-written temp part and merge file are left over
    (parts_dir(out) / "part-99999999999999999999-deadbeef.h5.tmp").write_bytes(b"\x89HDF garbage")
    (tmp_path / "cache.h5.merge-tmp-123").write_bytes(b"garbage")
    writer._lock_file.close()  # the kernel drops the flock of a killed process
    assert not out.exists()
    # a reader already sees the two sealed videos, ignoring the temporaries
    assert FeatureCache(out).keys() == ["a.mp4", "b.mp4"]
    with CacheWriter(out, SETTINGS) as again:
        assert again.has("a.mp4") and again.has("b.mp4")
        _write(again, "c.mp4", seed=2)
    assert not (tmp_path / "cache.h5.merge-tmp-123").exists()
    assert FeatureCache(out).keys() == ["a.mp4", "b.mp4", "c.mp4"]
    assert not parts_dir(out).exists()


def test_second_writer_on_same_output_is_refused(tmp_path):
    with CacheWriter(tmp_path / "c.h5", SETTINGS):
        with pytest.raises(RuntimeError, match="another process"):
            CacheWriter(tmp_path / "c.h5", SETTINGS)


def test_exception_inside_with_seals_but_does_not_merge(tmp_path):
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        with CacheWriter(out, SETTINGS) as writer:
            _write(writer, "a.mp4", seed=0)
            raise KeyboardInterrupt
    assert not out.exists() and len(list(parts_dir(out).glob("part-*.h5"))) == 1
    assert FeatureCache(out).keys() == ["a.mp4"]


def test_empty_job_leaves_valid_empty_cache(tmp_path):
    out = tmp_path / "c.h5"
    with CacheWriter(out, SETTINGS):
        pass
    cache = FeatureCache(out)
    assert len(cache) == 0 and cache.settings == SETTINGS and cache.visual_dim is None


def test_shards_read_as_one_and_merge_equals_single_file(tmp_path):
    out = tmp_path / "cache.h5"
    assert shard_path(out, 1, 3).name == "cache.shard-1-of-3.h5"
    expected = {}
    for shard in range(2):
        with CacheWriter(shard_path(out, shard, 2), SETTINGS, dtype="float32") as writer:
            for i in range(shard, 5, 2):
                expected[f"v/{i}.mp4"] = _write(writer, f"v/{i}.mp4", seed=i, n_frames=i + 1)
    from_shards = FeatureCache(out)  # out itself does not exist: its shards are found
    assert from_shards.keys() == sorted(expected)
    merge_caches(out.parent / "cache.shard-*-of-2.h5", out)
    merged = FeatureCache(out)
    assert merged.files == [out]
    for key, (visual, audio) in expected.items():
        np.testing.assert_array_equal(merged.read(key)[0], visual)
        np.testing.assert_array_equal(merged.read(key)[1], audio)
        assert merged.info(key)["n_frames"] == visual.shape[0]
    with pytest.raises(FileExistsError):
        merge_caches([shard_path(out, 0, 2)], out)


def test_mixing_settings_refused_naming_files_and_keys(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    with CacheWriter(a, SETTINGS) as writer:
        _write(writer, "x.mp4", seed=0)
    other = {"visual": {"name": "stand_in", "dim": 3}, "audio": {"name": "other", "dim": 2}}
    with CacheWriter(b, other) as writer:
        _write(writer, "y.mp4", seed=1)
    with pytest.raises(ValueError, match=r"a\.h5.*b\.h5.*audio\.name"):
        FeatureCache([a, b])
    with pytest.raises(ValueError, match="audio.name"):
        merge_caches([a, b], tmp_path / "m.h5")
    with pytest.raises(ValueError, match="audio.name"):
        CacheWriter(a, other)  # resuming into a cache with other settings
    assert settings_difference({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == ["a.c"]


def test_pickles_without_open_handles(tmp_path):
    out = tmp_path / "c.h5"
    with CacheWriter(out, SETTINGS) as writer:
        visual, _ = _write(writer, "a.mp4", seed=0)
    cache = FeatureCache(out)
    cache.read("a.mp4")  # opens a handle
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._handles == {}
    np.testing.assert_array_equal(clone.read("a.mp4")[0], cache.read("a.mp4")[0])
