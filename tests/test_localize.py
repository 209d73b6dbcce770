"""rtdl localize and the evidence plot: stand-ins for exact expectations, then the real chain
(generated clip -> weight-free extractors -> tiny random model checkpoint -> CLI)."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from data.labels import LABELS, modality_probabilities
from pipeline import checkpoint as checkpoint_module
from pipeline.localize import localize_videos
from pipeline.plots import plot_evidence
from pipeline.proposals import ProposalConfig
from test_predict import StandInModel, make_video

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CFG = ProposalConfig(thresholds=(0.5,), relative_thresholds=(), merge_gap_frames=1, min_frames=1,
                     outer_ratio=0.5, video_weight=0.0, nms="none")


def test_plot_evidence_writes_png(tmp_path):
    times = np.arange(20) / 4.0
    curves = {"visual frame score": np.linspace(0, 1, 20), "audio recon. error": np.ones(20)}
    segments = [[0.9, 1.0, 2.0], {"start": 3.0, "end": 4.0, "score": 0.5}, (0.5, 0.75)]
    path = plot_evidence(times, curves, segments, ground_truth=[(1.25, 2.0)], title="t",
                         path=tmp_path / "sub" / "e.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    with pytest.raises(ValueError, match="audio"):
        plot_evidence(times, {"audio": np.ones(3)}, [], path=tmp_path / "bad.png")


def test_plot_evidence_without_any_segments(tmp_path):
    # a real video predicted real: nothing to shade, the plot must still be written
    path = plot_evidence(np.arange(10) / 5.0, {"joint frame score": np.zeros(10)}, [],
                         ground_truth=None, path=tmp_path / "empty.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


class StandInExtractor:
    def __init__(self, name, dim, pretrained):
        self.name, self.dim = name, dim
        self.settings = {"kind": name, "name": name, "dim": dim, "pretrained": pretrained,
                         "weights_id": f"{name}-weights"}


def settings_of(extractors) -> dict:
    visual, audio = extractors
    return {"visual": dict(visual.settings), "audio": dict(audio.settings)}


def stand_in_checkpoint(model=None, settings=None):
    return checkpoint_module.LoadedCheckpoint(
        model=model or StandInModel(), run_config=None, model_config=None, labels=LABELS,
        visual_dim=6, audio_dim=3, feature_settings=settings or {}, version="test", epoch=1, metrics={})


def test_localize_segments_label_extractors_and_plot(tmp_path, monkeypatch):
    import pipeline.localize

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: extraction is a stand-in here")
    features = make_video(2, [1.0] * 8, [0, 0, 0, 0, 1, 1, 0, 0])  # audio_only, audio run frames 4-5

    def fake_extract(path, visual_extractor, audio_extractor):
        return (*features, {"fps": 4.0, "duration": 2.0, "n_frames": 8, "has_audio": True})

    monkeypatch.setattr(pipeline.localize, "extract_video_features", fake_extract)
    extractors = (StandInExtractor("tsn", 6, pretrained=False), StandInExtractor("w2v", 3, pretrained=True))
    out = localize_videos([video], stand_in_checkpoint(settings=settings_of(extractors)),
                          plot_dir=tmp_path / "plots", proposal_config=CFG, device="cpu",
                          extractors=extractors)
    [record] = out["videos"]
    assert record["file"] == str(video) and record["duration"] == 2.0
    assert record["label"] == "audio_only" and record["routed_branch"] == "audio"
    assert max(record["class_probs"], key=record["class_probs"].get) == "audio_only"
    # audio run [4,6): inner 1, outer frames 3 and 6 are 0 -> contrast 1
    assert record["segments"] == [{"start": 1.0, "end": 1.5, "score": 1.0, "modality": "audio"}]
    assert record["extractors"]["visual"] == {"name": "tsn", "pretrained": False, "id": "tsn-weights"}
    assert "visual=tsn" in record["note"] and "w2v" not in record["note"]  # only the unpretrained one
    png = (tmp_path / "plots" / "000_clip.png").read_bytes()
    assert record["plot"].endswith("000_clip.png") and png[:8] == PNG_MAGIC


@pytest.mark.parametrize("routing, branches", [("argmax", ["audio"]), ("joint", ["joint"]),
                                               ("soft", ["visual", "audio"])])
def test_the_frame_outputs_hold_the_curves_the_segments_were_cut_from(tmp_path, monkeypatch,
                                                                     routing, branches):
    # the plot and the report draw these first: with joint routing on the evidence alone the
    # head scores they used to show had nothing to do with the segments
    import pipeline.localize
    from pipeline.localize import segment_source

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"stand-in")
    features = make_video(2, [1.0] * 8, [0, 0, 0, 0, 1, 1, 0, 0])  # audio_only
    monkeypatch.setattr(pipeline.localize, "extract_video_features", lambda *a: (
        *features, {"fps": 4.0, "duration": 2.0, "n_frames": 8, "has_audio": True}))
    extractors = (StandInExtractor("tsn", 6, pretrained=True), StandInExtractor("w2v", 3, pretrained=True))
    cfg = dataclasses.replace(CFG, routing=routing, error_weight=0.5, evidence="sync")
    frames = {}
    [record] = localize_videos([video], stand_in_checkpoint(settings=settings_of(extractors)),
                               plot_dir=tmp_path / "plots", proposal_config=cfg, device="cpu",
                               extractors=extractors, frame_outputs=frames)["videos"]
    outputs = frames[str(video)]
    assert sorted(k for k in outputs if k.startswith("localizer_curve_")) == \
        sorted(f"localizer_curve_{b}" for b in branches)
    for branch in branches:  # the head score mixed half and half with the desynchrony
        expected = 0.5 * outputs[f"{branch}_scores"] + 0.5 * outputs["sync_evidence"]
        assert outputs[f"localizer_curve_{branch}"] == pytest.approx(expected)
    assert routing in segment_source(record, cfg)
    if routing != "soft":
        assert "modality_probs" not in record
        return
    # soft routing says what weighed each modality's segments: the class head's P(modified),
    # here mixed half and half with the peak of the modality's curve
    mixed = dataclasses.replace(cfg, routing_evidence_weight=0.5)
    [record] = localize_videos([video], stand_in_checkpoint(settings=settings_of(extractors)),
                               proposal_config=mixed, device="cpu", extractors=extractors)["videos"]
    by_class = modality_probabilities([record["class_probs"][name] for name in LABELS])
    for modality in ("visual", "audio"):
        peak = outputs[f"localizer_curve_{modality}"].max()
        assert record["modality_probs"][modality] == pytest.approx(0.5 * by_class[modality] + 0.5 * peak)


def test_a_clip_without_audio_gets_no_audio_segments_and_says_why(tmp_path, monkeypatch):
    import pipeline.localize

    video = tmp_path / "mute.mp4"
    video.write_bytes(b"stand-in")
    features = make_video(2, [1.0] * 8, [0, 0, 0, 0, 1, 1, 0, 0])  # the audio run of the test above

    def fake_extract(path, visual_extractor, audio_extractor):
        return (*features, {"fps": 4.0, "duration": 2.0, "n_frames": 8, "has_audio": False})

    monkeypatch.setattr(pipeline.localize, "extract_video_features", fake_extract)
    extractors = (StandInExtractor("tsn", 6, pretrained=True), StandInExtractor("w2v", 3, pretrained=True))
    [record] = localize_videos([video], stand_in_checkpoint(settings=settings_of(extractors)),
                               proposal_config=CFG, device="cpu", extractors=extractors)["videos"]
    assert record["segments"] == [] and record["has_audio"] is False
    assert record["audio_note"] == ("no audio stream: audio features are of substituted silence, "
                                    "1 audio segment(s) left out; its label 'audio_only' rests "
                                    "on silence")


def test_extractors_that_make_other_features_than_the_checkpoints_are_refused(tmp_path):
    extractors = (StandInExtractor("tsn", 6, pretrained=True), StandInExtractor("w2v", 3, pretrained=True))
    trained_on = settings_of(extractors)
    trained_on["audio"] = {**trained_on["audio"], "weights_id": "other-weights"}
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"ckpt\.pt.*audio\.weights_id"):
        localize_videos([video], stand_in_checkpoint(settings=trained_on), checkpoint_label="ckpt.pt",
                        device="cpu", extractors=extractors)


def test_missing_weights_name_the_checkpoint_and_the_fix(tmp_path, monkeypatch):
    import extractors.build
    from extractors.weights import WeightsUnavailableError

    def unavailable(settings, device="cpu", precision="auto", visual_weights=None):
        raise WeightsUnavailableError("visual weights file /gone/tsn.pth does not exist")

    monkeypatch.setattr(extractors.build, "build_extractors_from_settings", unavailable)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"ckpt\.pt.*/gone/tsn\.pth.*--visual-weights"):
        localize_videos([video], stand_in_checkpoint(), checkpoint_label="ckpt.pt", device="cpu")


def test_cli_localize_real_chain(tmp_path):
    """Generated clip, weight-free extractors, a tiny random-initialised model saved as a real
    checkpoint: the CLI writes segments and a plot, and says the backbones are not pretrained."""
    from extractors.build import build_audio_extractor, build_visual_extractor, extractor_settings
    from media import make_clip
    from model.rtdeeploc import build_model
    from pipeline.checkpoint import save_checkpoint
    from pipeline.cli import main
    from train_fixtures import tiny_run_config

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, fps=10, audio="noise")
    visual, audio = build_visual_extractor("lowlevel"), build_audio_extractor("logmel")
    run_config = tiny_run_config()
    model = build_model(run_config.model, visual.dim, audio.dim)
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", model, run_config, epoch=1, metrics={},
                           feature_settings=extractor_settings(visual, audio),
                           visual_dim=visual.dim, audio_dim=audio.dim)
    out = tmp_path / "segments.json"
    result = CliRunner().invoke(main, ["localize", str(clip), "--checkpoint", str(ckpt), "--out", str(out),
                                       "--plot", str(tmp_path / "plots"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    output = json.loads(out.read_text())
    [record] = output["videos"]
    assert record["n_frames"] == 10 and record["duration"] == pytest.approx(1.0, abs=0.05)
    assert record["label"] in LABELS
    assert sum(record["class_probs"].values()) == pytest.approx(1.0, abs=1e-5)
    scores = [s["score"] for s in record["segments"]]
    assert scores == sorted(scores, reverse=True)
    for segment in record["segments"]:
        assert 0.0 <= segment["start"] < segment["end"] <= record["duration"]
        assert segment["modality"] == record["routed_branch"]
    assert record["extractors"]["visual"]["pretrained"] is False and "note" in output
    assert "weight-free" in record["extractors"]["summary"]
    png = open(record["plot"], "rb").read()
    assert png[:8] == PNG_MAGIC and len(png) > 1000


def test_cli_localize_a_folder_and_a_glob_into_one_json_and_a_report(tmp_path):
    from extractors.build import build_audio_extractor, build_visual_extractor, extractor_settings
    from media import make_clip
    from model.rtdeeploc import build_model
    from pipeline.checkpoint import save_checkpoint
    from pipeline.cli import main
    from train_fixtures import tiny_run_config

    folder = tmp_path / "clips"
    folder.mkdir()
    clips = [make_clip(folder / f"{name}.mp4", seconds=0.6, fps=10, audio="noise") for name in ("a", "b")]
    (folder / "notes.txt").write_text("not a video")
    visual, audio = build_visual_extractor("lowlevel"), build_audio_extractor("logmel")
    run_config = tiny_run_config()
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", build_model(run_config.model, visual.dim, audio.dim),
                           run_config, epoch=1, metrics={}, feature_settings=extractor_settings(visual, audio),
                           visual_dim=visual.dim, audio_dim=audio.dim,
                           proposal_config={"nms": "hard"}, proposal_tuning={"split": "dev", "protocol": "lavdf"})
    out = tmp_path / "segments.json"
    for inputs in ([str(folder)], [f"{folder}/*.mp4", str(clips[0])]):
        result = CliRunner().invoke(main, ["localize", *inputs, "--checkpoint", str(ckpt), "--out", str(out),
                                           "--report", str(tmp_path / "report"), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        output = json.loads(out.read_text())
        assert [v["file"] for v in output["videos"]] == [str(c) for c in clips]  # each once, sorted
        assert output["proposal_config"]["nms"] == "hard"  # the checkpoint's tuned settings
        assert output["proposal_source"].startswith(f"checkpoint {ckpt} (tuned on split 'dev', lavdf")
        page = (tmp_path / "report" / "report.html").read_text()
        assert output["report"] == str(tmp_path / "report" / "report.html") and page.count("<video") == 2
        assert f"report: {tmp_path / 'report' / 'report.html'}" in result.output
    bad = CliRunner().invoke(main, ["localize", f"{folder}/*.avi", "--checkpoint", str(ckpt), "--out", str(out)])
    assert bad.exit_code == 2 and "*.avi: no file matches this pattern" in bad.output
