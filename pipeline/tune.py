"""Proposal settings a user never has to hand-tune: choosing them on a validation split,
storing them with the checkpoint, and deciding which settings `predict` / `localize` use.

- `tune_model` runs `pipeline.predict.tune_proposals` (two stages: evidence, then proposal
  settings) and returns the chosen ProposalConfig with a plain-type record of how it was
  chosen (split, protocol, objective, both grids, every candidate's score).
- `rtdl train` calls it once its last epoch is done (`tune_run_checkpoints`) and stores the
  result in best.pt and last.pt; `rtdl tune` redoes it (`tune_checkpoint`), optionally
  with another grid, split or protocol.
- `resolve_proposal_config` decides which settings a prediction uses, in this order: a
  `--proposals` file, else the checkpoint's tuned settings, else the ProposalConfig
  defaults; `--set` overrides apply on top of whichever was chosen. It also says where the
  settings came from, in words, for the outputs to record.

A grid file (`rtdl tune --grid FILE`) is YAML with up to two sections, each a mapping of
ProposalConfig field -> list of candidate values (list the current default first: ties
keep the first):

    signal:      # stage 1, the evidence; omitted: SIGNAL_TUNING_GRID, {}: skipped
      error_weight: [0.0, 1.0]
    proposals:   # stage 2, the proposal settings; omitted: DEFAULT_TUNING_GRID
      min_frames: [2, 4]
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from data.config import apply_overrides, from_dict, load_yaml, to_dict
from pipeline import __version__
from pipeline.proposals import ProposalConfig

log = logging.getLogger(__name__)

GRID_SECTIONS = ("signal", "proposals")


def objective_text(protocol: str) -> str:
    """The tuning objective in words (what `tune_on_scores` maximises)."""
    from pipeline.evaluate import PROTOCOLS

    chosen = PROTOCOLS[protocol]
    ap = ",".join(f"{v:g}" for v in chosen.ap_iou)
    ar = ",".join(str(v) for v in chosen.ar_n)
    return (f"0.5 * mean AP + 0.5 * mean AR ({protocol} protocol: AP at IoU {ap}, "
            f"AR@{ar} averaged over IoU {chosen.ar_iou[0]:g}-{chosen.ar_iou[-1]:g})")


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


def tune_model(model, cache, records: Sequence, *, split: str, protocol: str = "rtdeeploc",
               signal_grid: dict | None = None, grid: dict | None = None, device="cpu",
               batch_size: int | None = None, max_frames: int | None = None,
               tuned_by: str = "rtdl tune") -> tuple[ProposalConfig, dict]:
    """(chosen ProposalConfig, tuning record) for `model` on the validation `records`."""
    from pipeline.predict import (DEFAULT_BATCH_SIZE, DEFAULT_MAX_FRAMES, DEFAULT_TUNING_GRID,
                                  SIGNAL_TUNING_GRID, tune_proposals)

    records = list(records)
    if not any(r.fake_segments for r in records):
        raise ValueError(f"split {split!r} has no fake video: proposal settings cannot be "
                         f"judged on it (AP is undefined); choose a validation split with fakes")
    signal_grid = SIGNAL_TUNING_GRID if signal_grid is None else signal_grid
    grid = DEFAULT_TUNING_GRID if grid is None else grid
    best, tried = tune_proposals(model, cache, records, grid, protocol=protocol, device=device,
                                 signal_grid=signal_grid,
                                 batch_size=batch_size or DEFAULT_BATCH_SIZE,
                                 max_frames=DEFAULT_MAX_FRAMES if max_frames is None else max_frames)
    first_stage = math.prod(len(v) for v in signal_grid.values()) if signal_grid else 0
    final = [value for _, value in tried[first_stage:]]
    record = {
        "tuned_by": tuned_by,
        "rtdl_version": __version__,
        "split": split,
        "videos": len(records),
        "protocol": protocol,
        "objective": objective_text(protocol),
        "best_objective": max(final) if final else None,
        "default_objective": tried[0][1] if tried else None,  # the first candidate: the defaults
        "signal_grid": {k: list(v) for k, v in signal_grid.items()},
        "grid": {k: list(v) for k, v in grid.items()},
        "tried": [[overrides, value] for overrides, value in tried],
    }
    return best, record


def describe_tuning(record: Mapping[str, Any]) -> list[str]:
    """Lines saying how proposal settings were chosen (for the terminal and YAML comments)."""
    best, default = record.get("best_objective"), record.get("default_objective")
    score = (f"best {best:.4f} (defaults {default:.4f}) over {len(record.get('tried', []))} candidates"
             if best is not None and default is not None else "no candidate scored")
    return [f"tuned by {record.get('tuned_by', '?')} on split {record.get('split')!r} "
            f"({record.get('videos', '?')} videos): {score}",
            f"objective: {record.get('objective', '?')}",
            f"grid, stage 1 (evidence): {record.get('signal_grid', {}) or 'skipped'}",
            f"grid, stage 2 (proposals): {record.get('grid', {})}"]


def write_proposals_yaml(cfg: ProposalConfig, path: str | Path, header: Sequence[str] = ()) -> Path:
    """Write `cfg` as YAML `--proposals` reads back, `header` lines as comments above it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    comments = "".join(f"# {line}\n" for line in header)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(comments + yaml.safe_dump(to_dict(cfg), sort_keys=False))
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- which settings a prediction uses


def checkpoint_proposal_config(checkpoint, label: str) -> ProposalConfig | None:
    """The tuned settings a LoadedCheckpoint carries, or None."""
    stored = getattr(checkpoint, "proposal_config", None)
    if stored is None:
        return None
    return from_dict(ProposalConfig, stored, f"{label}: field 'proposal_config'")


def resolve_proposal_config(checkpoint, label: str, proposals_path: str | Path | None = None,
                            overrides: Sequence[str] = ()) -> tuple[ProposalConfig, str]:
    """(settings, where they came from): a --proposals file, else the checkpoint's tuned
    settings, else the defaults; `overrides` (`key=value`) on top of whichever."""
    if proposals_path is not None:
        base, source = load_yaml(ProposalConfig, proposals_path), f"file {proposals_path}"
    else:
        base = checkpoint_proposal_config(checkpoint, label)
        if base is not None:
            tuning = getattr(checkpoint, "proposal_tuning", None) or {}
            source = (f"checkpoint {label} (tuned on split {tuning.get('split', '?')!r}, "
                      f"{tuning.get('protocol', '?')} protocol)")
        else:
            base, source = ProposalConfig(), f"defaults (checkpoint {label} holds no tuned settings)"
    if overrides:
        base = apply_overrides(base, list(overrides))
        source += " with --set " + " ".join(overrides)
    return base, source


# ---------------------------------------------------------------- rtdl tune / the end of rtdl train


def tune_checkpoint(cache_path, checkpoint_path, metadata_path, split: str = "dev", *,
                    grid_path: str | Path | None = None, protocol: str = "rtdeeploc",
                    out_path: str | Path | None = None, write_checkpoint: bool = False,
                    device: str = "auto", batch_size: int | None = None,
                    max_frames: int | None = None) -> dict:
    """`rtdl tune`: choose proposal settings for a checkpoint on a metadata split, write them
    as YAML (default: proposals.yaml beside the checkpoint) and, with `write_checkpoint`,
    into the checkpoint itself. Returns {"config", "tuning", "yaml", "checkpoint_updated"}."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.checkpoint import load_checkpoint, update_checkpoint
    from pipeline.dataset import cache_name
    from pipeline.devices import resolve_device
    from pipeline.evaluate import PROTOCOLS
    from pipeline.predict import check_feature_settings

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    signal_grid, grid = load_grid(grid_path)  # a bad grid fails before the model runs
    if "test" in split:
        log.warning("tuning on split %r: settings chosen on a test split make its metrics "
                    "optimistic; tune on a validation split (dev / val)", split)
    torch_device = resolve_device(device)
    checkpoint = load_checkpoint(checkpoint_path, map_location=torch_device)
    cache = FeatureCache(cache_path)
    check_feature_settings(cache.settings, checkpoint.feature_settings, cache_name(cache), str(checkpoint_path))
    records = records_for_split(load_metadata(metadata_path), split)
    missing = [r.file for r in records if r.file not in cache]
    if missing:
        raise ValueError(f"{cache_name(cache)}: {len(missing)} video(s) of split {split!r} are not in "
                         f"the feature cache (first: {missing[0]!r}); tuning needs all of them")
    config, record = tune_model(checkpoint.model, cache, records, split=split, protocol=protocol,
                                signal_grid=signal_grid, grid=grid, device=torch_device,
                                batch_size=batch_size, max_frames=max_frames)
    record["checkpoint_epoch"] = checkpoint.epoch
    out_path = Path(out_path) if out_path else Path(checkpoint_path).with_name("proposals.yaml")
    write_proposals_yaml(config, out_path, [f"proposal settings for {checkpoint_path} "
                                            f"(epoch {checkpoint.epoch})", *describe_tuning(record)])
    if write_checkpoint:
        update_checkpoint(checkpoint_path, proposal_config=to_dict(config), proposal_tuning=record)
        log.info("stored the tuned proposal settings in %s", checkpoint_path)
    return {"config": config, "tuning": record, "yaml": out_path, "checkpoint_updated": write_checkpoint}


def tune_run_checkpoints(best_path: Path, last_path: Path, last_model, cache, val_records: Sequence,
                         val_split: str, device) -> tuple[ProposalConfig, dict]:
    """The last step of `rtdl train`: tune proposal settings on the validation split for
    best.pt's weights (and for last.pt's when they differ), store them in both checkpoints
    and write proposals.yaml beside them. Returns best.pt's (config, record)."""
    from pipeline.checkpoint import load_checkpoint, read_checkpoint_payload, update_checkpoint

    best = load_checkpoint(best_path, map_location=device)
    config, record = tune_model(best.model, cache, val_records, split=val_split, device=device,
                                tuned_by="rtdl train")
    record["checkpoint_epoch"] = best.epoch
    update_checkpoint(best_path, proposal_config=to_dict(config), proposal_tuning=record)
    last_epoch = int(read_checkpoint_payload(last_path)["epoch"])
    if last_epoch == best.epoch:  # the same weights: the same settings
        update_checkpoint(last_path, proposal_config=to_dict(config), proposal_tuning=record)
    else:
        last_config, last_record = tune_model(last_model, cache, val_records, split=val_split,
                                              device=device, tuned_by="rtdl train")
        last_record["checkpoint_epoch"] = last_epoch
        update_checkpoint(last_path, proposal_config=to_dict(last_config), proposal_tuning=last_record)
    write_proposals_yaml(config, best_path.with_name("proposals.yaml"),
                         [f"proposal settings for {best_path} (epoch {best.epoch}), also stored in it",
                          *describe_tuning(record)])
    return config, record


def config_fields(cfg: ProposalConfig) -> dict:
    """ProposalConfig as plain types (for JSON outputs)."""
    return to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
