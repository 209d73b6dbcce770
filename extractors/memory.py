"""Give memory freed by a finished model pass back to the operating system.

Why: glibc's malloc keeps freed blocks in its heaps, and it raises its mmap threshold each
time a large block is freed, so after a few passes even 100 MB activation buffers come from
the heap. A wav2vec 2.0 window and a ResNet-50 batch want differently shaped buffers; left
to malloc, the holes of one do not fit the other, and the process's resident memory climbs
with every window of a long clip instead of staying at one pass's peak (BENCHMARKS.md,
"Returning freed memory").
`malloc_trim(0)` returns the free pages of every arena. It is called between passes (each
wav2vec window, each video), never between visual batches: the next batch would only
fault the same pages back in. For the same reason a caller may pass `min_growth_bytes`:
the trim then runs only when the resident set is at least that much above where it stood
just before the previous trim, so memory that every video uses again (decoder buffers,
the same-sized batches) stays mapped while growth beyond the previous peak is still given
back. Trimming after every short clip made the next clip fault its pages back in, and
measuring growth from just *after* the previous trim still trimmed most of the time
(BENCHMARKS.md, "Returning freed memory"). The amount malloc holds free (`mallinfo2`)
cannot decide it either: trimmed pages stay counted as free.

On non-glibc systems (macOS, musl) this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_resident_before_trim: list[int | None] = [None]  # RSS just before the last trim


def resident_bytes() -> int | None:
    """The process's resident set size in bytes (Linux /proc/self/statm), None elsewhere."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_freed_memory(min_growth_bytes: int = 0) -> bool:
    """Return freed heap pages to the OS (glibc `malloc_trim(0)`); True if a trim ran.

    With `min_growth_bytes` > 0 the trim is skipped while the resident set is less than
    that above its size just before the previous trim (the first call always trims).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    now, last = resident_bytes(), _resident_before_trim[0]
    if min_growth_bytes > 0 and now is not None and last is not None \
            and now - last < min_growth_bytes:
        return False
    trim(0)
    _resident_before_trim[0] = now
    return True
