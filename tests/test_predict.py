"""run_predictions / predict_split / `rtdl predict` with a stand-in model whose outputs are
simple functions of the features, so every expected value is known by construction."""
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from data.labels import LABELS
from data.records import VideoRecord
from pipeline.proposals import ProposalConfig
from pipeline.inference import predict_arrays, run_predictions
from pipeline.predict import predict_split, probs_path_for
from pipeline.proposal_settings import load_proposal_config, write_proposals_yaml
from pipeline.proposal_tuning import tune_proposals
from numerics import FP32_DEEP, assert_close_to_scale

FPS = 4.0
SETTINGS = {"visual": {"name": "lowlevel"}, "audio": {"name": "logmel"}}
# one absolute level, no suppression: proposals are exactly the runs >= 0.5
CFG = ProposalConfig(thresholds=(0.5,), relative_thresholds=(), merge_gap_frames=1, min_frames=1,
                     outer_ratio=0.5, video_weight=0.0, nms="none")


@dataclass
class StandInPrediction:
    class_probs: torch.Tensor  # [B, 4]
    visual_scores: torch.Tensor  # [B, T]
    audio_scores: torch.Tensor
    joint_scores: torch.Tensor
    visual_recon_error: torch.Tensor
    audio_recon_error: torch.Tensor
    mask: torch.Tensor
    visual_error_evidence: torch.Tensor
    audio_error_evidence: torch.Tensor
    visual_deviation: torch.Tensor
    audio_deviation: torch.Tensor
    visual_deviation_evidence: torch.Tensor
    audio_deviation_evidence: torch.Tensor
    visual_learned_deviation: torch.Tensor
    audio_learned_deviation: torch.Tensor
    audio_learned_deviation_evidence: torch.Tensor
    av_desync: torch.Tensor
    sync_evidence: torch.Tensor
    spectral_detail: torch.Tensor
    spectral_detail_evidence: torch.Tensor
    visual_change: torch.Tensor


class StandInModel(torch.nn.Module):
    """Frame scores: channel 0 of each modality (joint: their max). Class probabilities:
    softmax(10 x mean over *valid* frames of visual channels 1..4), so leaked padding shows."""

    def predict(self, visual, audio, mask):  # [B,T,Dv], [B,T,Da], [B,T] -> StandInPrediction
        valid = mask.float().unsqueeze(-1)  # [B, T, 1]
        mean = (visual[..., 1:5] * valid).sum(1) / valid.sum(1)  # [B, 4]
        v, a = visual[..., 0] * mask, audio[..., 0] * mask  # [B, T]
        return StandInPrediction(torch.softmax(10 * mean, dim=-1), v, a, torch.maximum(v, a),
                                 2 * v, 3 * a, mask, (v > 0.5).float(), (a > 0.5).float(),
                                 4 * v, 5 * a, (v > 0.25).float(), (a > 0.25).float(),
                                 (v > 0.75).float(), (a > 0.75).float(), (a > 0.8).float(),
                                 6 * v, (v > 0.9).float(),
                                 8 * a, (a > 0.6).float(), 7 * a)


def make_video(label: int, visual_curve, audio_curve=None):
    """Features whose visual channel 1+label is on: the stand-in predicts `label`."""
    t = len(visual_curve)
    visual = np.zeros((t, 6), np.float32)
    visual[:, 0] = visual_curve
    visual[:, 1 + label] = 1.0
    audio = np.zeros((t, 3), np.float32)
    audio[:, 0] = audio_curve if audio_curve is not None else 0.0
    return visual, audio


class DictCache:
    """FeatureCache stand-in: the contract's read/info/keys/settings over a dict."""

    def __init__(self, videos):
        self.videos, self.settings = videos, SETTINGS
        self.visual_dim, self.audio_dim = 6, 3
        self.source = "dict-cache"

    def keys(self):
        return sorted(self.videos)

    def __contains__(self, key):
        return key in self.videos

    def __len__(self):
        return len(self.videos)

    def read(self, key):
        return self.videos[key]

    def info(self, key):
        n = self.videos[key][0].shape[0]
        return {"fps": FPS, "n_frames": n, "duration": n / FPS, "has_audio": True}


def record(file, label=1, n=8):
    return VideoRecord(file=file, split="test", duration=n / FPS, fps=FPS, n_frames=n, label=label,
                       fake_segments=())


VIDEOS = {
    "test/visual.mp4": make_video(1, [0, 0, 1, 1, 0, 0, 0, 0]),  # visual_only, run frames 2-3
    "test/audio.mp4": make_video(2, [1, 1, 1, 1, 1, 1, 1, 1][:6], [0, 0, 0, 0, 1, 1]),  # audio_only
    "test/flat.mp4": make_video(3, [0.0] * 10),  # both, nothing above 0.5 anywhere
}


def test_every_record_present_in_order_with_routed_segments():
    records = [record("test/flat.mp4"), record("test/visual.mp4"), record("test/audio.mp4")]
    preds, probs = run_predictions(StandInModel(), DictCache(VIDEOS), records, proposal_config=CFG)
    assert list(preds) == ["test/flat.mp4", "test/visual.mp4", "test/audio.mp4"]
    assert preds["test/flat.mp4"] == []
    # visual run [2,4): inner 1, outer width 1 (frames 1 and 4) = 0 -> contrast 1
    assert preds["test/visual.mp4"] == [[1.0, 0.5, 1.0]]
    # audio_only routes to the audio curve (the visual one is all ones): run [4,6) at the end
    # of the video, outer = frame 3 only = 0
    assert preds["test/audio.mp4"] == [[1.0, 1.0, 1.5]]
    assert set(probs) == set(preds)
    for key, label in [("test/visual.mp4", 1), ("test/audio.mp4", 2), ("test/flat.mp4", 3)]:
        assert len(probs[key]) == len(LABELS)
        assert int(np.argmax(probs[key])) == label
        assert sum(probs[key]) == pytest.approx(1.0, abs=1e-6)


def test_without_records_every_cached_video():
    preds, probs = run_predictions(StandInModel(), DictCache(VIDEOS), None, proposal_config=CFG)
    assert sorted(preds) == sorted(VIDEOS) and sorted(probs) == sorted(VIDEOS)


def test_batching_and_padding_do_not_change_outputs():
    videos = [(key, *VIDEOS[key]) for key in VIDEOS]
    one = predict_arrays(StandInModel(), videos, batch_size=1)
    mixed = predict_arrays(StandInModel(), videos, batch_size=3)
    for key in VIDEOS:
        for name, value in one[key].items():
            np.testing.assert_allclose(mixed[key][name], value, atol=1e-6)
        assert one[key]["visual_scores"].shape == (VIDEOS[key][0].shape[0],)


def test_long_video_in_windows():
    visual, audio = make_video(0, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    visual[7:, 1] = 0.0  # frames 7-9 lose their "real" evidence: window [8,10) has none left
    out = predict_arrays(StandInModel(), [("v", visual, audio)], max_frames=4)
    np.testing.assert_allclose(out["v"]["visual_scores"], visual[:, 0])  # stitched in order
    np.testing.assert_allclose(out["v"]["visual_recon_error"], 2 * visual[:, 0])
    # windows [0,4), [4,8), [8,10); the last has visual channels 1..4 all zero -> uniform probs
    np.testing.assert_allclose(out["v"]["class_probs"], [0.25] * 4, atol=1e-6)


def test_missing_video_is_an_error_unless_allowed():
    records = [record("test/visual.mp4"), record("test/gone.mp4")]
    with pytest.raises(ValueError, match="gone.mp4"):
        run_predictions(StandInModel(), DictCache(VIDEOS), records, proposal_config=CFG)
    preds, probs = run_predictions(StandInModel(), DictCache(VIDEOS), records, proposal_config=CFG,
                                   allow_missing=True)
    assert preds["test/gone.mp4"] == [] and "test/gone.mp4" not in probs


def test_tune_proposals_prefers_merging_a_split_forgery(tmp_path):
    # the visual run is cut by a 1-frame dip; ground truth is the whole span frames 2-6
    videos = {"dev/a.mp4": make_video(1, [0, 0, 1, 1, 0, 1, 1, 0])}
    truth = VideoRecord(file="dev/a.mp4", split="dev", duration=2.0, fps=FPS, n_frames=8, label=1,
                        fake_segments=((0.5, 1.75),))
    best, results = tune_proposals(StandInModel(), DictCache(videos), [truth],
                                   {"merge_gap_frames": [1, 2]}, base=CFG, signal_grid={})
    # merge 1: [0.5,1.0] and [1.25,1.75], IoU 0.4 each: AR@N over IoU 0.5:0.95 is 0 (AP too);
    # merge 2: [0.5,1.75], IoU 1: AR 1 -> objective 0.5 * 0 (AP skips the first step) + 0.5 * 1
    assert [value for _, value in results] == [0.0, 0.5]
    assert best.merge_gap_frames == 2
    write_proposals_yaml(best, tmp_path / "best.yaml")
    assert load_proposal_config(tmp_path / "best.yaml") == best


def test_tuning_chooses_error_evidence_when_the_heads_miss_the_forgery():
    # the stand-in's head curve (visual channel 0) marks frames 0-1, its error evidence
    # (channel 0 > 0.5 there too) would agree; make them disagree: head high on 0-1, the
    # truth on 4-6, and the evidence given by a stand-in model whose evidence is the truth
    class EvidenceModel(StandInModel):
        def predict(self, visual, audio, mask):
            pred = super().predict(visual, audio, mask)
            truth = torch.zeros_like(pred.visual_scores)
            truth[:, 4:7] = 1.0
            pred.visual_error_evidence = truth * mask
            return pred

    videos = {"dev/a.mp4": make_video(1, [1, 1, 0, 0, 0, 0, 0, 0])}
    truth = VideoRecord(file="dev/a.mp4", split="dev", duration=2.0, fps=FPS, n_frames=8, label=1,
                        fake_segments=((1.0, 1.75),))
    best, results = tune_proposals(EvidenceModel(), DictCache(videos), [truth], {"min_frames": [2]},
                                   base=CFG, signal_grid={"error_weight": (0.0, 1.0)})
    assert best.error_weight == 1.0
    assert results[0][1] < results[1][1]  # heads only scored below evidence only on dev


# ---------------------------------------------------------------- files and CLI, on a real cache


@pytest.fixture
def on_disk(tmp_path, monkeypatch):
    """A real HDF5 cache and LAV-DF metadata; load_checkpoint returns the stand-in model."""
    from data.cache import CacheWriter
    from pipeline import checkpoint as checkpoint_module

    cache_path = tmp_path / "feats.h5"
    with CacheWriter(cache_path, SETTINGS) as writer:
        for key, (visual, audio) in VIDEOS.items():
            n = visual.shape[0]
            writer.write(key, visual, audio, fps=FPS, duration=n / FPS, has_audio=True)
    meta = [{"file": key, "split": "test" if key != "test/flat.mp4" else "dev", "n_fakes": 0,
             "fake_periods": [], "duration": VIDEOS[key][0].shape[0] / FPS, "original": None,
             "modify_video": False, "modify_audio": False, "video_frames": VIDEOS[key][0].shape[0],
             "audio_channels": 1, "audio_frames": 16000} for key in VIDEOS]
    meta_path = tmp_path / "metadata.json"
    meta_path.write_text(json.dumps(meta))

    def fake_load(path, map_location="cpu", settings=SETTINGS):
        return checkpoint_module.LoadedCheckpoint(
            model=StandInModel(), run_config=None, model_config=None, labels=LABELS, visual_dim=6,
            audio_dim=3, feature_settings=dict(settings), version="test", epoch=1, metrics={})

    monkeypatch.setattr(checkpoint_module, "load_checkpoint", fake_load)
    return tmp_path, cache_path, meta_path, fake_load


def test_predict_split_writes_preds_and_probs(on_disk):
    tmp_path, cache_path, meta_path, _ = on_disk
    out = tmp_path / "out" / "preds.json"
    summary = predict_split(cache_path, tmp_path / "model.pt", meta_path, "test", out_path=out,
                            proposal_config=CFG, device="cpu")
    preds = json.loads(out.read_text())
    probs = json.loads(probs_path_for(out).read_text())
    assert probs_path_for(out).name == "preds_probs.json"
    assert sorted(preds) == ["test/audio.mp4", "test/visual.mp4"]  # the dev video is not in "test"
    assert preds["test/visual.mp4"] == [[1.0, 0.5, 1.0]]
    assert sorted(probs) == sorted(preds)
    assert summary["videos"] == 2 and summary["proposals"] == 2


def test_predict_split_refuses_other_extractor_settings(on_disk, monkeypatch):
    tmp_path, cache_path, meta_path, fake_load = on_disk
    from pipeline import checkpoint as checkpoint_module

    other = {"visual": {"name": "tsn"}, "audio": {"name": "logmel"}}
    monkeypatch.setattr(checkpoint_module, "load_checkpoint",
                        lambda path, map_location="cpu": fake_load(path, map_location, other))
    with pytest.raises(ValueError, match=r"visual\.name"):
        predict_split(cache_path, tmp_path / "model.pt", out_path=tmp_path / "p.json", device="cpu")
    with pytest.raises(ValueError, match="--split needs --metadata"):
        predict_split(cache_path, tmp_path / "model.pt", None, "test", out_path=tmp_path / "p.json")


def test_cli_predict_every_cached_video(on_disk):
    from pipeline.cli import main

    tmp_path, cache_path, _, _ = on_disk
    out = tmp_path / "all.json"
    result = CliRunner().invoke(main, ["predict", "--cache", str(cache_path), "--checkpoint",
                                       str(tmp_path / "model.pt"), "--out", str(out), "--device", "cpu",
                                       "--set", "thresholds=[0.5]", "--set", "nms=none"])
    assert result.exit_code == 0, result.output
    preds = json.loads(out.read_text())
    assert sorted(preds) == sorted(VIDEOS)
    assert preds["test/flat.mp4"] == []
    for proposals in preds.values():
        scores = [p[0] for p in proposals]
        assert scores == sorted(scores, reverse=True)
    bad = CliRunner().invoke(main, ["predict", "--cache", str(cache_path), "--checkpoint", "x.pt",
                                    "--out", str(out), "--set", "nms=fancy"])
    assert bad.exit_code != 0 and "nms" in bad.output


def test_nan_features_stop_predict_naming_cache_video_and_nothing_is_written(on_disk):
    from data.cache import CacheWriter
    from pipeline.cli import main

    tmp_path, _, meta_path, _ = on_disk
    poisoned = tmp_path / "poisoned.h5"
    with CacheWriter(poisoned, SETTINGS) as writer:
        for key, (visual, audio) in VIDEOS.items():
            audio = audio.copy()
            if key == "test/audio.mp4":
                audio[2, 1] = np.nan
            writer.write(key, visual, audio, fps=FPS, duration=len(visual) / FPS, has_audio=True)
    out = tmp_path / "preds.json"
    result = CliRunner().invoke(main, ["predict", "--cache", str(poisoned), "--checkpoint",
                                       str(tmp_path / "model.pt"), "--metadata", str(meta_path),
                                       "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 1
    assert (f"Error: {poisoned}: video 'test/audio.mp4': audio features hold NaN or Inf in "
            f"1 of") in result.output
    assert not out.exists() and not probs_path_for(out).exists()


def test_non_finite_model_outputs_are_never_written_as_json(on_disk, monkeypatch):
    tmp_path, cache_path, meta_path, _ = on_disk
    predict = StandInModel.predict

    def broken(self, visual, audio, mask):  # finite features, broken weights
        out = predict(self, visual, audio, mask)
        out.class_probs = out.class_probs * float("nan")
        return out

    monkeypatch.setattr(StandInModel, "predict", broken)
    out = tmp_path / "preds.json"
    with pytest.raises(ValueError, match="json: not written: the model produced NaN or Inf"):
        predict_split(cache_path, tmp_path / "model.pt", meta_path, out_path=out, device="cpu",
                      proposal_config=CFG)
    assert not out.exists() and not probs_path_for(out).exists()


def test_predict_split_with_a_real_tiny_checkpoint(tmp_path):
    """The real model and checkpoint format end to end; padding must not change any output."""
    from data.cache import CacheWriter
    from model.rtdeeploc import build_model
    from pipeline.checkpoint import load_checkpoint, save_checkpoint
    from train_fixtures import tiny_run_config

    cache_path = tmp_path / "feats.h5"
    with CacheWriter(cache_path, SETTINGS) as writer:
        for key, (visual, audio) in VIDEOS.items():
            writer.write(key, visual, audio, fps=FPS, duration=visual.shape[0] / FPS, has_audio=True)
    run_config = tiny_run_config()
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", build_model(run_config.model, 6, 3), run_config, epoch=1,
                           metrics={}, feature_settings=SETTINGS, visual_dim=6, audio_dim=3)
    out = tmp_path / "preds.json"
    predict_split(cache_path, ckpt, out_path=out, device="cpu", batch_size=3)
    preds, probs = json.loads(out.read_text()), json.loads(probs_path_for(out).read_text())
    assert sorted(preds) == sorted(VIDEOS) == sorted(probs)
    model = load_checkpoint(ckpt).model
    alone = predict_arrays(model, [(k, *VIDEOS[k]) for k in VIDEOS], batch_size=1)
    padded = predict_arrays(model, [(k, *VIDEOS[k]) for k in VIDEOS], batch_size=3)
    for key in VIDEOS:
        assert_close_to_scale(probs[key], alone[key]["class_probs"], FP32_DEEP)
        for name in alone[key]:
            assert_close_to_scale(padded[key][name], alone[key][name], FP32_DEEP, name)
        for score, start, end in preds[key]:
            assert 0.0 <= start < end <= VIDEOS[key][0].shape[0] / FPS
