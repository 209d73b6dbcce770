"""Run a block of torch CPU ops on a fixed number of intra-op threads, then restore.

The weight-free extractors (`lowlevel`, `logmel`) run many small, memory-bound ops. With
torch's default of one OpenMP thread per core, each op's threads wait for each other, and
on cores shared with the decoding thread or other jobs that waiting costs more than the
second thread gains: on 2 busy cores, 224x224 frames ran at 87 frames/s with 2 threads and
384 with 1, and a 1-second clip's log-mel took 80 ms with 2 threads and a few ms with 1.
`benchmarks/bench_weightfree.py` measures the whole extraction against decoding.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def intra_op_threads(threads: int | None, device: torch.device) -> Iterator[None]:
    """Within the block torch uses `threads` CPU threads (None or a GPU device: unchanged)."""
    if threads is None or device.type != "cpu" or threads == torch.get_num_threads():
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
