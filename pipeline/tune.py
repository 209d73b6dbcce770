"""`rtdl tune`: choose proposal settings for a trained checkpoint on a validation split
(pipeline/proposal_tuning.py; `rtdl train` already does it after its last epoch), optionally
with another grid, split or protocol; write them as YAML and, if asked, into the checkpoint.

A grid file (`rtdl tune --grid FILE`) is YAML with up to two sections, each a mapping of
ProposalConfig field -> list of candidate values (ties keep the first listed; the search
starts from `proposal_tuning.TUNING_START`'s value of a field where the list holds it):

    signal:      # stage 1, the evidence; omitted: SIGNAL_TUNING_GRID, {}: skipped
      error_weight: [0.0, 1.0]
    proposals:   # stage 2, the proposal settings; omitted: DEFAULT_TUNING_GRID
      min_frames: [2, 4]
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import yaml

from data.cache import FeatureCache
from data.config import from_dict, to_dict
from data.feature_settings import FeatureSettings
from data.metadata import load_metadata, records_for_split
from pipeline.checkpoint import load_checkpoint, update_checkpoint
from pipeline.dataset import cache_name
from pipeline.devices import resolve_device
from pipeline.inference import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAMES
from pipeline.metrics import PROTOCOLS
from pipeline.proposal_settings import write_proposals_yaml
from pipeline.proposal_tuning import (DEFAULT_TUNING_PASSES, DEFAULT_TUNING_VIDEOS, describe_tuning,
                                     tune_model)
from pipeline.proposals import ProposalConfig

log = logging.getLogger(__name__)

GRID_SECTIONS = ("signal", "proposals")


def _grid_values(name: str, values: Any, where: str) -> list:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{where}.{name}: expected a non-empty list of candidate values, got {values!r}")
    # each candidate goes through the config loader, so YAML lists become tuples and types are checked
    return [getattr(from_dict(ProposalConfig, {name: value}, where), name) for value in values]


def load_grid(path: str | Path | None) -> tuple[dict | None, dict | None]:
    """(signal grid, proposal grid) from a grid file; None for a section left out (the
    defaults apply). Unknown sections and fields are errors naming the file."""
    if path is None:
        return None, None
    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(f"{path}: expected a mapping with section(s) {list(GRID_SECTIONS)}")
    unknown = sorted(set(mapping) - set(GRID_SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; a grid file has {list(GRID_SECTIONS)}, "
                         f"each a mapping of ProposalConfig field -> candidate values")
    grids = []
    for section in GRID_SECTIONS:
        if section not in mapping:
            grids.append(None)
            continue
        grid = mapping[section] or {}
        if not isinstance(grid, Mapping):
            raise ValueError(f"{path}: section {section!r} must map field names to lists of values")
        grids.append({name: _grid_values(name, values, f"{path}: {section}")
                      for name, values in grid.items()})
    if grids[1] == {}:
        raise ValueError(f"{path}: section 'proposals' is empty; leave it out for the default grid")
    return grids[0], grids[1]


def tune_checkpoint(cache_path, checkpoint_path, metadata_path, split: str = "dev", *,
                    grid_path: str | Path | None = None, protocol: str = "rtdeeploc",
                    out_path: str | Path | None = None, write_checkpoint: bool = False,
                    device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                    max_frames: int = DEFAULT_MAX_FRAMES,
                    max_videos: int = DEFAULT_TUNING_VIDEOS, workers: int | None = None,
                    passes: int = DEFAULT_TUNING_PASSES) -> dict:
    """`rtdl tune`: choose proposal settings for a checkpoint on a metadata split, write them
    as YAML (default: proposals.yaml beside the checkpoint) and, with `write_checkpoint`,
    into the checkpoint itself. `workers`: processes scoring the candidates (None: one per
    core when the search is large); `passes`: of the two-stage search, at most
    (`proposal_tuning.coordinate_search`). Returns {"config", "tuning", "yaml", "checkpoint_updated"}."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    signal_grid, grid = load_grid(grid_path)  # a bad grid fails before the model runs
    if "test" in split:
        log.warning("tuning on split %r: settings chosen on a test split make its metrics "
                    "optimistic; tune on a validation split (dev / val)", split)
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(checkpoint_path, map_location=torch_device)
    cache = FeatureCache(cache_path)
    FeatureSettings(checkpoint.feature_settings).check_compatible(
        FeatureSettings(cache.settings), label=f"the checkpoint {checkpoint_path}", other_label=cache_name(cache))
    records = records_for_split(load_metadata(metadata_path), split)
    missing = [r.file for r in records if r.file not in cache]
    if missing:
        raise ValueError(f"{cache_name(cache)}: {len(missing)} video(s) of split {split!r} are not in "
                         f"the feature cache (first: {missing[0]!r}); tuning needs all of them")
    config, record = tune_model(checkpoint.model, cache, records, split=split, protocol=protocol,
                                signal_grid=signal_grid, grid=grid, device=torch_device,
                                batch_size=batch_size, max_frames=max_frames, max_videos=max_videos,
                                workers=workers, passes=passes)
    record["checkpoint_epoch"] = checkpoint.epoch
    out_path = Path(out_path) if out_path else Path(checkpoint_path).with_name("proposals.yaml")
    write_proposals_yaml(config, out_path, [f"proposal settings for {checkpoint_path} "
                                            f"(epoch {checkpoint.epoch})", *describe_tuning(record)])
    if write_checkpoint:
        update_checkpoint(checkpoint_path, proposal_config=to_dict(config), proposal_tuning=record)
        log.info("stored the tuned proposal settings in %s", checkpoint_path)
    return {"config": config, "tuning": record, "yaml": out_path, "checkpoint_updated": write_checkpoint}


