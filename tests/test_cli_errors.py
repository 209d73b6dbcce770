"""Every failure a user can cause ends in one line, `Error: <path>: <what is wrong>`, and a
non-zero exit code, never a traceback (pipeline/cli.py: RtdlGroup and error_line)."""
import errno
import fcntl

import pytest
from click.testing import CliRunner

from media import make_clip
from pipeline.cli import main
from train_fixtures import make_run_data

WEIGHT_FREE = ["--visual-model", "lowlevel", "--audio-model", "logmel"]


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, ValueError))
    [line] = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    return line


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 0.4)


def test_extract_out_under_a_file_or_over_a_non_hdf5_file(clip, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = run(["extract", clip, "--out", blocker / "cache.h5", *WEIGHT_FREE])
    assert line.startswith(f"Error: {blocker}/cache.h5") and line.endswith(": Not a directory")
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5")
    assert run(["extract", clip, "--out", text, *WEIGHT_FREE]).startswith(
        f"Error: {text}: cannot open as an HDF5 feature cache")


def test_extract_out_in_a_read_only_folder(clip, tmp_path, monkeypatch):
    import data.cache

    def read_only(path, mode="r", *args, **kwargs):  # root ignores chmod, so refuse here
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(data.cache, "open", read_only, raising=False)
    out = tmp_path / "cache.h5"
    assert run(["extract", clip, "--out", out, *WEIGHT_FREE]) == \
        f"Error: {out}.lock: Permission denied"


def test_a_second_job_on_the_same_cache(clip, tmp_path):
    out = tmp_path / "cache.h5"
    with open(f"{out}.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first job
        assert run(["extract", clip, "--out", out, *WEIGHT_FREE]) == (
            f"Error: {out}: another process is writing this cache (lock {out}.lock is held)")


def test_a_full_disk_stops_extract_with_one_line_and_keeps_finished_work(clip, tmp_path,
                                                                        monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 6, 10 ** 6 - 2048, 2048))
    out = tmp_path / "cache.h5"
    line = run(["extract", clip, "--out", out, *WEIGHT_FREE])
    assert line.startswith(f"Error: {tmp_path}: no space left on device: 0.0 MiB free")
    assert "rerun" in line
    assert not list(tmp_path.glob("cache.h5.parts/*.tmp"))


def test_non_hdf5_caches_for_train_predict_and_merge(tmp_path):
    _, meta, _ = make_run_data(tmp_path)
    text = tmp_path / "features.txt"
    text.write_text("not HDF5")
    expected = f"Error: {text}: cannot open as an HDF5 feature cache"
    assert run(["train", "--cache", text, "--metadata", meta, "--out", tmp_path / "run",
                "--epochs", "1"]).startswith(expected)
    assert run(["predict", "--cache", text, "--checkpoint", tmp_path / "none.pt",
                "--out", tmp_path / "p.json"]).startswith(f"Error: {tmp_path / 'none.pt'}")
    assert run(["merge", text, "--out", tmp_path / "merged.h5"]).startswith(expected)


def test_a_full_disk_while_saving_a_checkpoint_is_named(tmp_path, monkeypatch):
    import torch

    cache, meta, _ = make_run_data(tmp_path)

    def full(obj, handle, *args, **kwargs):  # what torch.save does on a full disk
        try:
            raise OSError(errno.ENOSPC, "No space left on device", handle.name)
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    line = run(["train", "--cache", cache, "--metadata", meta, "--out", tmp_path / "run",
                "--epochs", "1", "--set", "model.d_model=8", "--set", "model.fusion_heads=2",
                "--set", "model.mae_heads=2", "--set", "model.mae_decoder_dim=8"])
    assert line.startswith(f"Error: {tmp_path / 'run'}/.last.pt.tmp-")
    assert line.endswith("No space left on device (free some space and rerun: finished work is kept)")


def test_caches_are_named_as_plain_paths(tmp_path):
    from data.cache import FeatureCache
    from pipeline.dataset import cache_name

    cache, _, _ = make_run_data(tmp_path)
    assert cache_name(FeatureCache(cache)) == str(cache)


@pytest.mark.parametrize("command", ["train", "tune", "predict", "localize", "evaluate", "info",
                                     "extract", "merge", "synth", "demo"])
def test_every_command_help_exits_zero(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Error" not in result.output
    assert result.output.startswith(f"Usage: main {command}") or f"{command} [OPTIONS]" in result.output
