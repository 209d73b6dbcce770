"""Tests for pipeline/metrics.py and pipeline/evaluate.py: hand-computed AP / AR / AUC, the official conventions
(strict IoU, greedy list-order matching, no recall-0 point), robustness, a literal slow
re-implementation of the official algorithm compared on random data, and the CLI."""
import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

import pipeline.metrics as metrics_module
from data.records import VideoRecord
from pipeline.cli import main
from pipeline.evaluate import format_table, parse_list
from pipeline.metrics import PROTOCOLS, evaluate_predictions, roc_auc, temporal_iou


def rec(file, segments=(), duration=10.0):
    return VideoRecord(file=file, split="test", duration=duration, fps=25.0,
                       n_frames=int(duration * 25), label=1 if segments else 0,
                       fake_segments=tuple(tuple(map(float, s)) for s in segments))


def metrics(predictions, records, ap_iou=(0.5,), ar_n=(20,), ar_iou=(0.5,), probs=None):
    return evaluate_predictions(predictions, records, ap_iou=ap_iou, ar_n=ar_n, ar_iou=ar_iou,
                                video_probs=probs)


def test_temporal_iou_in_seconds_without_plus_one():
    iou = temporal_iou(np.array([0.0, 0.0, 0.0, 3.0, 1.0]), np.array([2.0, 1.0, 4.0, 4.0, 1.0]),
                       np.array([1.0, 0.0, 1.0, 0.0, 1.0]), np.array([3.0, 2.0, 2.0, 2.0, 1.0]))
    # [0,2]x[1,3]: 1/3; [0,1]x[0,2]: 1/2; [0,4]x[1,2]: 1/4; disjoint: 0; two equal points: 0
    np.testing.assert_allclose(iou, [1 / 3, 0.5, 0.25, 0.0, 0.0])


def test_iou_exactly_at_the_threshold_does_not_match():
    records = [rec("a.mp4", [[0, 2]])]
    predictions = {"a.mp4": [[0.9, 0.0, 1.0]]}  # IoU exactly 0.5
    at = metrics(predictions, records, ap_iou=(0.5,), ar_iou=(0.5,))
    assert at["ar"]["20"] == 0.0 and at["ap"]["0.5"] == 0.0
    below = metrics(predictions, records, ap_iou=(0.4,), ar_iou=(0.4,))
    assert below["ar"]["20"] == 1.0


def test_ap_by_hand():
    # a: two segments; its 2nd proposal overlaps the 1st segment but that one is taken -> FP
    # r: a real video, its proposal is a FP; c: one segment found by a low-scored proposal
    records = [rec("a.mp4", [[0, 2], [4, 6]]), rec("r.mp4"), rec("c.mp4", [[1, 3]])]
    predictions = {"a.mp4": [[0.9, 0, 2], [0.8, 0.1, 2], [0.3, 4, 6]],
                   "r.mp4": [[0.85, 1, 2]],
                   "c.mp4": [[0.5, 1, 3]]}
    # pooled by score: 0.9 TP, 0.85 FP, 0.8 FP, 0.5 TP, 0.3 TP; n_labels = 3
    # points (recall, precision): (1/3,1) (1/3,1/2) (1/3,1/3) (2/3,1/2) (1,3/5)
    # official curve, lowest score first after (1,0): (1,0) (1,.6) (2/3,.5) (1/3,1/3)
    # (1/3,.5) (1/3,1); running max of precision: 0 .6 .6 .6 .6 1
    # AP = 0*0 + (1/3)*.6 + (1/3)*.6 + 0 + 0 = 0.4 (the step from recall 0 is not counted)
    result = metrics(predictions, records)
    assert result["ap"]["0.5"] == pytest.approx(0.4)
    # all three segments are found within the first 20 proposals
    assert result["ar"]["20"] == pytest.approx(1.0)


def test_single_perfect_detection_scores_zero_ap_like_the_official_curve():
    # the official curve has no recall-0 point: (1,0) (1,1) -> area 0
    result = metrics({"a.mp4": [[0.9, 0, 2]]}, [rec("a.mp4", [[0, 2]])])
    assert result["ap"]["0.5"] == 0.0
    assert result["ar"]["20"] == 1.0


def test_matching_follows_list_order_not_best_iou(caplog):
    # the list is not sorted by score: the segment takes the first proposal in list order
    # (IoU .75, score .5); the better proposal (IoU 1, score .9) becomes a false positive.
    # pooled: FP (rank 1), TP (rank 2) -> AP = precision at rank 2 = 1/2.
    # (matching by best IoU would make the top proposal the TP and score 0.)
    records = [rec("a.mp4", [[0, 2]])]
    with caplog.at_level(logging.WARNING):
        result = metrics({"a.mp4": [[0.5, 0, 1.5], [0.9, 0, 2]]}, records)
    assert result["ap"]["0.5"] == pytest.approx(0.5)
    assert "not sorted by score" in caplog.text


def test_ar_with_fewer_proposals_than_n_and_over_first_n():
    records = [rec("a.mp4", [[0, 2], [4, 6]]), rec("b.mp4", [[1, 2]])]
    predictions = {"a.mp4": [[0.9, 4, 6], [0.5, 0, 2]],  # 2 proposals < N = 20
                   "b.mp4": [[0.9, 5, 6], [0.8, 1, 2]]}
    result = metrics(predictions, records, ar_n=(20, 1))
    assert result["ar"]["20"] == pytest.approx(3 / 3)
    # first proposal only: a's [4,6] found; a's [0,2] and b's [1,2] missed -> 1/3
    assert result["ar"]["1"] == pytest.approx(1 / 3)
    assert result["ar_avg"] == pytest.approx((1 + 1 / 3) / 2)


def test_ar_averages_over_iou_thresholds():
    # IoU of [0,1.5] with [0,2] is 0.75: recalled at 0.5 and 0.7, not at 0.8 or 0.9
    result = metrics({"a.mp4": [[0.9, 0, 1.5]]}, [rec("a.mp4", [[0, 2]])],
                     ar_iou=(0.5, 0.7, 0.8, 0.9))
    assert result["ar"]["20"] == pytest.approx(2 / 4)


def test_real_videos_proposals_are_false_positives():
    records = [rec("a.mp4", [[0, 2]]), rec("b.mp4", [[0, 2]])]
    predictions = {"a.mp4": [[0.9, 0, 2]], "b.mp4": [[0.8, 0, 2]]}
    # TPs at ranks 1, 2: AP = (1/2) * (2/2) = 0.5 (rank 1 not counted)
    assert metrics(predictions, records)["ap"]["0.5"] == pytest.approx(0.5)
    # a real video's proposal scored between them: TPs at ranks 1, 3 -> (1/2) * (2/3)
    with_real = dict(predictions, **{"r.mp4": [[0.85, 0, 2]]})
    result = metrics(with_real, records + [rec("r.mp4")])
    assert result["ap"]["0.5"] == pytest.approx(1 / 3)
    assert result["ar"]["20"] == 1.0  # AR does not change


def test_empty_and_missing_lists_count_as_not_found(caplog):
    records = [rec("a.mp4", [[0, 2]]), rec("b.mp4", [[0, 2], [3, 4]]), rec("c.mp4", [[1, 2]]),
               rec("r.mp4")]
    predictions = {"a.mp4": [[0.9, 0, 2]], "b.mp4": [], "r.mp4": [],
                   "elsewhere.mp4": [[0.5, 0, 1]]}  # c.mp4 missing, one unknown file
    with caplog.at_level(logging.WARNING):
        result = metrics(predictions, records)
    # 1 of 4 segments found; the missing and empty videos keep theirs in the denominator
    assert result["ar"]["20"] == pytest.approx(1 / 4)
    assert result["ap"]["0.5"] == 0.0  # its only TP is the top-ranked one
    assert result["counts"]["missing_videos"] == 1 and result["counts"]["unknown_files"] == 1
    assert "c.mp4" in caplog.text and "count as not found" in caplog.text
    assert "elsewhere.mp4" in caplog.text and "ignored" in caplog.text
    assert "1 fake video(s) have an empty proposal list; their 2 segment(s)" in caplog.text


def test_no_segments_at_all_is_an_error():
    with pytest.raises(ValueError, match="no fake segments"):
        metrics({"r.mp4": [[0.5, 0, 1]]}, [rec("r.mp4")])


@pytest.mark.parametrize("predictions,words", [
    ([["a.mp4", 0.5, 0, 1]], "expected a JSON object"),
    ({"a.mp4": "0.5,0,1"}, "key 'a.mp4': expected a list"),
    ({"a.mp4": [[0.5, 0.0]]}, "key 'a.mp4': proposal 0: expected \\[score, start, end\\]"),
    ({"a.mp4": [[0.5, 0, 1], [0.4, "1", 2]]}, "key 'a.mp4': proposal 1: expected"),
    ({"a.mp4": [[0.5, 0, 1], [0.4, 0, 1, 2]]}, "key 'a.mp4': proposal 1: expected"),
    ({"a.mp4": [[0.5, 0, 1], [0.4, 2, 1]]}, "key 'a.mp4': proposal 1: end 1.0 is before "
                                            "start 2.0"),
    ({"a.mp4": [[float("nan"), 0, 1]]}, "key 'a.mp4': proposal 0: non-finite"),
])
def test_invalid_predictions_name_source_and_key(predictions, words):
    with pytest.raises(ValueError, match=words) as err:
        evaluate_predictions(predictions, [rec("a.mp4", [[0, 2]])], source="preds.json")
    assert "preds.json" in str(err.value)


def test_auc_by_hand_with_ties():
    # positives 0.9, 0.4; negatives 0.4, 0.1, 0.4: of the 6 (pos, neg) pairs, 0.9 beats all
    # three (3), 0.4 beats 0.1 (1) and ties two 0.4s (2 * 1/2): AUC = 5 / 6
    labels = np.array([True, True, False, False, False])
    assert roc_auc(labels, np.array([0.9, 0.4, 0.4, 0.1, 0.4])) == pytest.approx(5 / 6)
    assert roc_auc(labels, np.array([0.5] * 5)) == pytest.approx(0.5)
    assert roc_auc(np.array([True, True]), np.array([0.1, 0.2])) is None


def test_auc_equals_pairwise_count_on_random_scores():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.4
    scores = np.round(rng.random(200), 1)  # many ties
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None, :]).sum()
                + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert roc_auc(labels, scores) == pytest.approx(pairwise)


def test_auc_from_video_probs():
    records = [rec("a.mp4", [[0, 2]]), rec("b.mp4", [[0, 2]]), rec("r.mp4"), rec("s.mp4")]
    predictions = {"a.mp4": [[0.9, 0, 2]], "b.mp4": [], "r.mp4": [], "s.mp4": []}
    # fake score = 1 - p_real: a .8, b .3, r .5, s .1 -> pairs won: a 2, b 1 -> 3/4
    probs = {"a.mp4": [0.2, 0.8, 0, 0], "b.mp4": [0.7, 0, 0.3, 0], "r.mp4": [0.5, 0.5, 0, 0],
             "s.mp4": 0.1}  # a bare number is the fake score itself
    assert metrics(predictions, records, probs=probs)["auc"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="probs: key 'b.mp4': expected"):
        metrics(predictions, records, probs=dict(probs, **{"b.mp4": [0.7, 0.3]}))
    with pytest.raises(ValueError, match="1 evaluated video\\(s\\) have no probabilities"):
        metrics(predictions, records, probs={k: v for k, v in probs.items() if k != "s.mp4"})


@pytest.mark.parametrize("bad", [[5.0, -1, -1, -1], [0.5, 0.5, -0.1, 0.1], [float("nan"), 0, 0, 1],
                                 1.5, -0.2])
def test_probabilities_outside_the_unit_interval_are_rejected(bad):
    """AUC only ranks scores, so logits or a wrong file would otherwise give a plausible AUC."""
    records, predictions = [rec("a.mp4", [[0, 2]]), rec("r.mp4")], {"a.mp4": [], "r.mp4": []}
    probs = {"a.mp4": [0.2, 0.8, 0, 0], "r.mp4": bad}
    with pytest.raises(ValueError, match=r"probs: key 'r.mp4': probabilities must be finite "
                                         r"and within \[0, 1\]"):
        metrics(predictions, records, probs=probs)


# ------------------------------------------------ literal reference of the official code

def reference_metrics(predictions, records, ap_iou, ar_n, ar_iou):
    """Slow per-video loops written from the official description, in float32 as the
    official evaluators hold their values; missing/empty lists count as not found."""
    f32 = np.float32

    def iou(ps, pe, gs, ge):
        ps, pe, gs, ge = f32(ps), f32(pe), f32(gs), f32(ge)
        inter = max(min(pe, ge) - max(ps, gs), f32(0))
        span = max(pe, ge) - min(ps, gs)
        return inter / span if span > 0 else f32(0)

    n_labels = sum(len(r.fake_segments) for r in records)
    ap = {}
    for threshold in ap_iou:
        values = []  # (score, is_tp) in metadata order, then list order
        for r in records:
            proposals = predictions.get(r.file) or []
            is_tp = [0] * len(proposals)
            for gs, ge in r.fake_segments:
                for k, (_, ps, pe) in enumerate(proposals):
                    if not is_tp[k] and iou(ps, pe, gs, ge) > f32(threshold):
                        is_tp[k] = 1
                        break
            values += [(f32(p[0]), t) for p, t in zip(proposals, is_tp)]
        values.sort(key=lambda v: -v[0])  # python's sort is stable, like the official one
        curve, tp = [], 0
        for i, (_, t) in enumerate(values, start=1):
            tp += t
            curve.append((tp / n_labels, tp / i))
        curve = [(1.0, 0.0)] + curve[::-1]
        total, running_max = 0.0, 0.0
        for k in range(len(curve) - 1):
            running_max = max(running_max, curve[k][1])
            total += abs(curve[k + 1][0] - curve[k][0]) * running_max
        ap[threshold] = total
    ar = {}
    for n in ar_n:
        recalls = []
        for threshold in ar_iou:
            found = 0
            for r in records:
                proposals = (predictions.get(r.file) or [])[:n]
                for gs, ge in r.fake_segments:
                    if any(iou(ps, pe, gs, ge) > f32(threshold) for _, ps, pe in proposals):
                        found += 1
            recalls.append(found / n_labels)
        ar[n] = sum(recalls) / len(recalls)
    return ap, ar


def random_set(rng, n_videos):
    """Times on the 25 fps grid and scores in tenths: exact IoU ties and score ties."""
    records, predictions = [], {}
    for v in range(n_videos):
        frames = int(rng.integers(25, 150))
        segments = []
        for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
            a, b = np.sort(rng.integers(0, frames, 2))
            segments.append([a / 25, b / 25])
        file = f"test/{v:04d}.mp4"
        records.append(rec(file, segments, duration=frames / 25))
        proposals = []
        for _ in range(int(rng.integers(0, 12))):
            if segments and rng.random() < 0.6:
                a, b = segments[int(rng.integers(len(segments)))]
                a, b = sorted((a + int(rng.integers(-8, 9)) / 25, b + int(rng.integers(-8, 9)) / 25))
            else:
                a, b = np.sort(rng.integers(0, frames, 2)) / 25
            proposals.append([float(np.round(rng.random(), 1)), float(a), float(b)])
        proposals.sort(key=lambda p: -p[0])
        if rng.random() > 0.05:  # a few videos missing entirely
            predictions[file] = proposals
    return records, predictions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_literal_reference(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    records, predictions = random_set(rng, 60)
    # tiny chunks so the chunked pair construction is exercised too
    monkeypatch.setattr(metrics_module, "_PAIRS_PER_CHUNK", [7, 50, 10**6][seed])
    protocol = PROTOCOLS["rtdeeploc"]
    ar_n = protocol.ar_n + (1,)
    ap_ref, ar_ref = reference_metrics(predictions, records, protocol.ap_iou, ar_n,
                                       protocol.ar_iou)
    result = evaluate_predictions(predictions, records, ap_iou=protocol.ap_iou, ar_n=ar_n,
                                  ar_iou=protocol.ar_iou)
    for t in protocol.ap_iou:
        assert result["ap"][f"{t:g}"] == pytest.approx(ap_ref[t], abs=1e-12)
    for n in ar_n:
        assert result["ar"][str(n)] == pytest.approx(ar_ref[n], abs=1e-12)
    assert 0 < result["ap_avg"] < 1 and 0 < result["ar_avg"] < 1  # a non-trivial case


# ------------------------------------------------ table, lists, CLI

def test_format_table_percent_two_decimals():
    table = format_table({"ap": {"0.5": 0.12345, "0.75": 0.5}, "ar": {"20": 1.0},
                          "ap_avg": 0.311725, "ar_avg": 1.0, "auc": None})
    lines = table.splitlines()
    assert "AP@IoU" in lines[0] and "AR@N" in lines[0]
    assert lines[1].split() == ["0.5", "0.75", "Avg.", "|", "20", "Avg.", "|", "AUC"]
    assert lines[3].split() == ["12.35", "50.00", "31.17", "|", "100.00", "100.00", "|", "-"]


def test_parse_list():
    assert parse_list("0.5, 0.75,0.95", float, "--ap-iou") == (0.5, 0.75, 0.95)
    assert parse_list(None, int, "--ar-n") is None
    with pytest.raises(ValueError, match="--ar-n: expected comma-separated int"):
        parse_list("20,ten", int, "--ar-n")


def test_cli_round_trip(tmp_path):
    metadata = [
        {"file": "test/1.mp4", "n_fakes": 1, "fake_periods": [[0.0, 2.0]], "duration": 4.0,
         "modify_video": True, "modify_audio": False, "split": "test", "video_frames": 100},
        {"file": "test/2.mp4", "n_fakes": 1, "fake_periods": [[1.0, 2.0]], "duration": 4.0,
         "modify_video": False, "modify_audio": True, "split": "test", "video_frames": 100},
        {"file": "test/3.mp4", "n_fakes": 0, "fake_periods": [], "duration": 4.0,
         "modify_video": False, "modify_audio": False, "split": "test", "video_frames": 100},
        {"file": "train/4.mp4", "n_fakes": 0, "fake_periods": [], "duration": 4.0,
         "modify_video": False, "modify_audio": False, "split": "train", "video_frames": 100},
    ]
    predictions = {"test/1.mp4": [[0.9, 0.0, 2.0]], "test/2.mp4": [[0.8, 1.0, 2.0]],
                   "test/3.mp4": [[0.85, 0.0, 1.0]]}
    probs = {"test/1.mp4": [0.1, 0.9, 0, 0], "test/2.mp4": [0.6, 0, 0.4, 0],
             "test/3.mp4": [0.5, 0.5, 0, 0]}
    paths = {name: tmp_path / f"{name}.json" for name in ("meta", "preds", "probs")}
    for name, content in zip(paths, (metadata, predictions, probs)):
        paths[name].write_text(json.dumps(content))
    out = tmp_path / "out" / "metrics.json"
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--predictions", str(paths["preds"]),
                                  "--metadata", str(paths["meta"]), "--split", "test",
                                  "--protocol", "lavdf", "--ar-n", "10,1",
                                  "--probs", str(paths["probs"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert list(written["ap"]) == ["0.5", "0.75", "0.95"] and list(written["ar"]) == ["10", "1"]
    # TPs at pooled ranks 1 and 3 (the real video's FP in between): AP = (1/2) * (2/3)
    assert written["ap"]["0.5"] == pytest.approx(1 / 3)
    assert written["ar"]["1"] == pytest.approx(1.0)
    # fake scores: 1: .9, 2: .4 vs real 3: .5 -> 1 of 2 pairs won
    assert written["auc"] == pytest.approx(0.5)
    assert "33.33" in result.output and "AUC" in result.output
    # the protocol and thresholds come first, the overridden list marked
    lines = result.output.splitlines()
    assert lines[0] == "protocol: lavdf (LAV-DF paper); split 'test', 3 videos"
    assert lines[1] == ("AP at IoU 0.5,0.75,0.95; AR@N for N = 10,1 (overridden), averaged over "
                        "IoU 0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95")
    assert written["thresholds"]["overridden"] == ["ar_n"] and written["split"] == "test"
    base = ["evaluate", "--predictions", str(paths["preds"]), "--metadata", str(paths["meta"]),
            "--split", "test", "--probs", str(paths["probs"])]
    as_json = runner.invoke(main, base + ["--format", "json", "--out", str(out)])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == json.loads(out.read_text())
    markdown = runner.invoke(main, base + ["--format", "markdown"]).output.splitlines()
    assert markdown[3].startswith("| AP@0.1 | AP@0.2 |") and markdown[3].endswith("| AR avg. | AUC |")
    assert markdown[4] == "|" + "---:|" * 14 and markdown[5].endswith(" | 50.00 |")  # AUC 0.5

    bad_split = runner.invoke(main, ["evaluate", "--predictions", str(paths["preds"]),
                                     "--metadata", str(paths["meta"]), "--split", "val"])
    assert bad_split.exit_code != 0
    assert "available splits: test (3), train (1)" in bad_split.output
    bad_list = runner.invoke(main, ["evaluate", "--predictions", str(paths["preds"]),
                                    "--metadata", str(paths["meta"]), "--ap-iou", "0.5,x"])
    assert bad_list.exit_code == 2 and "--ap-iou" in bad_list.output
    paths["probs"].write_text(json.dumps(dict(probs, **{"test/3.mp4": [5.0, -1, -1, -1]})))
    bad_probs = runner.invoke(main, ["evaluate", "--predictions", str(paths["preds"]),
                                     "--metadata", str(paths["meta"]), "--split", "test",
                                     "--probs", str(paths["probs"])])
    assert bad_probs.exit_code == 1
    assert f"{paths['probs']}: key 'test/3.mp4': probabilities must be finite and within [0, 1]" \
        in bad_probs.output


def test_pooled_sort_keys_give_the_stable_descending_order():
    scores = np.array([0.5, -1.0, 0.5, 0.0, -0.0, 2.0, -1.0, 0.5, 1e-30, -1e-30],
                      dtype=np.float32)
    keys = metrics_module._pooled_sort_keys(scores)
    # stable: equal scores (0.5 x3, -1 x2, and 0.0 == -0.0) keep their index order
    assert np.argsort(keys).tolist() == [5, 0, 2, 7, 8, 3, 4, 9, 1, 6]
    np.testing.assert_array_equal(np.argsort(keys), np.argsort(-scores, kind="stable"))


def test_invalid_thresholds():
    records, predictions = [rec("a.mp4", [[0, 2]])], {"a.mp4": [[0.9, 0, 2]]}
    with pytest.raises(ValueError, match="N >= 1"):
        metrics(predictions, records, ar_n=(0,))
    with pytest.raises(ValueError, match="IoU thresholds must lie in"):
        metrics(predictions, records, ap_iou=(1.5,))
