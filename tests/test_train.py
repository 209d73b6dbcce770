"""pipeline/train.py, pipeline/train_config.py and `rtdl train`."""
import dataclasses
import json
import socket

import pytest
import torch
from click.testing import CliRunner

from pipeline.checkpoint import load_checkpoint
from pipeline.train import NonFiniteLossError, resolve_splits, train, train_run
from pipeline.train_config import RunConfig, TrainConfig, load_run_config
from train_fixtures import (AUDIO_DIM, VISUAL_DIM, make_run_data, make_videos, tiny_run_config, write_cache,
                            write_metadata)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture()
def run_data(tmp_path):
    return make_run_data(tmp_path)


def test_loss_goes_down_and_run_folder_is_complete(tmp_path, run_data):
    cache, meta, _ = run_data
    cfg = tiny_run_config(epochs=6, lr=1e-2, batch_size=4, model_changes={"dropout": 0.0})
    best = train(cfg, cache, meta, tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["train_total"] < rows[0]["train_total"]
    assert all(0.0 <= r["data_wait_share"] <= 1.0 and r["train_samples"] == 8 for r in rows)
    assert best == tmp_path / "run" / "best.pt" and best.is_file()
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "run_config.yaml").is_file()
    loaded = load_checkpoint(best)
    key = "val_ap_avg" if "val_ap_avg" in rows[0] else "val_accuracy"
    best_row = max(rows, key=lambda r: r[key])  # max keeps the first of equals, as the trainer
    assert loaded.epoch == best_row["epoch"] == rows[-1]["best_epoch"]
    # the frame evidence was calibrated on real training videos and travels in the checkpoint
    for calibration in ("visual_error_calibration", "audio_error_calibration",
                        "visual_deviation_calibration", "audio_deviation_calibration"):
        assert bool(getattr(loaded.model, calibration).is_set), calibration


def test_same_seed_gives_bit_identical_weights_and_other_seed_does_not(tmp_path, run_data):
    cache, meta, _ = run_data
    cfg = tiny_run_config(epochs=1, seed=7)
    a = train_run(cfg, cache, meta, tmp_path / "a").model
    b = train_run(cfg, cache, meta, tmp_path / "b").model
    assert _same(_weights(a), _weights(b))
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=8))
    c = train_run(other, cache, meta, tmp_path / "c").model
    assert not _same(_weights(a), _weights(c))


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, run_data):
    cache, meta, videos = run_data
    two = tiny_run_config(epochs=2, seed=3)
    straight = train_run(two, cache, meta, tmp_path / "straight").model
    one = dataclasses.replace(two, train=dataclasses.replace(two.train, epochs=1))
    train_run(one, cache, meta, tmp_path / "resumed")
    with pytest.raises(ValueError, match="--resume"):  # never overwrite a run silently
        train_run(two, cache, meta, tmp_path / "resumed")
    outcome = train_run(two, cache, meta, tmp_path / "resumed", resume=True)
    assert outcome.epochs_completed == 2
    assert _same(_weights(straight), _weights(outcome.model))
    # asked for fewer epochs than the folder holds: nothing runs, and the outcome says so
    assert train_run(one, cache, meta, tmp_path / "resumed", resume=True).epochs_completed == 2
    strip = lambda r: {k: v for k, v in r.items() if k not in ("train_samples_per_s", "data_wait_share")}  # noqa: E731
    assert [strip(r) for r in _rows(tmp_path / "resumed")] == [strip(r) for r in _rows(tmp_path / "straight")]
    changed = dataclasses.replace(two, model=dataclasses.replace(two.model, d_model=4, mae_decoder_dim=4))
    with pytest.raises(ValueError, match="run_config.model"):
        train_run(changed, cache, meta, tmp_path / "resumed", resume=True)
    other_features = write_cache(tmp_path / "other.h5", videos, settings={
        "visual": {"name": "other", "dim": VISUAL_DIM}, "audio": {"name": "test-random", "dim": AUDIO_DIM}})
    with pytest.raises(ValueError, match=r"extractor settings differ.*visual\.name"):
        train_run(two, other_features, meta, tmp_path / "resumed", resume=True)


def test_non_finite_features_stop_the_run_before_training_naming_cache_video_modality(tmp_path,
                                                                                       run_data):
    cache, meta, videos = run_data
    train_run(tiny_run_config(epochs=1), cache, meta, tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    before = last.read_bytes()
    for split_video in ("train/0002.mp4", "dev/0001.mp4"):  # a dev video counts as much
        poisoned = write_cache(tmp_path / f"poisoned-{split_video[:3]}.h5", videos,
                               nan_files={split_video})
        for standardize, resume in ((True, False), (False, True)):
            cfg = tiny_run_config(epochs=2, standardize_inputs=standardize)
            out = tmp_path / "run" if resume else tmp_path / f"fresh-{split_video[:3]}"
            with pytest.raises(ValueError) as err:
                train_run(cfg, poisoned, meta, out, resume=resume)
            assert str(err.value).startswith(f"{poisoned}: video {split_video!r}: visual "
                                             f"features hold NaN or Inf in ")
    assert last.read_bytes() == before and len(_rows(tmp_path / "run")) == 1


def test_non_finite_loss_names_step_and_term_and_keeps_last_checkpoint(tmp_path, run_data,
                                                                        monkeypatch):
    from model.rtdeeploc import RTDeepLoc

    cache, meta, _ = run_data
    train_run(tiny_run_config(epochs=1), cache, meta, tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    before = last.read_bytes()
    losses = RTDeepLoc.losses

    def overflowing(self, output, labels):  # finite inputs, a loss term that diverged
        result = dict(losses(self, output, labels))
        result["cls"] = result["cls"] * float("inf")
        result["total"] = result["total"] + result["cls"]
        return result

    monkeypatch.setattr(RTDeepLoc, "losses", overflowing)
    with pytest.raises(NonFiniteLossError) as err:
        train_run(tiny_run_config(epochs=2), cache, meta, tmp_path / "run", resume=True)
    message = str(err.value)
    assert "epoch 2" in message and "step 1" in message and "cls=inf" in message
    assert last.read_bytes() == before
    assert load_checkpoint(last).epoch == 1
    assert len(_rows(tmp_path / "run")) == 1


def test_a_train_split_of_one_class_or_a_dev_split_without_fakes_is_refused(tmp_path):
    videos = make_videos({"train": 8, "dev": 4})
    cache = write_cache(tmp_path / "features.h5", videos)
    both = [dict(v, modify_video=True, modify_audio=True, span=v["span"] or (1, 4))
            if v["split"] == "train" else v for v in videos]
    meta = write_metadata(tmp_path / "one_class.json", both)
    with pytest.raises(ValueError, match=r"one_class\.json: train split 'train' holds only "
                                         r"'both' videos \(8\)"):
        train_run(tiny_run_config(), cache, meta, tmp_path / "run")
    real_dev = [dict(v, modify_video=False, modify_audio=False, span=None)
                if v["split"] == "dev" else v for v in videos]
    meta = write_metadata(tmp_path / "real_dev.json", real_dev)
    with pytest.raises(ValueError, match=r"real_dev\.json: validation split 'dev' has no fake"):
        train_run(tiny_run_config(), cache, meta, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_kill_between_checkpoint_writes_is_repaired_on_resume(tmp_path, run_data):
    """Each epoch appends its metrics row, writes last.pt, then best.pt if it improved. A kill
    between those steps must not leave a best.pt behind the best epoch last.pt records,
    repeated or missing metrics rows, or temporary files."""
    import os

    cache, meta, _ = run_data
    run = tmp_path / "run"
    cfg = tiny_run_config(epochs=1, seed=3)
    train_run(cfg, cache, meta, run)
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["train_state"]["best"]["epoch"] == 1
    row = _rows(run)[0]
    # killed while best.pt was written (only its temporary file exists), after a rerun
    # appended epoch 1's row again, and in the middle of the next row
    (run / "best.pt").unlink()
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no process has this id
    for name in (".last.pt.tmp-%d", ".best.pt.tmp-%d"):
        (run / (name % dead)).write_bytes(b"half a checkpoint")
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + text + '{"epoch": 2, "trai')
    train_run(cfg, cache, meta, run, resume=True)  # 1 of 1 epochs done: repair only
    assert sorted(os.listdir(run)) == ["best.pt", "curves.png", "last.pt", "metrics.jsonl",
                                       "proposals.yaml", "run_config.yaml"]
    assert _rows(run) == [row]
    best = load_checkpoint(run / "best.pt")
    assert best.epoch == 1 and best.metrics == row and best.train_state is None
    assert _same(best.model.state_dict(), last["model_state"])
    # killed after last.pt, before the row was appended: the row comes back from last.pt
    (run / "metrics.jsonl").write_text("")
    train_run(cfg, cache, meta, run, resume=True)
    assert _rows(run) == [row]


def test_curves_are_redrawn_every_epoch(tmp_path, run_data, monkeypatch):
    import pipeline.plots

    cache, meta, _ = run_data
    drawn = []
    real = pipeline.plots.plot_training_curves

    def spy(rows, path, title=""):
        drawn.append([row["epoch"] for row in rows])
        return real(rows, path, title)

    monkeypatch.setattr(pipeline.plots, "plot_training_curves", spy)
    train_run(tiny_run_config(epochs=2), cache, meta, tmp_path / "run")
    assert drawn == [[1], [1, 2]]
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_tensorboard_logs_every_epoch_or_names_the_missing_extra(tmp_path, run_data):
    cache, meta, _ = run_data
    cfg = tiny_run_config(epochs=2, tensorboard=True)
    try:
        import tensorboard  # noqa: F401  (an optional extra)
    except ImportError:
        with pytest.raises(ValueError, match=r"needs the tensorboard package.*rtdl\[tensorboard\]"):
            train_run(cfg, cache, meta, tmp_path / "run")
        pytest.skip("tensorboard is not installed: only the error without it was checked")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_run(cfg, cache, meta, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    rows = _rows(tmp_path / "run")
    logged = events.Scalars("val/ap_avg")
    assert [e.step for e in logged] == [1, 2]
    assert [e.value for e in logged] == pytest.approx([r["val_ap_avg"] for r in rows])
    assert [e.value for e in events.Scalars("train/total")] == pytest.approx([r["train_total"] for r in rows])


def test_splits_default_per_dataset_and_can_be_named(tmp_path):
    from data.records import VideoRecord
    rec = lambda split: VideoRecord(f"{split}/x.mp4", split, 1.0, 25.0, 25, 0, ())  # noqa: E731
    lavdf = [rec("train"), rec("dev"), rec("test")]
    avdf1m = [rec("train"), rec("val")]
    assert resolve_splits(lavdf, TrainConfig(), "m.json") == ("train", "dev")
    assert resolve_splits(avdf1m, TrainConfig(), "m.json") == ("train", "val")
    assert resolve_splits(lavdf, TrainConfig(val_split="test"), "m.json") == ("train", "test")
    with pytest.raises(ValueError, match=r"m\.json.*'nope'"):
        resolve_splits(lavdf, TrainConfig(train_split="nope"), "m.json")
    with pytest.raises(ValueError, match="val_split"):
        resolve_splits([rec("train"), rec("test")], TrainConfig(), "m.json")


def test_run_config_from_yaml_overrides_and_cli_options(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  mask_ratio: 0.5\ntrain:\n  lr: 1e-4\n  epochs: 4\n")
    cfg = load_run_config(path, ["model.aicl_k=5", "train.batch_size=8"], epochs=2, seed=None)
    assert cfg.model.mask_ratio == 0.5 and cfg.model.aicl_k == 5
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 8 and cfg.train.epochs == 2
    assert cfg.train.seed == TrainConfig().seed
    assert RunConfig().train.batch_size == 32 and RunConfig().train.lr == 1e-5  # paper defaults
    path.write_text("train:\n  learning_rate: 1e-4\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_run_config(path)
    with pytest.raises(ValueError, match="train.device"):
        TrainConfig(device="tpu")


def test_cli_trains_and_reports_user_errors(tmp_path, run_data):
    from pipeline.cli import main
    cache, meta, _ = run_data
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps({"model": dataclasses.asdict(tiny_run_config().model),
                               "train": {"batch_size": 4, "max_len": 16, "lr": 1e-3}}))
    runner = CliRunner()
    args = ["train", "--cache", str(cache), "--metadata", str(meta), "--out", str(tmp_path / "run"),
            "--config", str(cfg), "--epochs", "1", "--seed", "1", "--device", "cpu", "--in-memory"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    # the closing lines name the best checkpoint, its epoch and metrics, the curves and settings
    row = _rows(tmp_path / "run")[-1]
    assert (f"best checkpoint: {tmp_path / 'run' / 'best.pt'} (epoch 1 of 1; validation "
            f"AP {row['val_ap_avg']:.4f}, AR {row['val_ar_avg']:.4f}") in result.output
    assert f"training curves: {tmp_path / 'run' / 'curves.png'}" in result.output
    assert "proposal settings: tuned on split 'dev'" in result.output
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    assert loaded.run_config.train.in_memory and loaded.run_config.train.seed == 1
    result = runner.invoke(main, args[:-1] + ["--set", "train.nope=1"])
    assert result.exit_code != 0 and "nope" in result.output
    result = runner.invoke(main, args)  # the run folder is taken
    assert result.exit_code != 0 and "--resume" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_gloo_ddp_ends_with_identical_parameters(tmp_path):
    import torch.multiprocessing as mp
    from train_fixtures import ddp_worker

    videos = make_videos({"train": 8, "dev": 2})
    cache = write_cache(tmp_path / "features.h5", videos)
    meta = write_metadata(tmp_path / "metadata.json", videos)
    mp.spawn(ddp_worker, args=(2, _free_port(), str(cache), str(meta), str(tmp_path)), nprocs=2)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert _same(rank0["weights"], rank1["weights"])
    assert not _same(rank0["weights"], rank0["initial"])  # the steps did change the weights
    rows = _rows(tmp_path / "run")
    assert len(rows) == 1  # rank 0 alone wrote the log
    # 8 videos over 2 ranks with batch 2: two steps per rank, all 8 samples counted
    assert rows[0]["train_steps"] == 2 and rows[0]["train_samples"] == 8
    assert load_checkpoint(tmp_path / "run" / "last.pt").epoch == 1


def test_weight_average_follows_the_raw_weights_with_warmup_and_restores_them():
    from pipeline.weight_average import WeightAverage

    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.0)
        net.bias.fill_(0.0)
    average = WeightAverage(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    average.update(net)  # step 0 uses decay min(0.9, 1/10) = 0.1: mostly the new weights
    assert torch.allclose(average.shadow["weight"], torch.full((1, 2), 0.9))
    average.update(net)  # step 1: min(0.9, 2/11)
    assert torch.allclose(average.shadow["weight"], torch.full((1, 2), 0.9 + 0.1 * (9 / 11)))
    with average.applied(net):
        assert torch.allclose(net.weight, average.shadow["weight"])
    assert torch.equal(net.weight, torch.ones(1, 2))  # raw weights back after the block
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, decay=1.0)


def test_weight_averaged_run_saves_the_average_and_resumes_exactly(tmp_path, run_data):
    cache, meta, _ = run_data
    two = tiny_run_config(epochs=2, seed=5, lr=1e-2, ema_decay=0.5)
    outcome = train_run(two, cache, meta, tmp_path / "straight")
    plain = train_run(tiny_run_config(epochs=2, seed=5, lr=1e-2), cache, meta, tmp_path / "plain")
    last = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    names = [name for name, _ in plain.model.named_parameters()]  # buffers hold calibrations
    raw, saved = last["train_state"]["raw_model_state"], last["model_state"]
    # the raw weights are the ones a run without the average ends with; the saved ones differ
    assert _same({n: raw[n] for n in names}, {n: _weights(plain.model)[n] for n in names})
    assert not _same(saved, raw)
    assert _same(saved, _weights(outcome.model))  # the run hands on what it saved
    one = dataclasses.replace(two, train=dataclasses.replace(two.train, epochs=1))
    train_run(one, cache, meta, tmp_path / "resumed")
    resumed = train_run(two, cache, meta, tmp_path / "resumed", resume=True)
    assert _same(_weights(resumed.model), _weights(outcome.model))
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_deviation_scorers_get_their_own_learning_rate_and_the_network_keeps_its_own():
    from model.rtdeeploc import build_model
    from pipeline.train import parameter_groups

    cfg = tiny_run_config(lr=1e-3, deviation_scorer_lr_scale=10.0)
    plain = build_model(cfg.model, VISUAL_DIM, AUDIO_DIM)
    groups = parameter_groups(plain, cfg.train)  # no scorer: one group, every parameter in order
    assert len(groups) == 1 and [id(p) for p in groups[0]["params"]] == [id(p) for p in plain.parameters()]
    scored = build_model(dataclasses.replace(cfg.model, deviation_scorer_weight=1.0), VISUAL_DIM, AUDIO_DIM)
    optimizer = torch.optim.AdamW(parameter_groups(scored, cfg.train), lr=cfg.train.lr)
    lrs = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in scored.named_parameters():
        assert lrs[id(param)] == pytest.approx(1e-2 if name.startswith("deviation_scorers.") else 1e-3), name
    with pytest.raises(ValueError, match="deviation_scorer_lr_scale"):
        TrainConfig(deviation_scorer_lr_scale=0.0)


def test_the_network_trains_bit_identically_beside_the_deviation_scorers(tmp_path, run_data):
    """Same seed, gradient clipping on: every network weight of a run with the learned
    deviation scorers equals the run without them (own optimiser group, own clipping)."""
    cache, meta, _ = run_data
    without = tiny_run_config(epochs=1, seed=2, lr=1e-2, grad_clip=0.05)
    with_scorers = dataclasses.replace(
        without, model=dataclasses.replace(without.model, deviation_scorer_weight=1.0))
    a = train_run(without, cache, meta, tmp_path / "a").model
    b = dict(train_run(with_scorers, cache, meta, tmp_path / "b").model.named_parameters())
    assert any(name.startswith("deviation_scorers.") for name in b)
    for name, param in a.named_parameters():
        assert torch.equal(param, b[name]), name


def test_fdn_pretraining_trains_only_the_fdns_on_authentic_videos_and_lowers_their_loss(run_data):
    """The pretraining stage (pipeline/fdn_pretrain.py): the hidden-frame loss falls, only
    FDN parameters move, the fake videos are never read, and it refuses a shared FDN."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata
    from model.rtdeeploc import build_model
    from pipeline.dataset import FeatureDataset
    from pipeline.fdn_pretrain import pretrain_fdn

    cache, meta, _ = run_data
    cfg = tiny_run_config(model_changes={"fdn_target": "input", "fdn_view": "own", "dropout": 0.0})
    records = [r for r in load_metadata(meta) if r.split == "train"]
    dataset = FeatureDataset(FeatureCache(cache), records, max_len=16)
    read = []
    original_read = dataset.video_arrays
    dataset.video_arrays = lambda index: read.append(index) or original_read(index)
    torch.manual_seed(0)
    model = build_model(cfg.model, VISUAL_DIM, AUDIO_DIM)
    before = _weights(model)
    history = pretrain_fdn(model, dataset, epochs=8, lr=1e-2, weight_decay=0.0, batch_size=4,
                           seed=0, device=torch.device("cpu"))
    assert len(history) == 8 and history[-1] < history[0]
    after = _weights(model)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("_fdn." in k for k in moved)
    assert read and all(records[i].label == 0 for i in read)
    shared = build_model(tiny_run_config().model, VISUAL_DIM, AUDIO_DIM)
    with pytest.raises(ValueError, match="fdn_view"):
        pretrain_fdn(shared, dataset, epochs=1, lr=1e-3, weight_decay=0.0, batch_size=4, seed=0,
                     device=torch.device("cpu"))
    with pytest.raises(ValueError, match="fdn_pretrain_epochs"):
        tiny_run_config(fdn_pretrain_epochs=2)  # the default FDN is shared


def test_a_run_with_fdn_pretraining_is_seeded_and_resumes_exactly(tmp_path, run_data):
    cache, meta, _ = run_data
    cfg = tiny_run_config(epochs=2, fdn_pretrain_epochs=2,
                          model_changes={"fdn_target": "input", "fdn_view": "own"})
    once = train_run(cfg, cache, meta, tmp_path / "once").model
    again = train_run(cfg, cache, meta, tmp_path / "again").model
    assert _same(_weights(once), _weights(again))
    plain = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, fdn_pretrain_epochs=0))
    assert not _same(_weights(once), _weights(train_run(plain, cache, meta, tmp_path / "plain").model))
    # stopped after one epoch and resumed: the stage is not run twice
    first = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1))
    train_run(first, cache, meta, tmp_path / "resumed")
    resumed = train_run(cfg, cache, meta, tmp_path / "resumed", resume=True).model
    assert _same(_weights(once), _weights(resumed))


def _scorer_keys(state, modality):
    from pipeline.scorer_epochs import SCORER_PREFIXES

    return {k: v for k, v in state.items() if k.startswith(SCORER_PREFIXES[modality])}


def _scripted_readings(monkeypatch, readings):
    """Make validation report the scorers' frame AUCs of `readings` ({modality: [per epoch]}),
    one epoch per call, so the epoch each scorer should keep is known."""
    calls = {"n": 0}

    def scripted(scores, records):
        epoch, calls["n"] = calls["n"], calls["n"] + 1
        return {m: values[epoch] for m, values in readings.items()}

    monkeypatch.setattr("pipeline.train.scorer_frame_aucs", scripted)
    return calls


def test_own_scorer_epochs_put_each_scorers_best_validation_epoch_into_best_pt(tmp_path, run_data,
                                                                              monkeypatch):
    from pipeline.checkpoint import read_checkpoint_payload

    cache, meta, _ = run_data
    network = tiny_run_config(epochs=3, seed=4, lr=1e-2, tune_proposals=False,
                              model_changes={"deviation_scorer_weight": 1.0})
    train_run(network, cache, meta, tmp_path / "network")
    two = dataclasses.replace(network, train=dataclasses.replace(network.train, epochs=2))
    train_run(two, cache, meta, tmp_path / "two")
    # validation reads each scorer's frame AUC on the dev fakes, whatever the mode
    for row in _rows(tmp_path / "network"):
        assert 0.0 <= row["val_visual_scorer_frame_auc"] <= 1.0
        assert 0.0 <= row["val_audio_scorer_frame_auc"] <= 1.0
        assert "best_visual_scorer_epoch" not in row

    _scripted_readings(monkeypatch, {"visual": [0.6, 0.9, 0.7], "audio": [0.5, 0.6, 0.8]})
    own = dataclasses.replace(network, train=dataclasses.replace(network.train, deviation_scorer_epoch="own"))
    outcome = train_run(own, cache, meta, tmp_path / "own")
    rows = _rows(tmp_path / "own")
    assert [(r["best_visual_scorer_epoch"], r["best_audio_scorer_epoch"]) for r in rows] == [(1, 1), (2, 2), (2, 3)]
    composed = read_checkpoint_payload(tmp_path / "own" / "best.pt")
    network_best = read_checkpoint_payload(tmp_path / "network" / "best.pt")
    assert composed["epoch"] == network_best["epoch"] == outcome.best_epoch
    assert composed["metrics"]["deviation_scorer_epochs"] == {"visual": 2, "audio": 3}
    scorers = {*_scorer_keys(composed["model_state"], "visual"), *_scorer_keys(composed["model_state"], "audio")}
    for key, value in composed["model_state"].items():  # the network: its own best epoch
        if key not in scorers:
            assert torch.equal(value, network_best["model_state"][key]), key
    at_two = read_checkpoint_payload(tmp_path / "two" / "last.pt")["model_state"]
    at_three = read_checkpoint_payload(tmp_path / "network" / "last.pt")["model_state"]
    assert _same(_scorer_keys(composed["model_state"], "visual"), _scorer_keys(at_two, "visual"))
    # the audio scorer with the percentile calibration fitted to its own output
    audio = _scorer_keys(composed["model_state"], "audio")
    assert any(k.startswith("audio_learned_calibration.") for k in audio)
    assert _same(audio, _scorer_keys(at_three, "audio"))
    if network_best["epoch"] != 2:  # then the network's epoch held other visual scorer weights
        assert not _same(_scorer_keys(composed["model_state"], "visual"),
                         _scorer_keys(network_best["model_state"], "visual"))
    from pipeline.train import describe_outcome
    outcome.best_metrics = composed["metrics"]
    assert "learned deviation scorers kept at their own best epochs: visual 2, audio 3" in describe_outcome(outcome)
    with pytest.raises(ValueError, match="train.deviation_scorer_epoch"):
        TrainConfig(deviation_scorer_epoch="last")


def test_own_scorer_epochs_survive_a_resume_and_a_kill_before_best_pt_was_composed(tmp_path, run_data,
                                                                                  monkeypatch):
    from pipeline.checkpoint import read_checkpoint_payload, save_payload

    cache, meta, _ = run_data
    own = tiny_run_config(epochs=3, seed=4, lr=1e-2, tune_proposals=False, deviation_scorer_epoch="own",
                          model_changes={"deviation_scorer_weight": 1.0})
    readings = {"visual": [0.9, 0.6, 0.7] * 2, "audio": [0.5, 0.8, 0.6] * 2}
    calls = _scripted_readings(monkeypatch, readings)
    train_run(own, cache, meta, tmp_path / "straight")
    straight = read_checkpoint_payload(tmp_path / "straight" / "best.pt")
    assert straight["metrics"]["deviation_scorer_epochs"] == {"visual": 1, "audio": 2}

    calls["n"] = 0
    one = dataclasses.replace(own, train=dataclasses.replace(own.train, epochs=1))
    train_run(one, cache, meta, tmp_path / "resumed")
    train_run(own, cache, meta, tmp_path / "resumed", resume=True)
    resumed = read_checkpoint_payload(tmp_path / "resumed" / "best.pt")
    assert resumed["metrics"]["deviation_scorer_epochs"] == {"visual": 1, "audio": 2}
    assert _same(resumed["model_state"], straight["model_state"])

    # killed after the last epoch, before the composition: best.pt holds scorers of another
    # epoch (here the last one's); resuming the finished run composes it again
    last_state = read_checkpoint_payload(tmp_path / "straight" / "last.pt")["model_state"]
    stale = dict(straight["model_state"])
    for modality in ("visual", "audio"):
        stale.update(_scorer_keys(last_state, modality))
    assert not _same(stale, straight["model_state"])
    metrics = {k: v for k, v in straight["metrics"].items() if k != "deviation_scorer_epochs"}
    save_payload(tmp_path / "straight" / "best.pt", dict(straight, model_state=stale, metrics=metrics))
    outcome = train_run(own, cache, meta, tmp_path / "straight", resume=True)
    assert outcome.epochs_completed == 3
    again = read_checkpoint_payload(tmp_path / "straight" / "best.pt")
    assert again["metrics"]["deviation_scorer_epochs"] == {"visual": 1, "audio": 2}
    for modality in ("visual", "audio"):
        assert _same(_scorer_keys(again["model_state"], modality),
                     _scorer_keys(straight["model_state"], modality))
