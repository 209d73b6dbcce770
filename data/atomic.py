"""Writing a file so that readers see the old version or the new one, never half of one.

The content goes to `.<name>.tmp-<pid>` beside the target and is renamed over it
(`os.replace` is atomic on POSIX). `durable=True` also fsyncs the file before the rename and
the folder after it, so the new version survives a power cut (checkpoints, stamps that say
work is done). A killed writer leaves only its temporary, which `remove_stale_temporaries`
(pipeline/checkpoint.py) and the demo's folder rules recognise by that name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def temporary_path(path: Path) -> Path:
    """Where the content of `path` is written before the rename."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_atomic(path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], None], *,
                 durable: bool = False) -> Path:
    """Write `content` (text, bytes, or a function that writes into a binary handle) to `path`
    through a temporary and a rename; the parent folder is created when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself
            finally:
                os.close(folder)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path

