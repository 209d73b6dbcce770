"""Does the staged tuning search stop in a worse optimum than it could reach? Dev only.

`proposal_tuning.coordinate_search` chooses the evidence first, under the default proposal
settings, and the proposal settings from there; a later pass moves only to a strictly better
candidate. A kind of evidence that wins the first stage can so hold the whole search in its
corner (BENCHMARKS.md, "The valley of a run, and the largest cue"). For each trained run this
compares, on its dev split, the plain search (two passes, as `rtdl train` runs it) with a
multi-start one: the `--starts` best distinct evidence settings of the first stage each start
the proposal stage and then both stages again, and the best end point is kept (`--starts 0`
skips it). The plain search runs twice: from ProposalConfig's defaults (how `rtdl train`
searched before `proposal_tuning.TUNING_START`) and from `tuning_start` (how it searches
now). Prints each end point's objective (0.5 x avg AP + 0.5 x avg AR) and how long each
search took.

    python benchmarks/search_starts.py --metadata W/media/metadata.json --cache W/features.h5 \
        --runs W/runs/med-s0 W/runs/med-s1 --calibrate-evidence --starts 3
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHOWN = ("evidence", "routing", "error_weight", "valley_weight", "length_weight")


def best_distinct(results: list, count: int) -> list:
    """The `count` best distinct configs of one `grid_search`'s [(overrides, value), ...]."""
    from pipeline.proposals import ProposalConfig, effective_config

    starts: list = []
    for overrides, _ in sorted(results, key=lambda r: -r[1]):
        config = effective_config(dataclasses.replace(ProposalConfig(), **overrides))
        if config not in starts:
            starts.append(config)
        if len(starts) == count:
            break
    return starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="refit the checkpoints' frame evidence on the training split first")
    parser.add_argument("--starts", type=int, default=3, help="0: the plain searches only")
    args = parser.parse_args()

    import torch

    from localization_bench import open_set, split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.metrics import ChallengeScore
    from pipeline.proposal_tuning import (DEFAULT_TUNING_GRID, SIGNAL_TUNING_GRID,
                                          coordinate_search, tuning_start, without_missing_evidence)
    from pipeline.proposals import ProposalConfig, grid_search
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, by_split, _ = open_set(args.metadata, args.cache)
    for run in args.runs:
        model = load_checkpoint(run / "best.pt").model
        if args.calibrate_evidence:
            calibrate_frame_evidence(model, cache, [r for r in records if r.split == "train"], "cpu")
        _, scores = split_scores(model, cache, {"dev": by_split["dev"]})
        dev = scores["dev"]
        objective = ChallengeScore(tuple(by_split["dev"]), "rtdeeploc")
        signal_grid = without_missing_evidence(SIGNAL_TUNING_GRID, dev)

        for name, base in (("from the defaults", ProposalConfig()),
                           ("from TUNING_START", tuning_start(DEFAULT_TUNING_GRID))):
            began = time.perf_counter()
            best, tried = coordinate_search(dev, objective, [signal_grid, DEFAULT_TUNING_GRID], base,
                                            passes=2)
            print(f"{run.name} plain search {name}: {100 * max(v for _, v in tried):.2f} "
                  f"({time.perf_counter() - began:.0f} s) {({k: getattr(best, k) for k in SHOWN})}",
                  flush=True)
        if args.starts < 1:
            continue

        began = time.perf_counter()
        _, first = grid_search(dev, objective, signal_grid, ProposalConfig(), workers=None)
        ends = []
        for start in best_distinct(first, args.starts):
            end, tried = coordinate_search(dev, objective, [DEFAULT_TUNING_GRID, signal_grid], start,
                                           passes=2)
            ends.append((max(v for _, v in tried), end))
            print(f"{run.name}   from {({k: getattr(start, k) for k in SHOWN[:3]})}: "
                  f"{100 * ends[-1][0]:.2f}", flush=True)
        value, end = max(ends, key=lambda e: e[0])
        print(f"{run.name} {args.starts} starts: {100 * value:.2f} ({time.perf_counter() - began:.0f} s) "
              f"{({k: getattr(end, k) for k in SHOWN})}", flush=True)


if __name__ == "__main__":
    main()
