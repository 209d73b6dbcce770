"""Helpers shared by test_train.py, test_checkpoint.py and test_dataset.py: tiny generated
feature caches and LAV-DF-style metadata, a tiny RT-DeepLoc config, and the DDP test worker
(a module of its own so spawned processes can import it).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from data.labels import label_from_flags

VISUAL_DIM, AUDIO_DIM = 6, 4
SETTINGS = {"visual": {"name": "test-random", "dim": VISUAL_DIM},
            "audio": {"name": "test-random", "dim": AUDIO_DIM}}

# (visual modified, audio modified) for the four classes, cycled over the videos
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def make_videos(n_per_split: dict[str, int], *, lengths=(12, 20, 9, 30), seed: int = 0):
    """List of dicts (file, split, n_frames, visual flag, audio flag, fake span) for a tiny set."""
    videos = []
    for split, count in n_per_split.items():
        for i in range(count):
            v, a = FLAGS[i % 4]
            n = lengths[i % len(lengths)]
            videos.append({"file": f"{split}/{i:04d}.mp4", "split": split, "n_frames": n,
                           "modify_video": v, "modify_audio": a,
                           "span": (n // 4, n // 4 + max(2, n // 3)) if (v or a) else None})
    return videos


def write_cache(path: Path, videos, *, seed: int = 0, nan_files=(), settings=None) -> Path:
    """Write features in which forged frames are shifted, so a model can learn the labels."""
    from data.cache import CacheWriter

    rng = np.random.default_rng(seed)
    with CacheWriter(path, settings or SETTINGS, dtype="float32") as writer:
        for video in videos:
            n = video["n_frames"]
            visual = rng.normal(size=(n, VISUAL_DIM)).astype(np.float32)
            audio = rng.normal(size=(n, AUDIO_DIM)).astype(np.float32)
            if video["span"] is not None:
                s, e = video["span"]
                if video["modify_video"]:
                    visual[s:e] += 3.0
                if video["modify_audio"]:
                    audio[s:e] -= 3.0
            if video["file"] in nan_files:
                visual[:] = np.nan
            writer.write(video["file"], visual, audio, fps=25.0, duration=n / 25.0, has_audio=True)
    return path


def write_metadata(path: Path, videos) -> Path:
    """LAV-DF style metadata.json for `videos`."""
    entries = []
    for video in videos:
        n = video["n_frames"]
        periods = [] if video["span"] is None else [[video["span"][0] / 25.0, video["span"][1] / 25.0]]
        entries.append({"file": video["file"], "split": video["split"], "n_fakes": len(periods),
                        "fake_periods": periods, "duration": n / 25.0, "original": None,
                        "modify_video": video["modify_video"], "modify_audio": video["modify_audio"],
                        "video_frames": n, "audio_channels": 1, "audio_frames": n * 640})
    path.write_text(json.dumps(entries))
    return path


def labels_of(videos) -> list[int]:
    return [label_from_flags(v["modify_video"], v["modify_audio"]) for v in videos]


def tiny_model_config(**changes):
    from model.config import ModelConfig

    fields = dict(d_model=8, fusion_heads=2, mae_encoder_layers=1, mae_decoder_layers=1,
                  mae_decoder_dim=8, mae_heads=2, ff_mult=1, aicl_k=2, head_hidden=8)
    fields.update(changes)
    return ModelConfig(**fields)


def tiny_run_config(model_changes=None, **train_changes):
    from pipeline.train_config import RunConfig, TrainConfig

    train = dict(epochs=1, batch_size=4, lr=1e-3, max_len=16, seed=0,
                 device="cpu")
    train.update(train_changes)
    return RunConfig(model=tiny_model_config(**(model_changes or {})), train=TrainConfig(**train))


def make_run_data(tmp_path: Path, n_per_split=None, **cache_kwargs):
    """(cache path, metadata path, videos) of a tiny LAV-DF-like set with train and dev."""
    videos = make_videos(n_per_split or {"train": 8, "dev": 4})
    cache = write_cache(tmp_path / "features.h5", videos, **cache_kwargs)
    meta = write_metadata(tmp_path / "metadata.json", videos)
    return cache, meta, videos


# ----------------------------------------------------------------------------- DDP worker

def ddp_worker(rank: int, world: int, port: int, cache: str, meta: str, out: str) -> None:
    """One rank of the two-process gloo test: train one epoch, dump its parameters."""
    import os

    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"})
    torch.set_num_threads(1)
    from model.rtdeeploc import build_model
    from pipeline.train import train_run

    cfg = tiny_run_config(epochs=1, batch_size=2, model_changes={"dropout": 0.0})
    torch.manual_seed(cfg.train.seed)  # the trainer's initial weights, for comparison
    initial = build_model(cfg.model, VISUAL_DIM, AUDIO_DIM).state_dict()
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        outcome = train_run(cfg, cache, meta, Path(out) / "run")
        torch.save({"weights": outcome.model.state_dict(), "initial": initial},
                   Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
