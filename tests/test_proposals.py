"""Proposal generation on hand-made score curves; every expectation computed by hand."""
import dataclasses
import math

import numpy as np
import pytest

from pipeline.proposals import (
    ProposalConfig,
    VideoScores,
    find_runs,
    grid_search,
    hard_nms,
    interval_iou,
    merge_runs,
    route,
    run_contrasts,
    run_level,
    run_valley,
    runs_per_level,
    scores_to_proposals,
    snap_targets,
    soft_nms,
    video_proposals,
)

# frame:     0    1    2    3    4    5    6    7    8    9    10   11
CURVE = np.array([0.0, 0.0, 0.9, 0.9, 0.2, 0.9, 0.9, 0.0, 0.0, 0.8, 0.0, 0.0])
FPS = 4.0
# one absolute level, no relative levels, no video-level term, no suppression
PLAIN = ProposalConfig(thresholds=(0.5,), relative_thresholds=(), merge_gap_frames=2, min_frames=2,
                       outer_ratio=0.5, video_weight=0.0, nms="none")
VISUAL_ONLY = [0.1, 0.7, 0.1, 0.1]
AUDIO_ONLY = [0.1, 0.1, 0.7, 0.1]
FLAT = np.zeros(12)


def proposals(curve=CURVE, cfg=PLAIN, probs=VISUAL_ONLY, duration=3.0):
    # visual_only routes to the visual curve; the others are flat so they would give nothing
    return video_proposals(probs, curve, FLAT, FLAT, FPS, duration, cfg)


def assert_proposals(got, expected):
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g == pytest.approx(e)


def test_find_and_merge_runs():
    above = CURVE >= 0.5
    assert find_runs(above) == [(2, 4), (5, 7), (9, 10)]
    assert merge_runs([(2, 4), (5, 7), (9, 10)], 2) == [(2, 7), (9, 10)]  # gap 1 < 2; gap 2 is not
    assert merge_runs([(2, 4), (5, 7), (9, 10)], 1) == [(2, 4), (5, 7), (9, 10)]


def test_short_gap_merged_and_short_run_dropped():
    # [2,4) and [5,7) merge over the 1-frame gap into [2,7); [9,10) is 1 frame < min_frames=2.
    # inner = (0.9*4 + 0.2)/5 = 0.76; outer width = round(0.5*5) = 3 each side:
    # frames 0,1 (clipped at the start) and 7,8,9 -> (0+0+0+0+0.8)/5 = 0.16; contrast 0.6
    assert_proposals(proposals(), [[0.6, 2 / FPS, 7 / FPS]])


def test_no_merge_when_gap_not_shorter():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "merge_gap_frames": 1})
    # [2,4): inner 0.9, outer width 1: frames 1 and 4 -> 0.1; [5,7): frames 4 and 7 -> 0.1
    assert_proposals(proposals(cfg=cfg), [[0.8, 0.5, 1.0], [0.8, 1.25, 1.75]])


def test_min_frames_one_keeps_single_frame_run():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "min_frames": 1})
    # [9,10): inner 0.8, outer frames 8 and 10 -> 0; contrast 0.8 > 0.6 so it ranks first
    assert_proposals(proposals(cfg=cfg), [[0.8, 2.25, 2.5], [0.6, 0.5, 1.75]])


def test_times_clipped_to_duration():
    # the run [2,7) ends at 7/4 = 1.75 s but the video is 1.6 s long
    assert_proposals(proposals(duration=1.6), [[0.6, 0.5, 1.6]])
    # a run wholly past the duration disappears
    assert proposals(duration=0.4) == []


def test_same_run_from_two_levels_appears_once():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "thresholds": (0.5, 0.85)})
    assert_proposals(proposals(cfg=cfg), [[0.6, 0.5, 1.75]])


def test_relative_levels_find_runs_below_every_absolute_level():
    low = CURVE / 3  # max 0.3 < 0.5: the absolute level finds nothing
    assert proposals(curve=low) == []
    cfg = ProposalConfig(**{**PLAIN.__dict__, "relative_thresholds": (0.5,)})
    # level = 0 + 0.5 * 0.3 = 0.15: frames 2..6 (0.2/3 = 0.067 is below, merged as a gap)
    # contrast = (0.76 - 0.16) / 3 = 0.2
    assert_proposals(proposals(curve=low, cfg=cfg), [[0.2, 0.5, 1.75]])


def test_run_covering_the_whole_video_has_no_contrast():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "video_weight": 0.5})
    # one run [0,12): no frame outside it, contrast 0; score = 0.5 * p_fake = 0.5 * 0.9
    assert_proposals(proposals(curve=np.full(12, 0.9), cfg=cfg), [[0.45, 0.0, 3.0]])


def test_video_weight_adds_fake_probability():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "video_weight": 0.5})
    # p_fake = 1 - 0.1 = 0.9 -> 0.6 + 0.45
    assert_proposals(proposals(cfg=cfg), [[1.05, 0.5, 1.75]])


def test_level_weight_adds_the_runs_mean_score():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "level_weight": 0.5, "level_quantile": None})
    # the run [2, 7) of CURVE has contrast 0.6 and mean 0.76 -> 0.6 + 0.5 * 0.76
    assert_proposals(proposals(cfg=cfg), [[0.98, 0.5, 1.75]])
    with pytest.raises(ValueError, match="level_weight"):
        ProposalConfig(level_weight=-1.0)
    with pytest.raises(ValueError, match="level_quantile"):
        ProposalConfig(level_quantile=1.5)


def test_low_level_quantile_ranks_two_spans_above_the_run_that_merges_them():
    # two forged spans, frames [2, 6) and [8, 12) at 0.9, with a shallow dip (0.6) between
    # them: the 0.5 threshold yields one run [2, 12) holding both, 0.7 each span alone
    curve = np.array([0, 0, .9, .9, .9, .9, .6, .6, .9, .9, .9, .9, 0, 0, 0, 0])
    base = {**PLAIN.__dict__, "thresholds": (0.5, 0.7), "level_weight": 1.0}

    def ranked(quantile):
        cfg = ProposalConfig(**{**base, "level_quantile": quantile})
        found = proposals(curve=curve, cfg=cfg, duration=4.0)
        return [(round(p[1] * FPS), round(p[2] * FPS), round(p[0], 6)) for p in found]

    # each span: contrast 0.9 - 0.3 (its context holds the dip) = 0.6, level 0.9 -> 1.5
    # merged run: contrast 0.84 (its context is all 0), mean 0.84 -> 1.68 ranks first,
    # 10th percentile 0.6 -> 1.44 ranks last
    assert ranked(None) == [(2, 12, 1.68), (2, 6, 1.5), (8, 12, 1.5)]
    assert ranked(0.1) == [(2, 6, 1.5), (8, 12, 1.5), (2, 12, 1.44)]


def test_valley_weight_ranks_two_spans_above_the_run_that_merges_them():
    # the curve of the test above: with the runs' means as their levels the merged run ranks
    # first (1.68); its dip, 0.9 - 0.6 = 0.3 below the lower of its two peaks, takes it to
    # 1.38, below the spans (1.5, no dip: one hump each)
    curve = np.array([0, 0, .9, .9, .9, .9, .6, .6, .9, .9, .9, .9, 0, 0, 0, 0])
    cfg = ProposalConfig(**{**PLAIN.__dict__, "thresholds": (0.5, 0.7), "level_weight": 1.0,
                            "level_quantile": None, "valley_weight": 1.0})
    found = proposals(curve=curve, cfg=cfg, duration=4.0)
    assert [(round(p[1] * FPS), round(p[2] * FPS), round(p[0], 6)) for p in found] == [
        (2, 6, 1.5), (8, 12, 1.5), (2, 12, 1.38)]
    with pytest.raises(ValueError, match="valley_weight"):
        ProposalConfig(valley_weight=-0.5)


def test_length_weight_adds_the_log_of_the_runs_seconds():
    # frame:           0  1   2   3  4  5   6   7   8   9   10  11   (4 fps)
    curve = np.array([0, .9, .9, 0, 0, .7, .7, .7, .7, .7, .7, 0])
    # contrasts by hand: [1, 3) 0.9 - mean(frames 0, 3) = 0.9; [5, 11), 3 context frames a
    # side clipped to the clip, 0.7 - mean(frames 2, 3, 4, 11) = 0.7 - 0.225 = 0.475
    assert_proposals(proposals(curve), [[0.9, 0.25, 0.75], [0.475, 1.25, 2.75]])
    # + 0.5 x ln(seconds): the 1.5 s run gains 0.5 ln 1.5, the 0.5 s one loses 0.5 ln 2
    longer = dataclasses.replace(PLAIN, length_weight=0.5)
    assert_proposals(proposals(curve, longer), [[0.475 + 0.5 * math.log(1.5), 1.25, 2.75],
                                                [0.9 + 0.5 * math.log(0.5), 0.25, 0.75]])
    with pytest.raises(ValueError, match="length_weight"):
        ProposalConfig(length_weight=float("nan"))


def test_run_valley_is_the_deepest_drop_below_the_lower_peak_on_either_side():
    assert run_valley(np.array([0.2, 0.9, 0.5, 0.8, 0.1])) == pytest.approx(0.3)  # min(0.9, 0.8) - 0.5
    # two dips: the deeper counts, measured against the lower of its two peaks
    assert run_valley(np.array([0.7, 0.6, 0.7, 0.1, 0.5, 0.9])) == pytest.approx(0.6)
    # one hump, rising or falling only, or too short to dip: nothing
    for hump in ([0.1, 0.5, 0.9, 0.4, 0.2], [0.1, 0.2, 0.3], [0.9, 0.5, 0.1], [0.4, 0.1]):
        assert run_valley(np.array(hump)) == 0.0


def test_run_level_matches_numpy_quantile_and_mean():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7, 40):
        values = rng.random(n)
        assert run_level(values, None) == pytest.approx(values.mean())
        for q in (0.0, 0.1, 0.5, 0.95, 1.0):
            assert run_level(values, q) == pytest.approx(np.quantile(values, q), abs=1e-12)


def test_interval_iou_in_seconds_without_plus_one():
    assert interval_iou([0.0, 2.0], [1.0, 3.0]) == pytest.approx(1 / 3)
    assert interval_iou([0.0, 1.0], [1.0, 2.0]) == 0.0  # touching intervals do not overlap
    assert interval_iou([0.0, 1.0], [0.0, 1.0]) == 1.0


# a overlaps b with IoU 1/3, b overlaps c with IoU 0.5/(2+1.5-0.5) = 1/6, a and c are disjoint
A, B, C = [0.9, 0.0, 2.0], [0.8, 1.0, 3.0], [0.7, 2.5, 4.0]


def test_hard_nms_by_hand():
    assert hard_nms([C, B, A], 0.3) == [A, C]  # IoU(a,b)=1/3 > 0.3 drops b
    assert hard_nms([C, B, A], 0.4) == [A, B, C]


def test_soft_nms_by_hand():
    got = soft_nms([C, B, A], 0.5)
    # pick a; b *= exp(-(1/3)^2/0.5) = 0.8*0.8007 = 0.6406 < c=0.7, so c is next;
    # then b *= exp(-(1/6)^2/0.5)
    b_score = 0.8 * math.exp(-(1 / 9) / 0.5) * math.exp(-(1 / 36) / 0.5)
    assert_proposals(got, [A, C, [b_score, 1.0, 3.0]])


@pytest.mark.parametrize("count", [0, 1, 7, 40, 90])
def test_soft_nms_lists_and_arrays_give_the_same_list(monkeypatch, count):
    """Few proposals go through a Python loop, many through arrays; ties (equal scores,
    equal spans) must be picked in the same order by both."""
    import pipeline.proposals as proposals_module

    rng = np.random.default_rng(count)
    scores = rng.choice([0.2, 0.5, 0.5, 0.9], count) * rng.choice([1.0, 1.0, 0.7], count)
    starts = rng.integers(0, 40, count) / 8.0
    spans = [[float(s), float(a), float(a + rng.integers(1, 12) / 8.0)] for s, a in zip(scores, starts)]
    spans += spans[:count // 5]  # exact duplicates too
    got = {}
    for path, below in (("lists", 10 ** 9), ("arrays", 0)):
        monkeypatch.setattr(proposals_module, "SOFT_NMS_LIST_BELOW", below)
        got[path] = soft_nms([list(p) for p in spans], 0.5)
    assert got["lists"] == got["arrays"]
    assert len(got["lists"]) == len(spans)


def test_nms_inside_video_proposals():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "merge_gap_frames": 1, "thresholds": (0.5, 0.1),
                            "nms": "hard", "nms_iou": 0.3})
    # level 0.1 adds [2,7) (frames 2..6 >= 0.1): inner 0.76, outer width 3 -> 0.16 -> 0.6;
    # level 0.5 gives [2,4) and [5,7) at 0.8 each. [2,7) overlaps [2,4) with IoU 2/5 > 0.3
    assert_proposals(video_proposals(VISUAL_ONLY, CURVE, FLAT, FLAT, FPS, 3.0, cfg),
                     [[0.8, 0.5, 1.0], [0.8, 1.25, 1.75]])


def test_max_proposals():
    peaks = np.tile([0.0, 0.0, 0.9, 0.9], 10)  # ten separate 2-frame runs
    cfg = ProposalConfig(**{**PLAIN.__dict__, "max_proposals": 3})
    assert len(video_proposals(VISUAL_ONLY, peaks, np.zeros(40), FLAT, FPS, 10.0, cfg)) == 3
    assert len(proposals(curve=peaks, duration=10.0)) == 10


@pytest.mark.parametrize("probs, branch, expected_start", [
    ([0.1, 0.7, 0.1, 0.1], "visual", 0.5),
    ([0.1, 0.1, 0.7, 0.1], "audio", 1.0),
    ([0.1, 0.1, 0.1, 0.7], "joint", 1.5),
    ([0.7, 0.1, 0.1, 0.1], "joint", 1.5),
])
def test_routing_by_predicted_class(probs, branch, expected_start):
    def peak_at(frame):
        curve = np.zeros(12)
        curve[frame:frame + 2] = 0.9
        return curve
    visual, audio, joint = peak_at(2), peak_at(4), peak_at(6)
    assert route(probs) == branch
    got = video_proposals(probs, visual, audio, joint, FPS, 3.0, PLAIN)
    assert [p[1] for p in got] == [expected_start]


def test_real_prediction_still_gets_low_scored_proposals():
    cfg = ProposalConfig(**{**PLAIN.__dict__, "video_weight": 0.5})
    real = [0.8, 0.05, 0.05, 0.1]  # p_fake = 0.2
    both = [0.2, 0.05, 0.05, 0.7]  # p_fake = 0.8
    got_real = video_proposals(real, FLAT, FLAT, CURVE, FPS, 3.0, cfg)
    got_both = video_proposals(both, FLAT, FLAT, CURVE, FPS, 3.0, cfg)
    # real: 0.2 * (0.6 + 0.5*0.2) = 0.14; both: 0.6 + 0.5*0.8 = 1.0
    assert_proposals(got_real, [[0.14, 0.5, 1.75]])
    assert_proposals(got_both, [[1.0, 0.5, 1.75]])
    # without the down-weighting a predicted-real video is scored like any other:
    # 0.6 + 0.5 * 0.2 = 0.7, and the routing (its joint curve) stays
    trusting_less = ProposalConfig(**{**cfg.__dict__, "down_weight_real": False})
    assert_proposals(video_proposals(real, FLAT, FLAT, CURVE, FPS, 3.0, trusting_less), [[0.7, 0.5, 1.75]])
    assert_proposals(video_proposals(real, CURVE, CURVE, FLAT, FPS, 3.0, trusting_less), [])


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="nms"):
        ProposalConfig(nms="fancy")
    with pytest.raises(ValueError, match="min_frames"):
        ProposalConfig(min_frames=0)


def test_grid_search_picks_best_and_reports_all():
    videos = {"a.mp4": VideoScores(np.array(VISUAL_ONLY), CURVE, FLAT, FLAT, FPS, 3.0)}

    def fewer_is_better(preds):
        return -sum(len(p) for p in preds.values())

    best, results = grid_search(videos, fewer_is_better, {"merge_gap_frames": [1, 2]}, base=PLAIN)
    assert best.merge_gap_frames == 2  # merging leaves one proposal instead of two
    assert results == [({"merge_gap_frames": 1}, -2.0), ({"merge_gap_frames": 2}, -1.0)]
    with pytest.raises(ValueError, match="unknown"):
        grid_search(videos, fewer_is_better, {"nope": [1]})


def test_error_evidence_mixes_into_the_routed_curve():
    from pipeline.proposals import branch_curve, scores_to_proposals

    heads = np.zeros(12)
    evidence = np.zeros(12)
    evidence[4:8] = 1.0
    scores = VideoScores(np.array(VISUAL_ONLY), heads, FLAT, FLAT, FPS, 3.0, visual_evidence=evidence)
    assert branch_curve(scores, "visual", PLAIN).max() == 0.0  # heads only: no evidence
    mixed = dataclasses.replace(PLAIN, error_weight=0.75)
    assert branch_curve(scores, "visual", mixed)[4:8].tolist() == [0.75] * 4
    # frames 4..7 at 0.75 >= 0.5: one run [1.0 s, 2.0 s); contrast 0.75 - 0 (outer frames at 0)
    assert_proposals(scores_to_proposals(scores, mixed), [[0.75, 1.0, 2.0]])


def test_smoothing_is_a_centred_moving_average():
    from pipeline.proposals import smooth

    assert smooth(np.array([0.0, 3.0, 0.0, 0.0]), 3).tolist() == [1.5, 1.0, 1.0, 0.0]
    assert smooth(np.array([1.0, 2.0]), 1).tolist() == [1.0, 2.0]


def test_soft_routing_keeps_the_modality_the_class_prediction_missed():
    from pipeline.proposals import scores_to_proposals

    audio = np.zeros(12)
    audio[2:6] = 0.9
    # predicted visual_only (p_visual = 0.6), but the audio curve has the forged span:
    # argmax routing reads the flat visual curve and finds nothing
    probs = np.array([0.0, 0.6, 0.4, 0.0])
    scores = VideoScores(probs, FLAT, audio, FLAT, FPS, 3.0)
    assert scores_to_proposals(scores, PLAIN) == []
    soft = dataclasses.replace(PLAIN, routing="soft")
    # audio run frames 2..5 -> [0.5, 1.5) s, contrast 0.9, scored p_audio * contrast = 0.36
    assert_proposals(scores_to_proposals(scores, soft), [[0.36, 0.5, 1.5]])
    from pipeline.proposals import labelled_proposals

    assert labelled_proposals(scores, soft)[0][3] == "audio"
    # told which modality was forged, soft routing weighs by that instead: 1.0 * 0.9
    told = labelled_proposals(scores, soft, modality_probs={"visual": 0.0, "audio": 1.0})
    assert [p[3] for p in told] == ["audio"] and told[0][0] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="soft routing"):
        labelled_proposals(scores, PLAIN, modality_probs={"visual": 0.0, "audio": 1.0})


def test_soft_routing_weighs_in_the_peak_of_each_modality_curve():
    from pipeline.proposals import effective_config, routed_curve, soft_routing_probabilities

    visual, audio = np.zeros(12), np.zeros(12)
    visual[8:10] = 0.7  # a weak visual blip: run [8, 10), outer frames 7 and 10 -> contrast 0.7
    audio[2:6] = 0.9  # the forged audio span: run [2, 6), outer frames 0, 1, 6, 7 -> contrast 0.9
    scores = VideoScores(np.array([0.0, 0.6, 0.4, 0.0]), visual, audio, FLAT, FPS, 3.0)
    soft = dataclasses.replace(PLAIN, routing="soft")
    # the class alone: visual 0.6 * 0.7 = 0.42 above audio 0.4 * 0.9 = 0.36
    assert_proposals(scores_to_proposals(scores, soft), [[0.42, 2.0, 2.5], [0.36, 0.5, 1.5]])
    assert routed_curve(scores, soft).max() == pytest.approx(0.7)  # the visual curve
    # w = 0.75: P(visual) = 0.25 * 0.6 + 0.75 * 0.7 = 0.675, P(audio) = 0.25 * 0.4 + 0.75 * 0.9 = 0.775
    mixed = dataclasses.replace(soft, routing_evidence_weight=0.75)
    curves = {"visual": visual, "audio": audio}
    assert soft_routing_probabilities(scores, mixed, curves) == pytest.approx({"visual": 0.675, "audio": 0.775})
    assert_proposals(scores_to_proposals(scores, mixed),
                     [[0.775 * 0.9, 0.5, 1.5], [0.675 * 0.7, 2.0, 2.5]])
    assert routed_curve(scores, mixed).max() == pytest.approx(0.9)  # the diagnostics follow
    # outside soft routing the weight changes nothing, so tuning scores such candidates once
    argmax = dataclasses.replace(PLAIN, routing_evidence_weight=0.75)
    assert scores_to_proposals(scores, argmax) == scores_to_proposals(scores, PLAIN)
    assert effective_config(argmax) == effective_config(PLAIN)
    assert effective_config(mixed) != effective_config(soft)
    # nor on rank-normalized curves, whose peak is 1 in every video
    ranked = dataclasses.replace(soft, curve_normalization="rank")
    assert scores_to_proposals(scores, dataclasses.replace(ranked, routing_evidence_weight=0.75)) == \
        scores_to_proposals(scores, ranked)
    assert effective_config(dataclasses.replace(ranked, routing_evidence_weight=0.75)) == effective_config(ranked)


def test_new_settings_are_validated():
    with pytest.raises(ValueError, match="routing_evidence_weight"):
        ProposalConfig(routing_evidence_weight=1.5)
    with pytest.raises(ValueError, match="error_weight"):
        ProposalConfig(error_weight=1.5)
    with pytest.raises(ValueError, match="routing"):
        ProposalConfig(routing="vote")
    with pytest.raises(ValueError, match="smooth_frames"):
        ProposalConfig(smooth_frames=0)


def test_joint_routing_reads_the_joint_curve_whatever_the_class():
    from pipeline.proposals import scores_to_proposals

    joint = np.zeros(12)
    joint[2:6] = 0.9
    scores = VideoScores(np.array(VISUAL_ONLY), FLAT, FLAT, joint, FPS, 3.0)
    assert scores_to_proposals(scores, PLAIN) == []  # argmax reads the flat visual curve
    got = scores_to_proposals(scores, dataclasses.replace(PLAIN, routing="joint"))
    assert_proposals(got, [[0.9, 0.5, 1.5]])


def test_rank_normalize_keeps_order_and_shares_ties():
    from pipeline.proposals import rank_normalize

    # values 0.2 < 0.5 = 0.5 < 0.9: 0-based ranks 0, (1 + 2) / 2, 1.5, 3, over 3
    assert rank_normalize(np.array([0.5, 0.2, 0.9, 0.5])).tolist() == [0.5, 0.0, 1.0, 0.5]
    # a flat curve stays flat (no ramp made up from frame order), and so does one frame
    assert rank_normalize(np.full(5, 0.3)).tolist() == [0.5] * 5
    assert rank_normalize(np.array([0.7])).tolist() == [0.5]


def test_rank_curves_make_proposal_scores_comparable_across_videos():
    from pipeline.proposals import scores_to_proposals

    # the same forged span, one video's head saturated near 1, the other's near 0: raw
    # contrasts differ 10-fold, so a pooled ranking would put every proposal of the
    # confident video first; within-video ranks give both the same score
    shape = np.zeros(12)
    shape[4:8] = 1.0
    loud = VideoScores(np.array(VISUAL_ONLY), 0.9 + 0.1 * shape, FLAT, FLAT, FPS, 3.0)
    quiet = VideoScores(np.array(VISUAL_ONLY), 0.01 * shape, FLAT, FLAT, FPS, 3.0)
    # raw values at level 0.5: the loud video is one whole-video run (no context, contrast
    # 0), the quiet one has no run at all; neither finds the span
    assert_proposals(scores_to_proposals(loud, PLAIN), [[0.0, 0.0, 3.0]])
    assert scores_to_proposals(quiet, PLAIN) == []
    ranked = dataclasses.replace(PLAIN, thresholds=(0.7,), curve_normalization="rank")
    got_loud, got_quiet = scores_to_proposals(loud, ranked), scores_to_proposals(quiet, ranked)
    # ranks: 8 frames tie at 0 -> 3.5 / 11, 4 frames tie at 1 -> 9.5 / 11; the run [1 s, 2 s)
    # has contrast 9.5/11 - 3.5/11 = 6/11 in both videos
    assert_proposals(got_loud, [[6 / 11, 1.0, 2.0]])
    assert_proposals(got_quiet, [[6 / 11, 1.0, 2.0]])
    with pytest.raises(ValueError, match="curve_normalization"):
        ProposalConfig(curve_normalization="zscore")


def test_deviation_evidence_replaces_the_reconstruction_error_when_chosen():
    from pipeline.proposals import branch_curve

    heads, error, deviation, learned = np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12)
    error[0:4] = 1.0
    deviation[6:10] = 1.0
    learned[3:5] = 0.8
    scores = VideoScores(np.array(VISUAL_ONLY), heads, FLAT, FLAT, FPS, 3.0,
                         visual_evidence=error, visual_deviation_evidence=deviation,
                         visual_learned_deviation=learned)
    mixed = dataclasses.replace(PLAIN, error_weight=1.0)
    assert branch_curve(scores, "visual", mixed).tolist() == error.tolist()
    by_deviation = dataclasses.replace(mixed, evidence="deviation")
    assert branch_curve(scores, "visual", by_deviation).tolist() == deviation.tolist()
    by_learned = dataclasses.replace(mixed, evidence="learned_deviation")
    assert branch_curve(scores, "visual", by_learned).tolist() == learned.tolist()
    with pytest.raises(ValueError, match="evidence"):
        ProposalConfig(evidence="median")


def test_sync_evidence_is_one_curve_for_both_branches_and_can_be_averaged_with_the_learned():
    from pipeline.proposals import branch_curve

    heads, learned, sync = np.zeros(12), np.zeros(12), np.zeros(12)
    learned[3:5] = 0.8
    sync[6:10] = 1.0
    scores = VideoScores(np.array(VISUAL_ONLY), heads, heads, heads, FPS, 3.0,
                         visual_learned_deviation=learned, sync_evidence=sync)
    by_sync = dataclasses.replace(PLAIN, error_weight=1.0, evidence="sync")
    for branch in ("visual", "audio", "joint"):
        assert branch_curve(scores, branch, by_sync).tolist() == sync.tolist()
    averaged = dataclasses.replace(by_sync, evidence="sync_and_learned_deviation")
    assert branch_curve(scores, "visual", averaged).tolist() == (0.5 * (sync + learned)).tolist()
    # the audio branch has no learned deviation here: half the desynchrony
    assert branch_curve(scores, "audio", averaged).tolist() == (0.5 * sync).tolist()
    # a video without the desynchrony (an older checkpoint) reads zeros
    without = dataclasses.replace(scores, sync_evidence=None)
    assert branch_curve(without, "visual", by_sync).tolist() == [0.0] * 12
    # the three cues: the FDN's error percentile joins the mean with weight one third
    error = np.zeros(12)
    error[0:2] = 0.9
    with_error = dataclasses.replace(scores, visual_evidence=error)
    three = dataclasses.replace(by_sync, evidence="sync_learned_deviation_and_reconstruction")
    assert np.allclose(branch_curve(with_error, "visual", three), (sync + learned + error) / 3)
    assert np.allclose(branch_curve(with_error, "audio", three), sync / 3)


def test_reconstruction_outliers_raise_the_mean_of_desynchrony_and_learned_deviation():
    from pipeline.proposals import RECONSTRUCTION_OUTLIER_LEVEL, branch_curve

    heads, learned, sync, error = np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12)
    learned[3:5], learned[6:8] = 0.8, 1.0
    sync[6:10] = 1.0
    error[0:2] = 0.9  # high, but 10 % of authentic frames reach it: not an outlier
    error[10:12] = 0.995  # above RECONSTRUCTION_OUTLIER_LEVEL of authentic frames
    error[7] = 0.995  # an outlier below the mean of the other two keeps the mean (1.0)
    assert error[0] < RECONSTRUCTION_OUTLIER_LEVEL <= error[10]
    scores = VideoScores(np.array(VISUAL_ONLY), heads, heads, heads, FPS, 3.0,
                         visual_learned_deviation=learned, sync_evidence=sync,
                         visual_evidence=error)
    cfg = dataclasses.replace(PLAIN, error_weight=1.0,
                              evidence="sync_and_learned_deviation_or_reconstruction_outlier")
    expected = 0.5 * (sync + learned)
    expected[10:12] = 0.995
    assert np.allclose(branch_curve(scores, "visual", cfg), expected)
    # the audio branch has neither a learned deviation nor an error here: half the desynchrony
    assert np.allclose(branch_curve(scores, "audio", cfg), 0.5 * sync)


def test_spectral_detail_raises_the_audio_curve_to_the_larger_of_it_and_the_desynchrony_squared():
    from pipeline.proposals import branch_curve

    heads, learned, sync, detail = np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12)
    learned[3:5] = 0.8
    sync[6:10] = 0.6
    detail[0:3], detail[8] = 0.9, 0.3  # frame 8: below the desynchrony, which stays
    scores = VideoScores(np.array(AUDIO_ONLY), heads, heads, heads, FPS, 3.0,
                         visual_learned_deviation=learned, audio_learned_deviation=learned,
                         sync_evidence=sync, spectral_detail_evidence=detail)
    cfg = dataclasses.replace(PLAIN, error_weight=1.0, evidence="sync_or_spectral_detail")
    larger = np.maximum(sync, detail) ** 2  # a percentile again (evidence_curve)
    assert np.allclose(branch_curve(scores, "audio", cfg), larger)
    # the picture has no spectral detail: the visual curve is the desynchrony alone
    assert branch_curve(scores, "visual", cfg).tolist() == sync.tolist()
    # the joint curve takes the larger of the two modalities'
    assert np.allclose(branch_curve(scores, "joint", cfg), np.maximum(sync, larger))
    with_learned = dataclasses.replace(cfg, evidence="sync_and_learned_deviation_or_spectral_detail")
    # the audio curve leaves its learned deviation out; the visual one averages it in
    assert np.allclose(branch_curve(scores, "audio", with_learned), larger)
    assert branch_curve(scores, "visual", with_learned).tolist() == (0.5 * (sync + learned)).tolist()
    # a model without it (wav2vec 2.0 audio, an older checkpoint) reads the desynchrony alone
    without = dataclasses.replace(scores, spectral_detail_evidence=None)
    assert np.allclose(branch_curve(without, "audio", cfg), sync ** 2)


def test_the_audio_cues_kind_takes_the_largest_of_three_audio_percentiles_cubed():
    from pipeline.proposals import branch_curve

    heads, learned, sync, detail, audio_pct = (np.zeros(12) for _ in range(5))
    learned[3:5] = 0.8  # the scorers' probabilities: the visual curve averages its own in
    sync[6:10] = 0.6
    detail[0:3] = 0.9
    audio_pct[8:12] = 0.7  # frame 8: above the desynchrony's 0.6, so it counts there
    scores = VideoScores(np.array(AUDIO_ONLY), heads, heads, heads, FPS, 3.0,
                         visual_learned_deviation=learned, audio_learned_deviation=learned,
                         audio_learned_deviation_evidence=audio_pct,
                         sync_evidence=sync, spectral_detail_evidence=detail)
    cfg = dataclasses.replace(PLAIN, error_weight=1.0, evidence="sync_and_learned_deviation_or_audio_cues")
    expected = np.zeros(12)
    expected[0:3], expected[6:8], expected[8:12] = 0.9 ** 3, 0.6 ** 3, 0.7 ** 3
    assert np.allclose(branch_curve(scores, "audio", cfg), expected)
    # (the audio probability itself, 0.8 on frames 3-4, is not a percentile: not read here)
    assert branch_curve(scores, "visual", cfg).tolist() == (0.5 * (sync + learned)).tolist()
    # on three independent uniform percentiles P(max <= u) = u^3: the cube is uniform again
    rng = np.random.default_rng(0)
    cube = np.max(rng.uniform(size=(3, 200_000)), axis=0) ** 3
    assert abs(np.mean(cube <= 0.25) - 0.25) < 0.01 and abs(np.mean(cube <= 0.75) - 0.75) < 0.01


def test_error_evidence_goes_only_into_the_chosen_modality():
    from pipeline.proposals import branch_curve

    visual_head, audio_head = np.full(12, 0.2), np.full(12, 0.4)
    visual_error, audio_error = np.zeros(12), np.zeros(12)
    visual_error[0:4] = 1.0
    audio_error[6:10] = 1.0
    scores = VideoScores(np.array(VISUAL_ONLY), visual_head, audio_head, FLAT, FPS, 3.0,
                         visual_evidence=visual_error, audio_evidence=audio_error)
    both = dataclasses.replace(PLAIN, error_weight=0.5)
    assert branch_curve(scores, "visual", both).tolist() == (0.1 + 0.5 * visual_error).tolist()
    assert branch_curve(scores, "joint", both).tolist() == \
        (0.5 * np.maximum(visual_error, audio_error)).tolist()  # joint head 0
    audio_only = dataclasses.replace(both, error_modalities="audio")
    assert branch_curve(scores, "visual", audio_only).tolist() == visual_head.tolist()  # untouched
    assert branch_curve(scores, "audio", audio_only).tolist() == (0.2 + 0.5 * audio_error).tolist()
    assert branch_curve(scores, "joint", audio_only).tolist() == (0.5 * audio_error).tolist()
    visual_only = dataclasses.replace(both, error_modalities="visual")
    assert branch_curve(scores, "audio", visual_only).tolist() == audio_head.tolist()
    with pytest.raises(ValueError, match="error_modalities"):
        ProposalConfig(error_modalities="joint")


def test_grid_search_runs_equivalent_settings_once():
    calls = []

    def evaluate(predictions):
        calls.append(1)
        return 0.0

    videos = {"a": VideoScores(np.array(VISUAL_ONLY), CURVE, FLAT, FLAT, FPS, 3.0)}
    # with error_weight 0 the kind of evidence cannot matter: 3 distinct settings, not 4
    _, tried = grid_search(videos, evaluate, {"error_weight": (0.0, 0.5),
                                              "evidence": ("reconstruction", "deviation")}, PLAIN)
    assert len(tried) == 4 and len(calls) == 3
    calls.clear()
    # nor where it goes: 1 + 3 distinct settings out of 6
    _, tried = grid_search(videos, evaluate, {"error_weight": (0.0, 0.5),
                                              "error_modalities": ("both", "audio", "visual")}, PLAIN)
    assert len(tried) == 6 and len(calls) == 4


def test_reads_network_is_false_only_for_the_evidence_alone_on_joint_routing():
    from pipeline.proposals import reads_network

    alone = ProposalConfig(routing="joint", error_weight=1.0, video_weight=0.0, down_weight_real=False,
                           evidence="sync_and_learned_deviation")
    assert not reads_network(alone)
    assert not reads_network(dataclasses.replace(alone, evidence="deviation"))
    # each of these lets a network output in: the FDN's error, the class, the head score
    for change in ({"evidence": "reconstruction"}, {"routing": "argmax"}, {"routing": "soft"},
                   {"error_weight": 0.75}, {"video_weight": 0.5}, {"down_weight_real": True}):
        assert reads_network(dataclasses.replace(alone, **change)), change
    assert reads_network(ProposalConfig())  # the paper's reading


def test_a_network_free_choice_is_said_where_the_tuning_is_described():
    from pipeline.proposal_tuning import describe_tuning, network_note

    record = {"split": "dev", "reads_network": False}
    assert "read no output of the RT-DeepLoc network" in network_note(record)[0]
    assert network_note(record)[0] in describe_tuning(record)
    # records from before the field, and settings that read the network, get no line
    assert network_note({"reads_network": True}) == [] and network_note({}) == []


def snap_case(change, **settings):
    """Proposal spans (frames) of a curve whose one run covers frames [8, 20) of 30."""
    curve = np.zeros(30)
    curve[8:20] = 0.9
    cfg = dataclasses.replace(PLAIN, **settings)
    scores = VideoScores(np.array(VISUAL_ONLY), curve, np.zeros(30), np.zeros(30), FPS, 30 / FPS,
                         visual_change=np.asarray(change, dtype=float))
    return [(round(p[1] * FPS), round(p[2] * FPS)) for p in scores_to_proposals(scores, cfg)]


def change_with_peaks(*frames, background=0.0, height=1.0):
    change = np.full(30, background)
    change[list(frames)] = height
    return change


def test_snapping_moves_both_ends_to_where_the_picture_changes():
    change = change_with_peaks(10, 22)
    assert snap_case(change) == [(8, 20)]  # snap_frames 0 (the default): the threshold's ends
    assert snap_case(change, snap_frames=3) == [(10, 22)]
    assert snap_case(change, snap_frames=1) == [(8, 20)]  # both peaks 2 frames away


def test_snapping_needs_a_change_that_stands_out_in_its_clip():
    # the picture changes by 1 everywhere (a moving camera); a 0.5 near the ends is no boundary
    ordinary = change_with_peaks(10, 22, background=1.0, height=0.5)
    assert snap_case(ordinary, snap_frames=3) == [(8, 20)]
    # the same jump among quiet frames is one (at least the clip's 95th percentile)
    assert snap_case(change_with_peaks(10, 22, background=0.1, height=0.5), snap_frames=3) == [(10, 22)]
    # no change anywhere: nothing to snap to
    assert snap_case(np.zeros(30), snap_frames=3) == [(8, 20)]


def test_a_run_that_snapping_would_shorten_below_min_frames_keeps_its_ends():
    # both ends would move to frame 14 (one change peak within 6 of each): an empty run
    assert snap_case(change_with_peaks(14), snap_frames=6, min_frames=2) == [(8, 20)]


def nearest_peak_by_search(change, frame, radius, floor):
    """What `snap_targets` must give for one frame, searched the plain way."""
    lo, hi = max(0, frame - radius), min(len(change) - 1, frame + radius)
    if lo > hi:
        return frame
    window = change[lo:hi + 1]
    peaks = lo + np.flatnonzero(window == window.max())
    best = int(peaks[np.argmin(np.abs(peaks - frame))])  # the nearest, the earlier of two
    return best if change[best] >= floor and change[best] > 0 else frame


def test_snap_table_matches_a_search_from_each_frame():
    rng = np.random.default_rng(0)
    for trial in range(200):
        length = int(rng.integers(1, 40))
        # few distinct values, so equal maxima (and ties in distance) are common
        change = rng.integers(0, 4, size=length).astype(float)
        radius, floor = int(rng.integers(1, 6)), float(rng.choice([0.0, 1.0, 2.0]))
        last = length + int(rng.integers(0, 8))  # ends past the clip's last frame too
        table = snap_targets(change, radius, floor, last)
        assert table.tolist() == [nearest_peak_by_search(change, f, radius, floor)
                                  for f in range(last + 1)], (change, radius, floor)


def test_run_contrasts_match_the_mean_of_each_slice():
    rng = np.random.default_rng(1)
    scores = rng.random(50)
    runs = [(0, 50), (0, 5), (45, 50), (10, 11), (20, 33)]
    for ratio in (0.0, 0.25, 1.0):
        expected = []
        for start, end in runs:
            width = max(1, math.floor(ratio * (end - start) + 0.5))
            outer = np.concatenate([scores[max(0, start - width):start], scores[end:end + width]])
            expected.append(scores[start:end].mean() - outer.mean() if outer.size else 0.0)
        np.testing.assert_allclose(run_contrasts(scores, runs, ratio), expected, rtol=0, atol=1e-12)
    # runs over equal values score exactly alike, so a tie keeps its order by start time
    flat = np.array([0, .9, .9, 0, 0, .9, .9, 0])
    first, second = run_contrasts(flat, [(1, 3), (5, 7)], 0.5)
    assert first == second


def test_runs_per_level_match_find_runs_at_each_level():
    rng = np.random.default_rng(2)
    curve = rng.random(60)
    levels = [0.1, 0.5, 0.9, 1.5, -1.0]
    assert runs_per_level(curve, levels) == [find_runs(curve >= level) for level in levels]
    assert runs_per_level(curve, []) == []


def test_snap_settings_are_validated():
    with pytest.raises(ValueError, match="snap_frames"):
        ProposalConfig(snap_frames=-1)
    with pytest.raises(ValueError, match="snap_quantile"):
        ProposalConfig(snap_quantile=1.5)


def test_a_choice_made_on_a_small_split_is_said_to_be_noisy():
    from pipeline.proposal_tuning import SMALL_TUNING_SPLIT, describe_tuning

    def said(videos):
        return [line for line in describe_tuning({"split": "dev", "videos": videos})
                if "noisy choice" in line]

    assert said(50) and "chosen on only 50 videos" in said(50)[0]
    assert said(SMALL_TUNING_SPLIT - 1) and not said(SMALL_TUNING_SPLIT) and not said(1000)
    assert not [line for line in describe_tuning({"split": "dev"}) if "noisy" in line]


def test_run_features_are_remembered_per_curve_and_run_settings_within_a_byte_budget(monkeypatch):
    from pipeline import proposals

    monkeypatch.setattr(proposals, "_run_feature_cache", {})
    monkeypatch.setattr(proposals, "_run_feature_cache_bytes", 0)
    curve = CURVE.astype(np.float64)
    first = proposals.run_features(curve, PLAIN)
    # the runs of PLAIN (test_short_gap_merged_and_short_run_dropped): [2, 7) only
    assert first[0] == ((2, 7),) and first[1] == pytest.approx([0.6])
    assert first[2] == pytest.approx([run_level(curve[2:7], PLAIN.level_quantile)])
    assert first[3] == pytest.approx([run_valley(curve[2:7])])
    # weights do not change the runs: the same entry; a merge gap or another curve does
    weighted = dataclasses.replace(PLAIN, level_weight=1.0, valley_weight=1.0, length_weight=0.1)
    assert proposals.run_features(curve, weighted) is first
    assert proposals.run_features(curve, dataclasses.replace(PLAIN, merge_gap_frames=1))[0] == ((2, 4), (5, 7))
    assert proposals.run_features(curve * 0.5, PLAIN)[0] == ()
    assert len(proposals._run_feature_cache) == 3
    # what is remembered changes no proposal
    remembered = scores_to_proposals(VideoScores(np.array(VISUAL_ONLY), curve, FLAT, FLAT, FPS, 3.0), weighted)
    monkeypatch.setattr(proposals, "_run_feature_cache", {})
    monkeypatch.setattr(proposals, "_run_feature_cache_bytes", 0)
    monkeypatch.setattr(proposals, "RUN_FEATURE_CACHE_BYTES", 0)  # remember nothing
    assert scores_to_proposals(VideoScores(np.array(VISUAL_ONLY), curve, FLAT, FLAT, FPS, 3.0), weighted) \
        == remembered
    assert proposals._run_feature_cache == {}
    # a budget for about two entries keeps the newest two
    monkeypatch.setattr(proposals, "_run_feature_cache", {})
    monkeypatch.setattr(proposals, "_run_feature_cache_bytes", 0)
    one = proposals._entry_bytes((curve.tobytes(), b""), first)
    monkeypatch.setattr(proposals, "RUN_FEATURE_CACHE_BYTES", 2 * one + 10)
    for shift in range(4):
        proposals.run_features(np.roll(curve, shift), PLAIN)
    assert len(proposals._run_feature_cache) == 2
    assert proposals._run_feature_cache_bytes <= proposals.RUN_FEATURE_CACHE_BYTES
    assert [np.frombuffer(key[0]).tolist() for key in proposals._run_feature_cache] == \
        [np.roll(curve, 2).tolist(), np.roll(curve, 3).tolist()]
    proposals.forget_run_features()
    assert proposals._run_feature_cache == {} and proposals._run_feature_cache_bytes == 0
