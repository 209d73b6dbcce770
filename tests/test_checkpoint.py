"""pipeline/checkpoint.py: self-describing, weights_only-loadable, atomic checkpoints."""
import os

import pytest
import torch

from data.config import to_dict
from data.labels import LABELS
from model.rtdeeploc import build_model
from data.version import __version__
from pipeline.checkpoint import FORMAT, load_checkpoint, save_checkpoint, unwrap_model
from train_fixtures import AUDIO_DIM, SETTINGS, VISUAL_DIM, tiny_run_config


def _model_and_inputs(seed=0):
    run_config = tiny_run_config()
    torch.manual_seed(seed)
    model = build_model(run_config.model, VISUAL_DIM, AUDIO_DIM)
    g = torch.Generator().manual_seed(1)
    visual = torch.randn(2, 7, VISUAL_DIM, generator=g)  # [B, T, Dv]
    audio = torch.randn(2, 7, AUDIO_DIM, generator=g)  # [B, T, Da]
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])  # [B, T]
    return run_config, model, (visual, audio, mask)


def _save(path, model, run_config, **extra):
    return save_checkpoint(path, model, run_config, epoch=3, metrics={"val_accuracy": 0.5},
                           feature_settings=SETTINGS, visual_dim=VISUAL_DIM, audio_dim=AUDIO_DIM,
                           **extra)


def test_round_trip_predicts_identically_and_describes_itself(tmp_path):
    run_config, model, inputs = _model_and_inputs()
    model.eval()
    expected = model.predict(*inputs)
    path = _save(tmp_path / "best.pt", model, run_config)

    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["format"] == FORMAT and raw["version"] == __version__
    assert raw["labels"] == list(LABELS)
    assert raw["run_config"] == to_dict(run_config)
    assert not any(k.startswith("module.") for k in raw["model_state"])

    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.run_config == run_config and loaded.model_config == run_config.model
    assert (loaded.visual_dim, loaded.audio_dim) == (VISUAL_DIM, AUDIO_DIM)
    assert loaded.feature_settings == SETTINGS and loaded.labels == LABELS
    assert loaded.epoch == 3 and loaded.metrics == {"val_accuracy": 0.5}
    got = loaded.model.predict(*inputs)
    for name in ("class_probs", "visual_scores", "audio_scores", "joint_scores",
                 "visual_recon_error", "audio_recon_error"):
        assert torch.equal(getattr(got, name), getattr(expected, name)), name


def test_a_checkpoint_from_before_the_scorer_views_loads_with_the_view_it_was_trained_on(tmp_path):
    import dataclasses

    from pipeline.checkpoint import save_payload

    run_config, _, inputs = _model_and_inputs()
    # what rtdl wrote before the views existed: scorers on the deviation windows, no field
    old_model_config = dataclasses.replace(run_config.model, deviation_scorer_weight=1.0,
                                           audio_deviation_view="deviation_windows")
    run_config = dataclasses.replace(run_config, model=old_model_config)
    torch.manual_seed(0)
    model = build_model(old_model_config, VISUAL_DIM, AUDIO_DIM).eval()
    with torch.no_grad():
        model.deviation_scorers["audio"].weight.normal_()
    expected = model.predict(*inputs).audio_learned_deviation
    path = _save(tmp_path / "best.pt", model, run_config)
    payload = torch.load(path, weights_only=True)
    for field in ("visual_deviation_view", "audio_deviation_view", "av_sync_agreement"):
        del payload["run_config"]["model"][field]
    payload["model_state"] = {k: v for k, v in payload["model_state"].items()
                              if not k.endswith("window_means")}
    save_payload(path, payload)

    loaded = load_checkpoint(path)
    assert loaded.model_config.audio_deviation_view == "deviation_windows"
    # the desynchrony of before scored the product term (model/av_sync.py)
    assert loaded.model_config.av_sync_agreement == loaded.model.av_sync.agreement == "product"
    assert torch.equal(loaded.model.predict(*inputs).audio_learned_deviation, expected)


def test_wrapped_model_is_saved_unwrapped(tmp_path):
    run_config, model, _ = _model_and_inputs()
    wrapped = torch.nn.DataParallel(model)  # same "module." prefix as DDP, no process group
    assert unwrap_model(wrapped) is model
    path = _save(tmp_path / "last.pt", wrapped, run_config)
    keys = set(torch.load(path, weights_only=True)["model_state"])
    assert keys == set(model.state_dict())


def test_train_state_with_numpy_and_python_rng_loads_weights_only(tmp_path):
    import random

    import numpy as np
    run_config, model, _ = _model_and_inputs()
    optimizer = torch.optim.AdamW(model.parameters())
    state = {"optimizer": optimizer.state_dict(), "python": random.getstate(),
             "numpy": list(np.random.get_state()), "torch": torch.get_rng_state()}
    path = _save(tmp_path / "last.pt", model, run_config, train_state=state)
    assert load_checkpoint(path).train_state["torch"].equal(state["torch"])


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run_config, model, _ = _model_and_inputs()
    path = _save(tmp_path / "last.pt", model, run_config)
    before = path.read_bytes()

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(path, model, run_config)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_bad_files_are_reported_with_path_and_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match=r"other\.pt: field 'format'"):
        load_checkpoint(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_checkpoint(garbage)


@pytest.mark.parametrize("content,reason", [
    (b"", "the file is empty (0 bytes)"),
    (bytes(range(256)) * 4, "not a torch.save file"),
])
def test_unloadable_files_give_a_reason_without_torch_advice(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(f"{path}: not a loadable rtdl checkpoint: ")
    assert reason in str(err.value) and "weights_only" not in str(err.value)


def test_pickled_objects_are_refused_naming_the_class_not_advising_to_unpickle(tmp_path):
    import argparse

    run_config, model, _ = _model_and_inputs()
    path = _save(tmp_path / "ok.pt", model, run_config)
    hostile = tmp_path / "hostile.pt"
    torch.save(dict(torch.load(path, weights_only=True), extra=argparse.Namespace(x=1)), hostile)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as err:
        load_checkpoint(hostile)
    assert "argparse.Namespace" in str(err.value) and "weights_only" not in str(err.value)
    with pytest.raises(ValueError, match="truncated.pt: .*not a complete torch.save file"):
        load_checkpoint(truncated)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    from pipeline.checkpoint import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = [tmp_path / f".last.pt.tmp-{dead}", tmp_path / f".best.pt.tmp-{dead}"]
    running = tmp_path / f".last.pt.tmp-{os.getppid()}"  # a live writer keeps its file
    for path in stale + [running]:
        path.write_bytes(b"half")
    assert sorted(remove_stale_temporaries(tmp_path, ("last.pt", "best.pt"))) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == [running.name]
