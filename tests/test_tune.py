"""Tuned checkpoints: `rtdl train` stores proposal settings chosen on its validation split,
`rtdl predict` / `rtdl localize` use them by default, `rtdl tune` redoes the choice."""
import json

import pytest
import torch
import yaml
from click.testing import CliRunner

from data.config import to_dict
from pipeline.checkpoint import load_checkpoint, read_checkpoint_payload, update_checkpoint
from pipeline.proposal_settings import load_proposal_config, resolve_proposal_config
from pipeline.proposal_tuning import DEFAULT_TUNING_GRID, SIGNAL_TUNING_GRID
from pipeline.proposals import ProposalConfig, reads_network
from pipeline.train import train_run
from pipeline.tune import load_grid
from train_fixtures import make_run_data, tiny_run_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny two-epoch run (train and dev splits) and its folder."""
    tmp_path = tmp_path_factory.mktemp("tune")
    cache, meta, _ = make_run_data(tmp_path)
    outcome = train_run(tiny_run_config(epochs=2, lr=1e-2, tune_last=True), cache, meta, tmp_path / "run")
    return tmp_path, cache, meta, outcome


def _grid_size(grid: dict) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def test_train_stores_settings_tuned_on_dev_in_both_checkpoints(trained):
    tmp_path, _, _, outcome = trained
    run = tmp_path / "run"
    best, last = read_checkpoint_payload(run / "best.pt"), read_checkpoint_payload(run / "last.pt")
    for payload in (best, last):
        config = ProposalConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in payload["proposal_config"].items()})
        tuning = payload["proposal_tuning"]
        assert tuning["split"] == "dev" and tuning["videos"] == 4 and tuning["protocol"] == "rtdeeploc"
        assert tuning["objective"].startswith("0.5 * mean AP + 0.5 * mean AR")
        assert tuning["checkpoint_epoch"] == payload["epoch"]
        # every candidate of both stages was scored, and the chosen one scores the best of stage 2;
        # the model has no learned deviation scorer, so that evidence and its mean with the
        # desynchrony were left out of stage 1; the trainer fitted the desynchrony, so it stays
        signal_grid = {**SIGNAL_TUNING_GRID, "evidence": ("reconstruction", "deviation", "sync")}
        assert tuning["signal_grid"] == {k: list(v) for k, v in signal_grid.items()}
        # both stages, then at most both again (a second pass, proposal_tuning.coordinate_search)
        two_stages = _grid_size(signal_grid) + _grid_size(DEFAULT_TUNING_GRID)
        assert len(tuning["tried"]) in (two_stages, two_stages + _grid_size(signal_grid),
                                        2 * two_stages)
        values = [value for _, value in tuning["tried"]]
        assert tuning["best_objective"] == max(values) >= tuning["default_objective"]
        assert tuning["grid"] == {k: list(v) for k, v in DEFAULT_TUNING_GRID.items()}
        assert isinstance(config, ProposalConfig)
        assert tuning["reads_network"] == reads_network(config)
    # proposals.yaml beside the checkpoints holds best.pt's settings and says how they were chosen
    text = (run / "proposals.yaml").read_text()
    assert "objective: 0.5 * mean AP" in text and "split 'dev'" in text
    assert to_dict(load_proposal_config(run / "proposals.yaml")) == best["proposal_config"]
    assert outcome.proposal_tuning["best_objective"] == best["proposal_tuning"]["best_objective"]
    assert outcome.best_epoch == best["epoch"]


@pytest.mark.parametrize("tune_last", [False, True])
def test_last_checkpoint_of_other_weights_is_tuned_only_when_asked(trained, tmp_path, tune_last):
    import shutil

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.checkpoint import save_payload
    from pipeline.proposal_tuning import tune_run_checkpoints

    run, cache, meta, _ = trained[0] / "run", trained[1], trained[2], trained[3]
    best, last = tmp_path / "best.pt", tmp_path / "last.pt"
    shutil.copy(run / "best.pt", best)
    payload = read_checkpoint_payload(run / "last.pt")
    for field in ("proposal_config", "proposal_tuning"):
        payload.pop(field, None)
    payload["epoch"] = int(read_checkpoint_payload(best)["epoch"]) + 1  # not best.pt's weights
    save_payload(last, payload)
    dev = records_for_split(load_metadata(meta), "dev")
    config, _ = tune_run_checkpoints(best, last, load_checkpoint(last).model, FeatureCache(cache), dev,
                                     "dev", "cpu", tune_last=tune_last)
    assert read_checkpoint_payload(best)["proposal_config"] == to_dict(config)
    tuned_last = read_checkpoint_payload(last)
    if tune_last:
        assert tuned_last["proposal_tuning"]["checkpoint_epoch"] == payload["epoch"]
    else:  # no settings of best.pt's weights passed off as last.pt's
        assert "proposal_config" not in tuned_last
        _, source = resolve_proposal_config(load_checkpoint(last), "last.pt")
        assert source.startswith("defaults (checkpoint last.pt holds no tuned settings")


def test_settings_come_from_the_file_else_the_checkpoint_else_the_defaults(trained, tmp_path):
    run = trained[0] / "run"
    checkpoint = load_checkpoint(run / "best.pt")
    stored = checkpoint.proposal_config
    chosen, source = resolve_proposal_config(checkpoint, "best.pt")
    assert to_dict(chosen) == stored and source.startswith("checkpoint best.pt (tuned on split 'dev'")
    chosen, source = resolve_proposal_config(checkpoint, "best.pt", overrides=["min_frames=7"])
    assert chosen.min_frames == 7 and chosen.nms == stored["nms"] and "--set min_frames=7" in source
    custom = tmp_path / "mine.yaml"
    custom.write_text("nms: none\n")
    chosen, source = resolve_proposal_config(checkpoint, "best.pt", custom)
    assert chosen == ProposalConfig(nms="none") and source == f"file {custom}"
    checkpoint.proposal_config = None
    chosen, source = resolve_proposal_config(checkpoint, "best.pt")
    assert chosen == ProposalConfig() and source.startswith("defaults")


def test_predict_uses_the_checkpoint_settings_and_records_them(trained):
    from pipeline.cli import main

    tmp_path, cache, meta, _ = trained
    best = tmp_path / "run" / "best.pt"
    out = tmp_path / "preds.json"
    args = ["predict", "--cache", str(cache), "--checkpoint", str(best), "--metadata", str(meta),
            "--split", "dev", "--out", str(out), "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"proposal settings: checkpoint {best} (tuned on split 'dev'" in result.output
    used = tmp_path / "preds_proposals.yaml"
    assert to_dict(load_proposal_config(used)) == read_checkpoint_payload(best)["proposal_config"]
    assert used.read_text().startswith(f"# proposal settings used for preds.json: checkpoint {best}")
    result = CliRunner().invoke(main, args + ["--set", "max_proposals=1"])
    assert result.exit_code == 0, result.output
    assert all(len(p) <= 1 for p in json.loads(out.read_text()).values())
    assert load_proposal_config(used).max_proposals == 1 and "--set max_proposals=1" in used.read_text()


def test_rtdl_tune_writes_yaml_and_updates_the_checkpoint_atomically(trained, tmp_path):
    import shutil

    from pipeline.cli import main

    run_dir, cache, meta, _ = trained
    ckpt = tmp_path / "copy.pt"
    shutil.copy(run_dir / "run" / "best.pt", ckpt)
    before = read_checkpoint_payload(ckpt)
    grid = tmp_path / "grid.yaml"
    grid.write_text("signal: {}\nproposals:\n  min_frames: [2, 5]\n  thresholds: [[0.5], [0.3, 0.6]]\n")
    out = tmp_path / "tuned.yaml"
    result = CliRunner().invoke(main, ["tune", "--cache", str(cache), "--checkpoint", str(ckpt),
                                       "--metadata", str(meta), "--split", "dev", "--grid", str(grid),
                                       "--protocol", "lavdf", "--out", str(out), "--write-checkpoint",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "objective: 0.5 * mean AP + 0.5 * mean AR (lavdf protocol" in result.output
    assert "min_frames" in result.output and str(out) in result.output
    after = read_checkpoint_payload(ckpt)
    tuning = after["proposal_tuning"]
    assert tuning["protocol"] == "lavdf" and tuning["signal_grid"] == {}
    assert tuning["grid"] == {"min_frames": [2, 5], "thresholds": [[0.5], [0.3, 0.6]]}
    assert len(tuning["tried"]) == 4 and tuning["tuned_by"] == "rtdl tune"
    chosen = load_proposal_config(out)
    assert to_dict(chosen) == after["proposal_config"]
    assert chosen.min_frames in (2, 5) and chosen.thresholds in ((0.5,), (0.3, 0.6))
    for key in before["model_state"]:  # the weights are untouched
        assert torch.equal(before["model_state"][key], after["model_state"][key])
    assert not list(tmp_path.glob(".copy.pt.tmp-*"))


def test_bad_grid_files_name_file_and_field(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("proposals:\n  min_frame: [2]\n")
    with pytest.raises(ValueError, match=f"{grid}.*min_frame"):
        load_grid(grid)
    grid.write_text("stage3:\n  min_frames: [2]\n")
    with pytest.raises(ValueError, match="unknown section.*stage3"):
        load_grid(grid)
    grid.write_text("proposals:\n  min_frames: 2\n")
    with pytest.raises(ValueError, match="proposals.min_frames: expected a non-empty list"):
        load_grid(grid)
    grid.write_text("proposals:\n  nms: [soft, fancy]\n")
    with pytest.raises(ValueError, match="nms"):
        load_grid(grid)
    assert load_grid(None) == (None, None)


def test_update_checkpoint_changes_only_proposal_fields(trained, tmp_path):
    import shutil

    ckpt = tmp_path / "c.pt"
    shutil.copy(trained[0] / "run" / "last.pt", ckpt)
    with pytest.raises(ValueError, match="model_state"):
        update_checkpoint(ckpt, model_state={})
    update_checkpoint(ckpt, proposal_config={"nms": "none"}, proposal_tuning={"split": "x"})
    payload = read_checkpoint_payload(ckpt)
    assert payload["proposal_config"] == {"nms": "none"} and "train_state" in payload
    assert yaml.safe_dump(payload["proposal_tuning"])  # plain types only


def test_evidence_kinds_are_tried_only_where_a_video_has_them():
    import numpy as np

    from pipeline.proposal_tuning import without_missing_evidence
    from pipeline.proposals import VideoScores

    flat = np.zeros(5)
    plain = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2)
    learned = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2,
                          visual_learned_deviation=np.linspace(0, 1, 5))
    synced = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2,
                         sync_evidence=np.linspace(0, 1, 5))
    errors = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2,
                         audio_evidence=np.linspace(0, 1, 5))
    detailed = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2,
                           spectral_detail_evidence=np.linspace(0, 1, 5))
    calibrated = VideoScores(np.array([0.1, 0.9, 0, 0]), flat, flat, flat, 25.0, 0.2,
                             audio_learned_deviation_evidence=np.linspace(0, 1, 5))
    assert without_missing_evidence(SIGNAL_TUNING_GRID,
                                    {"a": plain, "b": learned, "c": synced, "d": errors,
                                     "e": detailed, "f": calibrated}) == SIGNAL_TUNING_GRID
    # the largest of three audio cues needs the learned deviation's percentile (a checkpoint
    # from before it has none)
    assert "sync_and_learned_deviation_or_audio_cues" not in without_missing_evidence(
        SIGNAL_TUNING_GRID, {"a": plain, "b": learned, "c": synced, "d": errors, "e": detailed})["evidence"]
    # the spectral detail (log-mel audio only) goes with the desynchrony, and with the learned
    # deviation in the kind that reads it
    assert without_missing_evidence(SIGNAL_TUNING_GRID, {"c": synced, "e": detailed})["evidence"] \
        == ("reconstruction", "deviation", "sync", "sync_or_spectral_detail")
    assert without_missing_evidence(SIGNAL_TUNING_GRID, {"a": plain, "e": detailed})["evidence"] \
        == ("reconstruction", "deviation")
    # without any FDN error the kind that reads its outliers is dropped, the paper's reading kept
    assert without_missing_evidence(SIGNAL_TUNING_GRID, {"b": learned, "c": synced})["evidence"] \
        == ("reconstruction", "deviation", "learned_deviation", "sync", "sync_and_learned_deviation")
    dropped = without_missing_evidence(SIGNAL_TUNING_GRID, {"a": plain})
    assert dropped["evidence"] == ("reconstruction", "deviation")
    assert {k: v for k, v in dropped.items() if k != "evidence"} == \
        {k: v for k, v in SIGNAL_TUNING_GRID.items() if k != "evidence"}
    # a mean of two kinds needs both
    assert without_missing_evidence(SIGNAL_TUNING_GRID, {"a": plain, "b": learned})["evidence"] == \
        ("reconstruction", "deviation", "learned_deviation")
    assert without_missing_evidence(SIGNAL_TUNING_GRID, {"c": synced})["evidence"] == \
        ("reconstruction", "deviation", "sync")


def _records(counts: dict[int, int]):
    from data.records import VideoRecord

    records = []
    for label, n in counts.items():
        for i in range(n):
            segments = () if label == 0 else ((0.0, 1.0),)
            records.append(VideoRecord(file=f"dev/{label}_{i:04d}.mp4", split="dev", duration=2.0, fps=25.0,
                                       n_frames=50, label=label, fake_segments=segments))
    return records


def test_tuning_sample_is_a_fixed_label_stratified_subset():
    from pipeline.proposal_tuning import tuning_sample

    records = _records({0: 500, 1: 300, 2: 150, 3: 50})
    sample = tuning_sample(records, 100)
    assert len(sample) == 100
    assert [sum(r.label == k for r in sample) for k in range(4)] == [50, 30, 15, 5]
    assert sample == [r for r in records if r in sample]  # the split's order is kept
    # the same split in another order gives the same videos: no random draw
    assert {r.file for r in tuning_sample(records[::-1], 100)} == {r.file for r in sample}
    assert tuning_sample(records, 0) == records and tuning_sample(records, 5000) == records
    # a label too small for its share still gets a video while the budget allows
    few = tuning_sample(_records({0: 990, 3: 10}), 20)
    assert len(few) == 20 and sum(r.label == 3 for r in few) == 1
    with pytest.raises(ValueError, match="max_videos"):
        tuning_sample(records, -1)


def test_rtdl_tune_samples_large_splits_and_says_so_on_two_workers(trained, tmp_path):
    import shutil

    from pipeline.cli import main

    run_dir, cache, meta, _ = trained
    ckpt = tmp_path / "copy.pt"
    shutil.copy(run_dir / "run" / "best.pt", ckpt)
    grid = tmp_path / "grid.yaml"
    grid.write_text("signal: {}\nproposals:\n  min_frames: [2, 5]\n")
    result = CliRunner().invoke(main, ["tune", "--cache", str(cache), "--checkpoint", str(ckpt),
                                       "--metadata", str(meta), "--grid", str(grid), "--max-videos", "3",
                                       "--workers", "2", "--passes", "1",
                                       "--out", str(tmp_path / "tuned.yaml"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "3 of 4 videos, a fixed sample stratified by label" in result.output
    assert "each from the best so far: 1 at most" in result.output


def test_a_negative_tuning_sample_size_names_the_field():
    from pipeline.train_config import TrainConfig

    with pytest.raises(ValueError, match="train.tune_max_videos: must be >= 0"):
        TrainConfig(tune_max_videos=-1)
    assert TrainConfig(tune_max_videos=0).tune_max_videos == 0  # 0: the whole split
    with pytest.raises(ValueError, match="train.tune_passes: must be >= 1"):
        TrainConfig(tune_passes=0)


def _scored_split(n_videos: int = 12, seed: int = 0):
    """Validation scores and records: each fake video has one forged span that its routed
    curve marks, with noise, so that the candidates below score differently."""
    import numpy as np

    from data.records import VideoRecord
    from pipeline.proposals import VideoScores

    rng = np.random.default_rng(seed)
    scores, records = {}, []
    for i in range(n_videos):
        label = i % 4
        frames, fps = 60, 25.0
        curves = [rng.uniform(0, 0.4, frames) for _ in range(3)]
        segments = ()
        if label:
            start = int(rng.integers(5, 40))
            stop = start + int(rng.integers(5, 15))
            for curve in curves:
                curve[start:stop] += rng.uniform(0.3, 0.6)
            segments = ((start / fps, stop / fps),)
        probs = rng.dirichlet(np.ones(4))
        file = f"dev/{i:03d}.mp4"
        scores[file] = VideoScores(probs, *curves, fps, frames / fps)
        records.append(VideoRecord(file=file, split="dev", duration=frames / fps, fps=fps,
                                   n_frames=frames, label=label, fake_segments=segments))
    return scores, records


def test_tuning_on_worker_processes_chooses_and_reports_what_one_process_does():
    from pipeline.proposal_tuning import tune_on_scores

    scores, records = _scored_split()
    signal = {"routing": ("argmax", "soft", "joint"), "smooth_frames": (1, 5)}
    grid = {"min_frames": (2, 4), "merge_gap_frames": (1, 3), "nms": ("soft", "hard")}
    alone = tune_on_scores(scores, records, signal_grid=signal, grid=grid, workers=1)
    shared = tune_on_scores(scores, records, signal_grid=signal, grid=grid, workers=2)
    assert shared == alone
    assert len({value for _, value in alone[1]}) > 3  # the candidates do differ


def test_worker_count_is_one_per_core_for_large_searches_only():
    from pipeline.grid_workers import MAX_AUTO_WORKERS, SERIAL_BELOW, available_cores, worker_count

    assert worker_count(None, videos=10, candidates=SERIAL_BELOW // 10 - 1) == 1
    assert worker_count(None, videos=1000, candidates=768) == min(available_cores(), MAX_AUTO_WORKERS)
    assert worker_count(None, videos=10_000, candidates=1) == 1  # one candidate: nothing to split
    assert worker_count(3, videos=1, candidates=768) == 3  # asked for: no size rule
    assert worker_count(MAX_AUTO_WORKERS + 8, videos=1, candidates=768) == MAX_AUTO_WORKERS + 8
    assert worker_count(8, videos=1, candidates=2) == 2
    with pytest.raises(ValueError, match="workers"):
        worker_count(0, videos=10, candidates=10)


def test_challenge_score_is_the_mean_of_avg_ap_and_avg_ar():
    from pipeline.metrics import PROTOCOLS, ChallengeScore, evaluate_predictions
    from pipeline.proposals import all_proposals

    scores, records = _scored_split(seed=1)
    predictions = all_proposals(scores)
    chosen = PROTOCOLS["lavdf"]
    metrics = evaluate_predictions(predictions, records, ap_iou=chosen.ap_iou, ar_n=chosen.ar_n,
                                   ar_iou=chosen.ar_iou)
    assert metrics["ap_avg"] != metrics["ar_avg"]
    assert ChallengeScore(tuple(records), "lavdf")(predictions) == \
        pytest.approx(0.5 * metrics["ap_avg"] + 0.5 * metrics["ar_avg"])
    with pytest.raises(ValueError, match="unknown protocol 'lav-df'"):
        ChallengeScore(tuple(records), "lav-df")


def test_tuning_scores_in_this_process_when_workers_cannot_start(monkeypatch, caplog):
    import pipeline.grid_workers as grid_workers
    from pipeline.proposal_tuning import tune_on_scores

    scores, records = _scored_split(seed=2)
    grid = {"min_frames": (2, 4), "nms": ("soft", "hard")}
    alone = tune_on_scores(scores, records, signal_grid={}, grid=grid, workers=1)

    class NoProcesses:
        def __init__(self, *args, **kwargs):
            raise OSError("process creation is not allowed here")

    monkeypatch.setattr(grid_workers, "ProcessPoolExecutor", NoProcesses)
    with caplog.at_level("WARNING", logger="pipeline.grid_workers"):
        assert tune_on_scores(scores, records, signal_grid={}, grid=grid, workers=2) == alone
    assert "4 proposal-setting candidates on 2 worker processes failed" in caplog.text
    assert "process creation is not allowed here" in caplog.text


def _table_search(table: dict, fields: tuple, searched: list | None = None):
    """A stand-in for `grid_search` whose objective is `table[(config.<field>, ...)]`,
    noting each grid it searches in `searched`."""
    import dataclasses
    import itertools

    def table_search(scores, objective, grid, base, workers=None):
        if searched is not None:
            searched.append(dict(grid))
        results, best, best_value = [], base, -1.0
        for values in itertools.product(*grid.values()):
            overrides = dict(zip(grid, values))
            config = dataclasses.replace(base, **overrides)
            value = table[tuple(getattr(config, field) for field in fields)]
            results.append((overrides, value))
            if value > best_value:
                best, best_value = config, value
        return best, results

    return table_search


def test_a_second_pass_finds_what_the_two_stages_miss(monkeypatch):
    import pipeline.proposal_tuning as tuning

    # the objective of each (smooth_frames, min_frames): the evidence stage (smooth_frames)
    # chosen under the default min_frames 2 leads away from the best pair, (1, 4)
    table = {(1, 2): 0.0, (5, 2): 1.0, (5, 4): 2.0, (1, 4): 3.0}
    searched = []
    monkeypatch.setattr(tuning, "grid_search",
                        _table_search(table, ("smooth_frames", "min_frames"), searched))
    stages = [{"smooth_frames": (1, 5)}, {"min_frames": (2, 4)}]
    one, tried_one = tuning.coordinate_search({}, None, stages, passes=1)
    assert (one.smooth_frames, one.min_frames) == (5, 4) and len(tried_one) == 4
    searched.clear()
    two, tried_two = tuning.coordinate_search({}, None, stages, passes=2)
    assert (two.smooth_frames, two.min_frames) == (1, 4)
    assert max(value for _, value in tried_two) == table[(1, 4)]
    assert searched == [*stages, *stages]  # the evidence again, then the settings again
    # a pass that finds nothing better ends at once, without searching its later stages
    searched.clear()
    three, _ = tuning.coordinate_search({}, None, stages, passes=3)
    assert three == two and searched == [*stages, *stages, stages[0]]
    with pytest.raises(ValueError, match="passes"):
        tuning.coordinate_search({}, None, stages, passes=0)


def test_the_search_starts_where_dev_chose_most_often_when_the_grid_holds_it(monkeypatch):
    import dataclasses

    import pipeline.proposal_tuning as tuning
    from pipeline.proposals import ProposalConfig

    # the objective of each (routing, min_frames): under the default runs of 2 frames argmax
    # routing wins the evidence stage, under runs of 4 (TUNING_START's) soft routing does,
    # and (soft, 4) is the best pair
    table = {("argmax", 2): 1.0, ("soft", 2): 0.0, ("argmax", 4): 2.0, ("soft", 4): 3.0}
    monkeypatch.setattr(tuning, "grid_search", _table_search(table, ("routing", "min_frames")))
    stages = dict(signal_grid={"routing": ("argmax", "soft")}, grid={"min_frames": (2, 4)}, passes=1)
    assert tuning.TUNING_START["min_frames"] == 4
    best, _ = tuning.tune_on_scores({}, [], **stages)
    assert (best.routing, best.min_frames) == ("soft", 4)
    stuck, _ = tuning.tune_on_scores({}, [], base=ProposalConfig(), **stages)
    assert (stuck.routing, stuck.min_frames) == ("argmax", 4)

    # a start value outside the grid is not used: it could survive into the choice
    assert tuning.tuning_start({"min_frames": (2, 3)}) == ProposalConfig()
    start = tuning.tuning_start(tuning.DEFAULT_TUNING_GRID)
    assert start == dataclasses.replace(ProposalConfig(), **tuning.TUNING_START)
    # and each start value comes first in the default grid, so ties keep it
    assert all(tuning.DEFAULT_TUNING_GRID[name][0] == value
               for name, value in tuning.TUNING_START.items())
