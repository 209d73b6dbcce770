"""Scoring proposal-setting candidates on several CPU cores (`proposals.grid_search`).

Tuning re-proposes and re-evaluates every validation video for each of several hundred
candidates, in numpy, one core at a time: about 2 ms per video and candidate
(BENCHMARKS.md, "What tuning costs"), so 90 s for the demo's 48 dev videos and half an
hour for 1,000 videos. The candidates are independent, so they are split over worker
processes.

Choices:
- Processes, not threads: the work is many small numpy calls, which hold the GIL.
- `spawn`, not `fork`: the parent has torch's thread pools running, and forking a
  multi-threaded process can deadlock the child; spawn also behaves the same on every OS.
  A worker imports only numpy and the proposal and metric modules (about 0.3 s), and gets
  the scores and the objective once, when it starts, not with every task.
- At most `MAX_AUTO_WORKERS` unless asked for more: every worker holds its own copy of
  the scores and of numpy (about 50 MB before the scores), which on a 128-core node would
  add up to gigabytes for little more speed.
- Small jobs stay in the calling process (`SERIAL_BELOW` video-candidates, about 20 s of
  work): starting workers would cost more than it saves, and most tests are small.
- The result is the same list of values in the same order as the serial loop: workers
  only compute, the caller picks the best (ties to the first candidate, as before).
- Where workers cannot start or die (no process creation in a sandbox, a worker killed
  for memory), the search says so and scores in the calling process: tuning ends
  `rtdl train`, and a run of hours should not fail for the want of a faster way.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Mapping, Sequence

# proposals imports this module inside grid_search only, so this import is not circular
from pipeline.proposals import all_proposals

log = logging.getLogger(__name__)

SERIAL_BELOW = 10_000  # videos x candidates under which the calling process scores alone
MAX_AUTO_WORKERS = 16  # workers chosen without being asked, at most (module docstring)
TASKS_PER_WORKER = 4  # chunks per worker, so a worker with slower candidates does not hold the rest up

# set once per worker process by `_start_worker`
_videos: Mapping | None = None
_evaluate: Callable[[dict], float] | None = None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(workers: int | None, videos: int, candidates: int) -> int:
    """Processes to score `candidates` on `videos` with: `workers` when given (>= 1), else one
    per available core up to MAX_AUTO_WORKERS, and 1 for small jobs (under SERIAL_BELOW
    video-candidates)."""
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers: expected a number >= 1 (or None: one per core), got {workers}")
        return min(workers, max(1, candidates))
    if videos * candidates < SERIAL_BELOW:
        return 1
    return min(available_cores(), MAX_AUTO_WORKERS, max(1, candidates))


def _start_worker(videos: Mapping, evaluate: Callable[[dict], float]) -> None:
    global _videos, _evaluate
    _videos, _evaluate = videos, evaluate


def _score(videos: Mapping, evaluate: Callable[[dict], float], configs: Sequence) -> list[float]:
    return [float(evaluate(all_proposals(videos, cfg))) for cfg in configs]


def _score_chunk(configs: Sequence) -> list[float]:
    return _score(_videos, _evaluate, configs)


def score_candidates(videos: Mapping, evaluate: Callable[[dict], float], configs: Sequence,
                     workers: int = 1) -> list[float]:
    """evaluate(all_proposals(videos, cfg)) for every cfg of `configs`, in order, on `workers`
    processes (1: here). With workers > 1, `evaluate` must pickle (a module-level function
    or an instance such as `metrics.ChallengeScore`, not a closure)."""
    configs = list(configs)
    if workers > 1 and len(configs) > 1:
        size = max(1, -(-len(configs) // (workers * TASKS_PER_WORKER)))  # ceiling division
        chunks = [configs[i:i + size] for i in range(0, len(configs), size)]
        try:
            with ProcessPoolExecutor(max_workers=workers,
                                     mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_start_worker,
                                     initargs=(dict(videos), evaluate)) as pool:
                return [value for chunk in pool.map(_score_chunk, chunks) for value in chunk]
        except (BrokenProcessPool, OSError) as error:
            log.warning("scoring %d proposal-setting candidates on %d worker processes failed "
                        "(%s: %s); scoring them in this process instead", len(configs), workers,
                        type(error).__name__, error)
    return _score(videos, evaluate, configs)
