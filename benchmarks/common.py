"""What the frame-level scripts of this folder start from: the two arguments that name a
benchmark set (its metadata and its feature cache) and the set opened with its training
split, on one thread, with the machine printed first (every figure names its CPU)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple


def set_parser(doc: str, *, splits: str | None = None) -> argparse.ArgumentParser:
    """A parser holding --metadata and --cache (and --splits with this default, if given);
    its description is the first paragraph of the script's docstring `doc`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    if splits is not None:
        parser.add_argument("--splits", default=splits)
    return parser


class TrainingView(NamedTuple):
    cache: object  # data.cache.FeatureCache
    records: list  # every record of the metadata
    types: dict  # file -> forgery types (pipeline.diagnostics.load_forgery_types)
    train: list  # the training split's records that the cache holds


def open_training_view(metadata: Path, cache_path: Path) -> TrainingView:
    """Print the machine, set one thread, open the cache and metadata."""
    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.diagnostics import load_forgery_types
    from pipeline.machine import describe_machine

    torch.set_num_threads(1)
    print(describe_machine(), flush=True)
    cache = FeatureCache(cache_path)
    records = load_metadata(metadata)
    train = [r for r in records_for_split(records, "train") if r.file in cache]
    return TrainingView(cache, records, load_forgery_types(metadata), train)
