"""rtdl info: every file rtdl writes explains itself, as text and as JSON."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from data.cache import CacheWriter, shard_path
from pipeline.cli import main
from pipeline.info import describe
from train_fixtures import SETTINGS, make_run_data, make_videos, tiny_run_config, write_cache


def _info(*args) -> str:
    result = CliRunner().invoke(main, ["info", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_cache_with_its_failures_report(tmp_path):
    videos = make_videos({"train": 4}, lengths=(10, 20, 30, 40))
    cache = write_cache(tmp_path / "f.h5", videos)
    (tmp_path / "f.h5.failures.jsonl").write_text(
        json.dumps({"file": "x.mp4", "path": "/d/x.mp4", "reason": "moov atom not found"}) + "\n")
    info = describe(str(cache))
    assert info["kind"] == "feature cache" and info["videos"] == 4 and info["frames"] == 100
    assert info["hours"] == round(100 / 25 / 3600, 4) and info["fps"] == [25.0]
    assert (info["visual_dim"], info["audio_dim"], info["dtype"]) == (6, 4, "float32")
    assert info["pretrained"] == {"visual": False, "audio": False}
    assert info["failures"] == [{"report": str(tmp_path / "f.h5.failures.jsonl"), "failed_videos": 1,
                                 "first": ["x.mp4: moov atom not found"]}]
    assert info["size_bytes"] == cache.stat().st_size
    text = _info(cache)
    assert "videos: 4" in text and "frames: 100" in text and "moov atom not found" in text
    assert json.loads(_info(cache, "--json"))["videos"] == 4


def test_shards_by_glob_or_base_name_and_unmerged_parts(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(2):
        with CacheWriter(shard_path(tmp_path / "c.h5", index, 2), SETTINGS) as writer:
            writer.write(f"v{index}.mp4", rng.normal(size=(5, 6)), rng.normal(size=(5, 4)), fps=25.0,
                         duration=0.2, has_audio=index == 0)
    for source in (tmp_path / "c.h5", f"{tmp_path}/c.shard-*-of-2.h5"):
        info = describe(str(source))
        assert info["videos"] == 2 and len(info["shards"]) == 2 and info["videos_without_audio"] == 1
    writer = CacheWriter(tmp_path / "p.h5", SETTINGS, flush_every=1)
    writer.write("a.mp4", rng.normal(size=(5, 6)), rng.normal(size=(5, 4)), fps=25.0, duration=0.2,
                 has_audio=True)
    writer.close(merge=False)  # as a killed extraction leaves it: parts only
    info = describe(str(tmp_path / "p.h5"))
    assert info["videos"] == 1 and len(info["unmerged_parts"]) == 1
    assert describe(str(tmp_path / "p.h5.parts"))["unmerged_parts"] == info["unmerged_parts"]


def test_checkpoint_run_folder_and_predictions(tmp_path):
    from pipeline.train import train_run

    cache, meta, _ = make_run_data(tmp_path)
    train_run(tiny_run_config(epochs=2), cache, meta, tmp_path / "run")
    run = describe(str(tmp_path / "run"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert run["kind"] == "run folder" and run["epochs"] == 2
    assert run["best_epoch"] == rows[-1]["best_epoch"]
    assert run["best_metrics"]["val_ap_avg"] == rows[run["best_epoch"] - 1]["val_ap_avg"]
    assert run["checkpoints"]["best.pt"]["proposal_settings"] == "tuned"
    ckpt = describe(str(tmp_path / "run" / "last.pt"))
    assert ckpt["epoch"] == 2 and ckpt["resumable"] and ckpt["model"]["d_model"] == 8
    assert ckpt["format"] == "rtdl-checkpoint-v1" and ckpt["proposal_tuning"]["split"] == "dev"
    assert ckpt["parameters"] > 0 and ckpt["feature_settings"] == SETTINGS
    assert "epoch: 2" in _info(tmp_path / "run" / "last.pt")

    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"a.mp4": [[0.9, 0.0, 1.5], [0.2, 2.0, 3.0]], "b.mp4": []}))
    info = describe(str(preds))
    assert info["kind"] == "predictions" and info["videos"] == 2 and info["proposals"] == 2
    assert info["score_range"] == [0.2, 0.9] and info["videos_without_proposals"] == 1
    probs = tmp_path / "preds_probs.json"
    probs.write_text(json.dumps({"a.mp4": [0.1, 0.7, 0.1, 0.1], "b.mp4": [0.9, 0.0, 0.05, 0.05]}))
    assert describe(str(probs))["predicted_labels"] == {"real": 1, "visual_only": 1, "audio_only": 0,
                                                        "both": 0}


def test_files_rtdl_did_not_write_are_named(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    result = CliRunner().invoke(main, ["info", str(other)])
    assert result.exit_code == 1 and f"Error: {other}: not a file rtdl writes" in result.output
    weird = tmp_path / "x.json"
    weird.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="does not recognise"):
        describe(str(weird))
    with pytest.raises(FileNotFoundError, match="no feature cache here"):
        describe(str(tmp_path / "missing.h5"))
