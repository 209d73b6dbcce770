"""pipeline/dataset.py: items, crops, padding/mask, in-memory mode, missing keys."""
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data.cache import FeatureCache
from data.metadata import load_metadata
from pipeline.dataset import FeatureDataset, iter_windows, pad_collate
from train_fixtures import labels_of, make_run_data


@pytest.fixture()
def data(tmp_path):
    cache_path, meta_path, videos = make_run_data(tmp_path)
    return FeatureCache(cache_path), load_metadata(meta_path), videos


def test_items_are_whole_sequences_for_evaluation(data):
    cache, records, videos = data
    ds = FeatureDataset(cache, records)
    assert len(ds) == len(records)
    for i, record in enumerate(records):
        item = ds[i]
        visual, audio = cache.read(record.file)
        assert torch.equal(item["visual"], torch.from_numpy(visual))
        assert torch.equal(item["audio"], torch.from_numpy(audio))
        assert item["label"] == record.label and item["index"] == i
    assert [r.label for r in records] == labels_of(videos)


def test_training_crops_are_max_len_windows_fixed_by_seed_epoch_index(data):
    cache, records, _ = data
    ds = FeatureDataset(cache, records, max_len=10, seed=3)
    long_index = next(i for i, r in enumerate(records) if r.n_frames == 30)
    short_index = next(i for i, r in enumerate(records) if r.n_frames == 9)
    full_visual, _ = cache.read(records[long_index].file)

    starts = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[long_index]
        start = ds.crop_start(long_index, 30)
        assert 0 <= start <= 20 and item["visual"].shape == (10, full_visual.shape[1])
        assert torch.equal(item["visual"], torch.from_numpy(full_visual[start:start + 10]))
        assert ds[long_index]["visual"].equal(item["visual"])  # same epoch, same crop
        starts.append(start)
    assert len(set(starts)) > 1  # crops move between epochs
    assert ds[short_index]["visual"].shape[0] == 9  # shorter than max_len: untouched

    again = FeatureDataset(cache, records, max_len=10, seed=3)
    again.set_epoch(5)
    assert again.crop_start(long_index, 30) == starts[5]


def test_pad_collate_pads_with_zeros_and_masks_padding():
    items = [{"visual": torch.ones(3, 2), "audio": torch.full((3, 1), 2.0), "label": 1, "index": 0},
             {"visual": torch.ones(1, 2), "audio": torch.full((1, 1), 2.0), "label": 3, "index": 5}]
    batch = pad_collate(items)
    assert batch.visual.shape == (2, 3, 2) and batch.audio.shape == (2, 3, 1)
    assert batch.mask.dtype == torch.bool
    assert batch.mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.visual[1, 1:].abs().sum() == 0 and batch.audio[1, 1:].abs().sum() == 0
    assert batch.audio[1, 0, 0] == 2.0
    assert batch.labels.tolist() == [1, 3] and batch.index.tolist() == [0, 5]
    assert batch.labels.dtype == torch.long


def test_in_memory_matches_lazy_reads_through_worker_processes(data):
    cache, records, _ = data
    lazy = FeatureDataset(cache, records, max_len=10, seed=1)
    memory = FeatureDataset(cache, records, max_len=10, seed=1, in_memory=True)
    pickle.dumps(lazy)  # a dataset over a lazily opened cache must pickle into workers
    loader_args = dict(batch_size=4, shuffle=False, collate_fn=pad_collate)
    worker_batches = list(DataLoader(lazy, num_workers=2, **loader_args))
    for a, b in zip(worker_batches, DataLoader(memory, **loader_args)):
        assert torch.equal(a.visual, b.visual) and torch.equal(a.mask, b.mask)
        assert torch.equal(a.labels, b.labels)


def test_missing_video_names_cache_and_key(data, tmp_path):
    cache, records, _ = data
    import dataclasses
    ghost = dataclasses.replace(records[0], file="train/missing.mp4")
    with pytest.raises(ValueError) as err:
        FeatureDataset(cache, records + [ghost])
    assert "train/missing.mp4" in str(err.value) and "features.h5" in str(err.value)


def test_iter_windows_cover_every_frame_once():
    assert list(iter_windows(10, 0)) == [(0, 10)]
    assert list(iter_windows(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(iter_windows(3, 4)) == [(0, 3)]
    covered = np.concatenate([np.arange(a, b) for a, b in iter_windows(23, 5)])
    assert covered.tolist() == list(range(23))
