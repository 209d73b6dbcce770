"""benchmarks/recall_loss.py: its re-assembly of soft routing must be the localizer's own,
or its snapping comparison would measure the script instead of the snapping."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from pipeline.proposals import ProposalConfig, VideoScores, labelled_proposals  # noqa: E402
from recall_loss import audio_snap_proposals, relation  # noqa: E402

SOFT = ProposalConfig(routing="soft", snap_frames=3, smooth_frames=3, nms="soft", soft_sigma=0.5)


def random_video(rng: np.random.Generator, frames: int = 60) -> VideoScores:
    def curve():
        bumps = np.zeros(frames)
        for _ in range(3):
            start = rng.integers(0, frames - 10)
            bumps[start:start + rng.integers(4, 15)] += rng.uniform(0.3, 0.9)
        return np.clip(bumps + rng.uniform(0, 0.2, frames), 0, 1)

    return VideoScores(rng.dirichlet(np.ones(4)), curve(), curve(), curve(), 25.0, frames / 25.0,
                       visual_change=rng.uniform(0, 1, frames) ** 4)


@pytest.mark.parametrize("seed", range(5))
def test_snapping_the_audio_curve_to_the_picture_gives_the_localizers_own_proposals(seed):
    video = random_video(np.random.default_rng(seed))
    expected = [p[:3] for p in labelled_proposals(video, SOFT)]
    assert expected  # the case must hold proposals to compare
    assert audio_snap_proposals(video, SOFT, video.visual_change) == expected


def test_snapping_the_audio_curve_elsewhere_moves_only_audio_proposals():
    video = random_video(np.random.default_rng(7))
    unsnapped = audio_snap_proposals(video, SOFT, None)
    loose = dataclasses.replace(SOFT, nms="none", max_proposals=10 ** 9)
    visual_spans = {tuple(p[1:3]) for p in labelled_proposals(video, loose)
                    if p[3] == "visual"}
    snapped_audio = {tuple(p[1:3]) for p in labelled_proposals(
        dataclasses.replace(video, visual_change=None), loose) if p[3] == "audio"}
    assert {tuple(p[1:3]) for p in unsnapped} <= visual_spans | snapped_audio


def test_relation_of_a_proposal_above_a_missed_segment():
    segment, other = (2.0, 4.0), (6.0, 7.0)
    truth = [segment, other]
    assert relation((6.0, 7.1), segment, truth) == "another true segment"
    assert relation((2.5, 3.0), segment, truth) == "inside it (too short)"
    assert relation((1.0, 5.5), segment, truth) == "around it (too long)"
    assert relation((3.5, 5.5), segment, truth) == "partial overlap with a true segment"
    assert relation((8.0, 9.0), segment, truth) == "false alarm (no true segment)"
