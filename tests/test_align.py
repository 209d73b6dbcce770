"""Tests for extractors/align.py: hand-computed pooling of audio vectors onto frames."""
import numpy as np
import pytest

from extractors.align import frame_index_of_times, pool_to_frames


def test_hand_computed_pooling_with_nearest_and_dropped_vectors():
    # fps 2: frame i covers [0.5 i, 0.5 (i + 1)); 4 frames = 2 s of video
    features = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [7.0, 70.0], [9.0, 90.0]])
    centres = np.array([0.1, 0.3, 0.5, 1.2, 5.0])  # 0.5 is on a boundary -> frame 1; 5.0 is past the end
    pooled = pool_to_frames(features, centres, n_frames=4, fps=2.0)
    expected = np.array([[2.0, 20.0],   # mean of 1 and 3
                         [5.0, 50.0],   # the boundary vector
                         [7.0, 70.0],   # 1.2 s
                         [7.0, 70.0]])  # empty: frame centre 1.75 s, nearest centre 1.2 s
    assert pooled.dtype == np.float32 and pooled.shape == (4, 2)
    np.testing.assert_allclose(pooled, expected)


def test_empty_frame_in_the_middle_takes_the_nearer_neighbour():
    features = np.array([[0.0], [1.0]])
    centres = np.array([0.05, 0.52])  # fps 4: frames [0,.25) [.25,.5) [.5,.75)
    pooled = pool_to_frames(features, centres, n_frames=3, fps=4.0)
    # frame 1 centre 0.375: distance 0.325 to 0.05, 0.145 to 0.52 -> takes 1.0
    np.testing.assert_allclose(pooled[:, 0], [0.0, 1.0, 1.0])


@pytest.mark.parametrize("audio_seconds", [0.5, 1.0, 3.0])
def test_length_is_always_the_video_frame_count(audio_seconds):
    n_vectors = int(audio_seconds * 50)  # 50 Hz audio features
    centres = (np.arange(n_vectors) + 0.5) / 50
    features = np.arange(n_vectors, dtype=np.float32)[:, None].repeat(3, axis=1)
    pooled = pool_to_frames(features, centres, n_frames=25, fps=25.0)  # 1 s of video
    assert pooled.shape == (25, 3)
    if audio_seconds >= 1.0:  # two vectors per frame: mean of 2i and 2i+1
        np.testing.assert_allclose(pooled[:, 0], np.arange(25) * 2 + 0.5)
    else:  # 0.5 s: frame 12 holds only vector 24 (centre 0.49 s); later frames repeat it
        np.testing.assert_allclose(pooled[:12, 0], np.arange(12) * 2 + 0.5)
        np.testing.assert_allclose(pooled[12:, 0], 24.0)


def test_no_audio_vectors_gives_zeros():
    assert not pool_to_frames(np.zeros((0, 4)), np.zeros(0), n_frames=3, fps=25.0).any()


def test_variable_frame_rate_uses_frame_starts():
    starts = np.array([0.0, 0.1, 0.5])  # last frame lasts 1/fps = 0.5 s (fps given as 2)
    idx = frame_index_of_times(np.array([0.05, 0.2, 0.6, 0.99, 1.2, -0.1]), 3, 2.0, starts)
    np.testing.assert_array_equal(idx, [0, 1, 2, 2, -1, -1])
    pooled = pool_to_frames(np.array([[1.0], [2.0], [4.0]]), np.array([0.05, 0.2, 0.3]), 3, 2.0, starts)
    np.testing.assert_allclose(pooled[:, 0], [1.0, 3.0, 4.0])  # frame 2 (centre .75) nearest is 0.3


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="centres"):
        pool_to_frames(np.zeros((3, 2)), np.zeros(2), 4, 25.0)
    with pytest.raises(ValueError, match="n_frames"):
        pool_to_frames(np.zeros((3, 2)), np.zeros(3), 0, 25.0)
