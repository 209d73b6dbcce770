"""Frozen-dataclass configuration: YAML in, unknown keys rejected, `--set key=value` overrides.

Every configurable part of rtdl (model, training, proposals, extraction) is a frozen
dataclass. This module turns plain mappings into those dataclasses and back, so that
checkpoints can store configs as plain types and rebuild them exactly.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """Plain-type dict of a (possibly nested) config dataclass; tuples become lists."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(cfg)


def from_dict(cls: type[T], mapping: Mapping[str, Any] | None, source: str = "config") -> T:
    """Build dataclass `cls` from `mapping`; unknown keys raise ValueError naming `source`."""
    mapping = dict(mapping or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; "
                         f"known keys: {sorted(names)}")
    kwargs = {}
    for key, value in mapping.items():
        kwargs[key] = _coerce(hints[key], value, f"{source}.{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, where) for v in value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # PyYAML reads `1e-5` (no dot) as a string; accept it where a float is expected
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where}: expected float, got {value!r}") from None
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a YAML file into dataclass `cls` (unknown keys rejected, naming the file)."""
    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{path}: the top level must be a mapping of keys to values")
    return from_dict(cls, mapping, str(path))


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Return a copy of `cfg` with `key=value` (dotted keys for nested configs) applied.

    Values are parsed as YAML scalars, so `lr=1e-4`, `use_aicl=false`, `ap_iou=[0.5,0.75]` work.
    """
    mapping = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        node = mapping
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a nested config")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"--set {item!r}: unknown key {key!r}; known: {sorted(node)}")
        node[parts[-1]] = yaml.safe_load(raw)
    return from_dict(type(cfg), mapping, "--set")
