"""Frame-level diagnostics on hand-made curves with hand-computed AUCs."""
import json

import numpy as np
import pytest

from data.records import VideoRecord
from pipeline.diagnostics import (clip_median_deviation, format_auc_table, frame_auc_table, frame_mask,
                                  load_forgery_types, modality_segments, routing_report)
from pipeline.metrics import rank_auc


def record(file, label, visual=None, audio=None, segments=(), fps=10.0, n=20):
    return VideoRecord(file=file, split="test", duration=n / fps, fps=fps, n_frames=n, label=label,
                       fake_segments=tuple(segments), visual_fake_segments=visual,
                       audio_fake_segments=audio)


def test_frame_mask_uses_frame_centres():
    # frames of 0.1 s: centres 0.05, 0.15, ...; [0.1, 0.3) holds the centres of frames 1 and 2
    assert frame_mask([(0.1, 0.3)], 5, 10.0).tolist() == [False, True, True, False, False]
    assert frame_mask([(0.12, 0.14)], 5, 10.0).tolist() == [False] * 5  # no centre inside


def test_rank_auc_by_hand():
    assert rank_auc(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert rank_auc(np.array([1, 1, 0, 0], bool), np.array([0.1, 0.2, 0.3, 0.4])) == 0.0
    # one positive at 0.5, negatives 0.5 (tie: half) and 0.1 (below): (0.5 + 1) / 2
    assert rank_auc(np.array([1, 0, 0], bool), np.array([0.5, 0.5, 0.1])) == 0.75
    assert rank_auc(np.array([0, 0], bool), np.array([0.1, 0.2])) is None


def test_lavdf_style_records_use_fake_periods_for_modified_modalities():
    r = record("a.mp4", 1, segments=[(0.0, 0.5)])  # visual_only, no per-modality periods
    assert modality_segments(r, "visual") == ((0.0, 0.5),)
    assert modality_segments(r, "audio") == ()


def test_auc_table_per_modality_and_type():
    # visual forged over frames 5..9 (type "blur") and 15..19 (type "swap"); audio untouched
    r = record("v.mp4", 1, visual=((0.5, 1.0), (1.5, 2.0)), audio=())
    good = np.zeros(20)
    good[5:10] = 1.0
    good[15:20] = 2.0
    inverted = -good
    signals = {"v.mp4": {"good": good, "inverted": inverted}}
    types = {"v.mp4": {"visual": ["blur", "swap"], "audio": []}}
    table = frame_auc_table(signals, [r, record("real.mp4", 0)], types)
    assert table["good"]["visual"]["all"] == {"auc": 1.0, "n": 1}
    assert table["good"]["visual"]["blur"]["auc"] == 1.0
    assert table["inverted"]["visual"]["swap"]["auc"] == 0.0
    assert "audio" not in table["good"]
    text = format_auc_table(table)
    assert "| good | 1.000 (1) | 1.000 (1) | 1.000 (1) |" in text


def test_clip_median_deviation_marks_the_odd_frames():
    x = np.zeros((10, 3))
    x[4] = [3.0, 4.0, 0.0]
    dev = clip_median_deviation(x, mean=np.zeros(3), std=np.ones(3))
    assert dev[4] == pytest.approx(5.0)
    assert dev[0] == 0.0


def test_routing_report_confusion():
    records = [record("a", 0), record("b", 1), record("c", 2)]
    probs = {"a": [0.9, 0.1, 0, 0], "b": [0.1, 0.2, 0.7, 0], "c": [0, 0, 1, 0]}
    report = routing_report(probs, records)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["confusion"][1][2] == 1


def test_forgery_types_from_synth_metadata(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps([{"file": "a.mp4", "visual_forgery_types": ["face_blur"],
                                 "audio_forgery_types": []}, {"file": "b.mp4"}]))
    assert load_forgery_types(path) == {"a.mp4": {"visual": ["face_blur"], "audio": []}}
