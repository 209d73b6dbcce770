"""`rtdl info PATH`: what a file rtdl wrote holds, without Python.

Recognised: a feature cache (an .h5 file, its shards or a glob of them, unmerged parts,
its failures report beside it), a checkpoint (.pt), a run folder (`rtdl train --out`),
a predictions file (`rtdl predict`'s `{file: [[score, start, end], ...]}`), a
probabilities file (`<stem>_probs.json`), a `rtdl localize` output, a failures report
(`*.failures.jsonl`) and a proposal-settings YAML.

`describe(path)` returns plain types (what `--json` prints), with a "kind" key;
`format_info` renders them as indented `key: value` lines.
"""
from __future__ import annotations

import glob
import json
import math
from pathlib import Path
from typing import Any

from data.labels import LABELS

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
FAILURES_SUFFIX = ".failures.jsonl"


def _size(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())


def human_size(n_bytes: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return ""


def _head(path: Path, n: int = 8) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


# ---------------------------------------------------------------- feature caches


def _failure_reports(files) -> list[Path]:
    reports = []
    for file in files:
        file = Path(file)
        if file.parent.name.endswith(".parts"):  # a part's report sits beside its cache
            file = file.parent.with_name(file.parent.name[: -len(".parts")])
        report = file.with_name(file.name + FAILURES_SUFFIX)
        if report.is_file() and report not in reports:
            reports.append(report)
    return reports


def describe_failures(path: Path) -> dict:
    """Entries of a failures report {file, path, reason}, counted and the first few shown."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {number} is not JSON ({err.msg})") from None
    return {"kind": "failures report", "path": str(path), "failed_videos": len(entries),
            "first": [f"{e.get('file')}: {e.get('reason')}" for e in entries[:5]]}


def describe_cache(source: str) -> dict:
    """Videos, frames, hours, dims, dtype, extractor settings, files (shards, unmerged
    parts), failures reports and size of a feature cache (any form FeatureCache reads)."""
    import h5py

    from data.cache import FeatureCache, _SHARD_RE
    from data.feature_settings import FeatureSettings, backbone_source

    cache = FeatureCache(source)
    frames, seconds, without_audio, fps = 0, 0.0, 0, set()
    for key in cache.keys():
        info = cache.info(key)
        frames += info["n_frames"]
        seconds += info["duration"]
        without_audio += not info["has_audio"]
        fps.add(round(info["fps"], 3))
    with h5py.File(cache.files[0], "r") as handle:
        attrs = {k: handle.attrs.get(k) for k in ("storage_dtype", "rtdl_version", "format_version")}
    parts = [str(f) for f in cache.files if f.parent.name.endswith(".parts")]
    shards = [str(f) for f in cache.files if _SHARD_RE.search(f.name)]
    reports = [describe_failures(r) for r in _failure_reports(cache.files)]
    cache.close()
    settings = cache.settings
    return {
        "kind": "feature cache",
        "path": str(source),
        "files": [str(f) for f in cache.files],
        "shards": shards,
        "unmerged_parts": parts,
        "size_bytes": _size(cache.files),
        "size": human_size(_size(cache.files)),
        "videos": len(cache),
        "frames": frames,
        "hours": round(seconds / 3600, 4),
        "fps": sorted(fps),
        "videos_without_audio": without_audio,
        "visual_dim": cache.visual_dim,
        "audio_dim": cache.audio_dim,
        "dtype": str(attrs["storage_dtype"]),
        "extractors": FeatureSettings(settings).describe(),
        "pretrained": {part: backbone_source(settings.get(part, {})) == "pretrained"
                       for part in ("visual", "audio")},
        "settings": settings,
        "written_by": f"rtdl {attrs['rtdl_version']}, cache format {attrs['format_version']}",
        "failures": [{"report": r["path"], "failed_videos": r["failed_videos"], "first": r["first"]}
                     for r in reports],
    }


# ---------------------------------------------------------------- checkpoints and runs


def describe_checkpoint(path: Path) -> dict:
    """Model config, feature settings, epoch, validation metrics, proposal settings and
    format of a checkpoint (read without building the model)."""
    import torch

    from data.feature_settings import FeatureSettings
    from pipeline.checkpoint import read_checkpoint_payload

    payload = read_checkpoint_payload(path)
    parameters = sum(v.numel() for v in payload["model_state"].values()
                     if isinstance(v, torch.Tensor) and v.is_floating_point())
    tuning = payload.get("proposal_tuning") or {}
    return {
        "kind": "checkpoint",
        "path": str(path),
        "size": human_size(path.stat().st_size),
        "format": payload["format"],
        "written_by": f"rtdl {payload['version']}",
        "epoch": payload["epoch"],
        "metrics": {k: v for k, v in payload["metrics"].items() if k.startswith("val_")},
        "resumable": "train_state" in payload,
        "parameters": int(parameters),
        "labels": list(payload["labels"]),
        "visual_dim": payload["visual_dim"],
        "audio_dim": payload["audio_dim"],
        "model": payload["run_config"].get("model", {}),
        "train": payload["run_config"].get("train", {}),
        "extractors": FeatureSettings(payload["feature_settings"]).describe(),
        "feature_settings": payload["feature_settings"],
        "proposal_config": payload.get("proposal_config"),
        "proposal_tuning": ({k: tuning[k] for k in ("tuned_by", "split", "videos", "protocol",
                                                    "objective", "best_objective", "default_objective",
                                                    "signal_grid", "grid") if k in tuning}
                            if tuning else None),
    }


def describe_run(folder: Path) -> dict:
    """Epochs, best epoch and its metrics, and the files of a `rtdl train` run folder."""
    rows = []
    metrics_path = folder / "metrics.jsonl"
    if metrics_path.is_file():
        for line in metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill; the trainer repairs it on resume
    best_epoch = rows[-1].get("best_epoch") if rows else None
    best_row = next((r for r in rows if r.get("epoch") == best_epoch), {})
    checkpoints = {}
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            try:
                described = describe_checkpoint(folder / name)
                checkpoints[name] = {"epoch": described["epoch"], "size": described["size"],
                                     "proposal_settings": "tuned" if described["proposal_config"]
                                     else "none (defaults)"}
            except ValueError as err:
                checkpoints[name] = {"error": str(err)}
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    return {
        "kind": "run folder",
        "path": str(folder),
        "epochs": len(rows),
        "best_epoch": best_epoch,
        "best_metrics": {k: v for k, v in best_row.items() if k.startswith("val_")},
        "last_metrics": {k: v for k, v in (rows[-1] if rows else {}).items()
                         if k.startswith(("val_", "train_total"))},
        "checkpoints": checkpoints,
        "files": files,
    }


# ---------------------------------------------------------------- JSON outputs


def _describe_predictions(path: Path, data: dict) -> dict:
    counts = [len(v) for v in data.values()]
    scores = [float(p[0]) for v in data.values() for p in v]
    ends = [float(p[2]) for v in data.values() for p in v]
    return {"kind": "predictions", "path": str(path), "size": human_size(path.stat().st_size),
            "videos": len(data), "proposals": sum(counts),
            "videos_without_proposals": sum(c == 0 for c in counts),
            "proposals_per_video_max": max(counts, default=0),
            "score_range": [min(scores), max(scores)] if scores else None,
            "latest_end_s": max(ends) if ends else None}


def _describe_probs(path: Path, data: dict) -> dict:
    rows = list(data.values())
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(len(LABELS))] if rows else []
    argmax = [max(range(len(r)), key=lambda i: r[i]) for r in rows]
    return {"kind": "video probabilities", "path": str(path), "videos": len(rows),
            "mean_probability": dict(zip(LABELS, mean)),
            "predicted_labels": {name: argmax.count(i) for i, name in enumerate(LABELS)}}


def _describe_localize(path: Path, data: dict) -> dict:
    videos = data.get("videos", [])
    return {"kind": "localize output", "path": str(path), "checkpoint": data.get("checkpoint"),
            "written_by": f"rtdl {data.get('rtdl_version')}", "proposal_source": data.get("proposal_source"),
            "videos": [{"file": v.get("file"), "label": v.get("label"),
                        "segments": len(v.get("segments", [])),
                        "best": (v["segments"][0] if v.get("segments") else None)} for v in videos]}


def _is_list_of(value, length: int | None) -> bool:
    return isinstance(value, list) and (length is None or len(value) == length)


def describe_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("videos"), list) and "checkpoint" in data:
        return _describe_localize(path, data)
    if isinstance(data, dict) and "ap" in data and "ar" in data:
        return {"kind": "metrics", "path": str(path), **data}
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        values = list(data.values())
        if values and all(_is_list_of(v, len(LABELS)) and all(isinstance(x, (int, float)) for x in v)
                          for v in values):
            return _describe_probs(path, data)
        if all(all(_is_list_of(p, 3) for p in v) for v in values):
            return _describe_predictions(path, data)
    raise ValueError(f"{path}: a JSON file rtdl does not recognise (expected predictions "
                     f"{{file: [[score, start, end], ...]}}, probabilities, metrics or a localize output)")


# ---------------------------------------------------------------- dispatch


def describe(path: str) -> dict:
    """What `path` is and holds (see the module docstring); ValueError when rtdl did not write it."""
    if glob.has_magic(path):
        return describe_cache(path)
    target = Path(path)
    if target.is_dir():
        if target.name.endswith(".parts"):  # the unmerged parts of a cache
            return describe_cache(str(target.with_name(target.name[: -len(".parts")])))
        if any((target / name).exists() for name in ("metrics.jsonl", "last.pt", "best.pt")):
            return describe_run(target)
        raise ValueError(f"{target}: a folder without metrics.jsonl, last.pt or best.pt is not a run folder")
    if not target.exists():
        return describe_cache(path)  # shards or unmerged parts of a cache not yet merged
    if target.name.endswith(FAILURES_SUFFIX):
        return describe_failures(target)
    head = _head(target)
    if head.startswith(_HDF5_MAGIC):
        return describe_cache(path)
    if head.startswith(_ZIP_MAGIC) or target.suffix == ".pt":
        return describe_checkpoint(target)
    if target.suffix == ".json":
        return describe_json(target)
    if target.suffix in (".yaml", ".yml"):
        from data.config import to_dict
        from pipeline.proposal_settings import load_proposal_config

        comments = [line[2:] for line in target.read_text().splitlines() if line.startswith("# ")]
        return {"kind": "proposal settings", "path": str(target), "notes": comments,
                "settings": to_dict(load_proposal_config(target))}
    raise ValueError(f"{target}: not a file rtdl writes (feature cache, checkpoint, run folder, "
                     f"predictions, failures report or proposal settings)")


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return str(value)


def format_info(info: Any, indent: int = 0) -> str:
    """Indented `key: value` lines; nested mappings and lists of mappings indent further."""
    pad = "  " * indent
    lines = []
    for key, value in info.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines.append(format_info(value, indent + 1))
        elif isinstance(value, list) and value and isinstance(value[0], (dict, list)) \
                or isinstance(value, list) and len(value) > 6:
            lines.append(f"{pad}{key}: ({len(value)})")
            for item in value:
                if isinstance(item, dict):
                    first, *rest = format_info(item, indent + 2).splitlines()
                    lines.append(f"{pad}  - {first.strip()}")
                    lines.extend(rest)
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value) if value not in ({}, []) else '-'}")
    return "\n".join(lines)
