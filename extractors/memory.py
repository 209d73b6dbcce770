"""Give memory freed by a finished model pass back to the operating system.

Why: glibc's malloc keeps freed blocks in its heaps, and it raises its mmap threshold each
time a large block is freed, so after a few passes even 100 MB activation buffers come from
the heap. A wav2vec 2.0 window and a ResNet-50 batch want differently shaped buffers; left
to malloc, the holes of one do not fit the other, and the process's resident memory climbs
with every window of a long clip instead of staying at one pass's peak (measured: peak RSS
of 20 s windows over a 120 s wave +258 MiB vs +125 MiB for a single 20 s pass).
`malloc_trim(0)` returns the free pages of every arena. It is called between passes (each
wav2vec window, each video), never between visual batches: the next batch would only
fault the same pages back in.

On non-glibc systems (macOS, musl) this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS (glibc `malloc_trim(0)`); True if anything ran."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
