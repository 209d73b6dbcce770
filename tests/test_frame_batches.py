import numpy as np
import pytest
import torch

from extractors.frame_batches import map_frame_batches


def test_batches_in_order_and_concatenates_float32():
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    seen = []

    def first_pixel(batch):  # [b,2,2,3] uint8 -> [b,1]
        seen.append(batch.shape[0])
        return batch[:, 0, 0, :1].to(torch.float64)

    out = map_frame_batches(frames, 2, 1, "toy", first_pixel)
    assert seen == [2, 2, 1]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 4])


def test_empty_chunk_gives_zero_rows():
    out = map_frame_batches(np.zeros((0, 4, 4, 3), np.uint8), 8, 7, "toy", lambda b: 1 / 0)
    assert out.shape == (0, 7) and out.dtype == np.float32


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4, 3), np.float32), np.zeros((2, 4, 4), np.uint8)])
def test_rejects_wrong_frames_naming_extractor(bad):
    with pytest.raises(ValueError, match="toy expects uint8 frames"):
        map_frame_batches(bad, 2, 1, "toy", lambda b: b)
