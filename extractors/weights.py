"""Helpers shared by the backbones for identifying and locating weights."""
from __future__ import annotations

import hashlib
from pathlib import Path


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be found or downloaded; the message says how to supply them."""


def sha256_prefix(path: str | Path, n_hex: int = 16) -> str:
    """First `n_hex` hex digits of a file's sha256 (enough to tell weight files apart)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:n_hex]


def list_keys(keys, limit: int = 12) -> str:
    """`a, b, c ... (+N more)`: a readable listing of state-dict keys for error messages."""
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")
