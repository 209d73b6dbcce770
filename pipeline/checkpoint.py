"""Self-describing checkpoints: everything `predict`, `evaluate` and `localize` need.

A checkpoint is one `torch.save`d dict of plain types and tensors only, so it loads with
`torch.load(..., weights_only=True)`:

    format            "rtdl-checkpoint-v1" (checked on load)
    version           rtdl package version that wrote it
    model_state       state_dict of the *unwrapped* model (no DDP "module." prefix)
    run_config        the full RunConfig as plain types (model + train sections)
    labels            the label map, LABELS order (index -> name)
    visual_dim, audio_dim   feature dimensions the model was built for
    feature_settings  the feature cache's extractor settings (FeatureCache.settings)
    epoch             epochs completed when it was written (1-based count)
    metrics           that epoch's metrics (plain floats)
    train_state       optional: optimizer state, RNG states, best-so-far (last.pt only)
    proposal_config   optional: ProposalConfig fields chosen on the validation split for
                      these weights (`rtdl train` at its end, `rtdl tune --write-checkpoint`)
    proposal_tuning   optional: how they were chosen (split, protocol, objective, grids, scores)

Writes go to a temporary file in the same folder, are fsync'ed, then renamed over the
target (`os.replace` is atomic on POSIX), so a kill mid-write leaves the old checkpoint.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from data.atomic import write_atomic
from data.config import from_dict, to_dict
from data.labels import LABELS
from data.version import __version__

FORMAT = "rtdl-checkpoint-v1"
# TrainConfig fields that no longer exist (the validation accuracy pass); checkpoints that
# still record them load, the values are unused
RETIRED_TRAIN_FIELDS = ("eval_window", "eval_batch_size")
# model settings added later whose new default builds different weights: what a checkpoint
# written before each field existed was trained with
MODEL_FIELDS_BEFORE_THEY_EXISTED = {"visual_deviation_view": "deviation_windows",
                                    "audio_deviation_view": "deviation_windows",
                                    "av_sync_agreement": "product"}


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module  # RTDeepLoc in eval mode, on map_location
    run_config: Any  # pipeline.train_config.RunConfig
    model_config: Any  # model.config.ModelConfig (= run_config.model)
    labels: tuple[str, ...]  # class names, index order of the model's class outputs
    visual_dim: int
    audio_dim: int
    feature_settings: dict  # extractor settings of the cache the model was trained on
    version: str  # rtdl version that wrote the checkpoint
    epoch: int
    metrics: dict
    train_state: dict | None = None  # optimizer / RNG / best-so-far, for --resume
    proposal_config: dict | None = None  # tuned ProposalConfig fields (plain types), if any
    proposal_tuning: dict | None = None  # how proposal_config was chosen, if any


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel / torch.compile."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile wrapper
            model = model._orig_mod
        else:
            return model


def plain(value: Any) -> Any:
    """Recursively convert to types `weights_only=True` accepts (numpy -> python, tuples -> lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(to_dict(value))
    if isinstance(value, Mapping):
        # int keys stay ints: optimizer state is keyed by parameter index
        return {(k if isinstance(k, (str, int)) else str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint: {value!r}")


def save_checkpoint(path: str | Path, model: torch.nn.Module, run_config: Any, *,
                    epoch: int, metrics: Mapping[str, Any], feature_settings: Mapping[str, Any],
                    visual_dim: int, audio_dim: int,
                    train_state: Mapping[str, Any] | None = None,
                    proposal_config: Mapping[str, Any] | None = None,
                    proposal_tuning: Mapping[str, Any] | None = None) -> Path:
    """Atomically write a checkpoint of `model` (unwrapped first) to `path`."""
    bare = unwrap_model(model)
    payload = {
        "format": FORMAT,
        "version": __version__,
        # clone to CPU so a GPU run writes a checkpoint any machine can read
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in bare.state_dict().items()},
        "run_config": plain(to_dict(run_config)),
        "labels": list(LABELS),
        "visual_dim": int(visual_dim),
        "audio_dim": int(audio_dim),
        "feature_settings": plain(dict(feature_settings)),
        "epoch": int(epoch),
        "metrics": plain(dict(metrics)),
    }
    if train_state is not None:
        payload["train_state"] = plain(dict(train_state))
    if proposal_config is not None:
        payload["proposal_config"] = plain(dict(proposal_config))
        payload["proposal_tuning"] = plain(dict(proposal_tuning or {}))
    return save_payload(path, payload)


# fields a finished checkpoint may gain later without new weights
UPDATABLE_FIELDS = ("proposal_config", "proposal_tuning")


def update_checkpoint(path: str | Path, **fields: Any) -> Path:
    """Atomically rewrite checkpoint `path` with `fields` (of UPDATABLE_FIELDS) replaced;
    weights and everything else stay as they are."""
    unknown = sorted(set(fields) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ValueError(f"update_checkpoint: field(s) {unknown} cannot be changed; "
                         f"updatable: {list(UPDATABLE_FIELDS)}")
    payload = read_checkpoint_payload(path)
    payload.update({key: plain(value) for key, value in fields.items()})
    return save_payload(path, payload)


def save_payload(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write a checkpoint dict to `path` through a fsync'ed temporary and an atomic rename."""
    return write_atomic(path, lambda handle: torch.save(payload, handle), durable=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Delete `.<name>.tmp-<pid>` files that a killed `save_checkpoint` left in `folder`.

    A file whose writer is still running is kept. Returns the paths removed.
    """
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.tmp-*"):
            pid = tmp.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and _process_alive(int(pid)):
                continue
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _load_failure(path: Path, err: Exception) -> str:
    """Why torch.load refused `path`, in one line. torch's own message for a refused pickle
    advises `weights_only=False`, which is wrong for random bytes and runs the code of a
    hostile file, so it is not passed on."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    text = str(err)
    if "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            return (f"it holds a pickled Python object ({found.group(1)}) besides tensors and "
                    f"plain types, which rtdl does not load because unpickling can run code")
        return "it is not a torch.save file (the bytes do not unpickle as tensors and plain types)"
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
    if is_zip or "PytorchStreamReader" in text:
        return "it is not a complete torch.save file (truncated or damaged)"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:300]


def read_checkpoint_payload(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict, checked for the format tag and required fields."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, pickle from elsewhere, ...
        raise ValueError(f"{path}: not a loadable rtdl checkpoint: {_load_failure(path, err)}") \
            from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: field 'format' is {found!r}, expected {FORMAT!r}")
    required = ("model_state", "run_config", "labels", "visual_dim", "audio_dim",
                "feature_settings", "version", "epoch", "metrics")
    missing = [key for key in required if key not in payload]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks field(s) {missing}")
    if tuple(payload["labels"]) != LABELS:
        raise ValueError(f"{path}: field 'labels' is {payload['labels']}, this rtdl uses {list(LABELS)}")
    return payload


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model from the checkpoint alone and return it in eval mode."""
    from model.rtdeeploc import build_model
    from pipeline.train_config import RunConfig

    payload = read_checkpoint_payload(path, map_location)
    stored = dict(payload["run_config"])
    stored["train"] = {k: v for k, v in stored.get("train", {}).items() if k not in RETIRED_TRAIN_FIELDS}
    stored["model"] = {**MODEL_FIELDS_BEFORE_THEY_EXISTED, **stored.get("model", {})}
    run_config = from_dict(RunConfig, stored, f"{path}: run_config")
    model = build_model(run_config.model, payload["visual_dim"], payload["audio_dim"])
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise ValueError(f"{path}: field 'model_state' does not fit the model its run_config "
                         f"describes: {err}") from err
    model.to(map_location).eval()
    return LoadedCheckpoint(
        model=model, run_config=run_config, model_config=run_config.model,
        labels=tuple(payload["labels"]), visual_dim=int(payload["visual_dim"]),
        audio_dim=int(payload["audio_dim"]), feature_settings=dict(payload["feature_settings"]),
        version=str(payload["version"]), epoch=int(payload["epoch"]),
        metrics=dict(payload["metrics"]), train_state=payload.get("train_state"),
        proposal_config=payload.get("proposal_config"),
        proposal_tuning=payload.get("proposal_tuning"))
