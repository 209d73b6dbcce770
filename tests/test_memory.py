"""release_freed_memory: freed heap pages go back to the OS (glibc malloc_trim)."""
from pathlib import Path

import numpy as np
import pytest

from extractors.memory import _malloc_trim, release_freed_memory


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(_malloc_trim() is None or not Path("/proc/self/status").exists(),
                    reason="needs glibc and /proc")
def test_holes_in_the_heap_are_returned():
    # 64 KiB blocks come from the heap (below glibc's mmap threshold); freeing every other
    # one leaves holes that malloc's automatic top-of-heap trimming cannot give back
    blocks = [np.ones(64 * 1024 // 8) for _ in range(2400)]  # ~150 MiB, touched
    del blocks[::2]
    before = _rss_mib()
    assert release_freed_memory() is True
    after = _rss_mib()
    assert before - after > 40, (before, after)  # ~75 MiB of holes freed
    del blocks


@pytest.mark.skipif(_malloc_trim() is None or not Path("/proc/self/status").exists(),
                    reason="needs glibc and /proc")
def test_trim_waits_until_the_resident_set_outgrows_its_last_peak():
    release_freed_memory()  # the baseline: the resident set just before this trim
    blocks = [np.ones(64 * 1024 // 8) for _ in range(2400)]  # ~150 MiB, touched
    del blocks[::2]  # ~75 MiB of holes, ~150 MiB above the baseline
    before = _rss_mib()
    assert release_freed_memory(min_growth_bytes=1 << 40) is False  # far more than grew
    assert before - _rss_mib() < 10  # nothing given back
    assert release_freed_memory(min_growth_bytes=32 << 20) is True
    assert before - _rss_mib() > 40
    # the next trim compares with the peak before this one: refilling the holes is no growth
    refill = [np.ones(64 * 1024 // 8) for _ in range(1200)]
    assert release_freed_memory(min_growth_bytes=32 << 20) is False
    del blocks, refill
