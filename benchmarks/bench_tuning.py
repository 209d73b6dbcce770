"""What choosing proposal settings costs: the two-stage dev grid of `rtdl train`'s last step.

Scores one run's validation split once, then times `tune_on_scores` with the default
grids on samples of growing size (`tuning_sample`, as `rtdl train` draws them), and
reports seconds per candidate and video, so the cost on a large split can be read off.
With `--workers 1,2` each sample is tuned once per worker count (pipeline/grid_workers.py),
in the same run, and the choices are checked to be the same.

    python benchmarks/bench_tuning.py --metadata W/media/metadata.json --cache W/features.h5 \
        --run W/runs/full-s0 [--calibrate-evidence] [--sizes 50,100,200] [--workers 1,2]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="a run folder with best.pt")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--sizes", default="50,100,200", help="videos tuned on, comma-separated")
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="fit the run's frame evidence on the training split first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", default="1",
                        help="processes scoring the candidates, comma-separated: each is timed")
    args = parser.parse_args()

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from localization_bench import split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.proposal_tuning import DEFAULT_TUNING_GRID, tune_on_scores, tuning_sample
    from pipeline.proposals import ProposalConfig, effective_config
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(args.threads)
    print(describe_machine(), flush=True)
    cache = FeatureCache(args.cache)
    records = load_metadata(args.metadata)
    split = records_for_split(records, args.split)
    model = load_checkpoint(args.run / "best.pt").model
    if args.calibrate_evidence:
        calibrate_frame_evidence(model, cache, [r for r in records if r.split == "train"], "cpu")
    _, scores = split_scores(model, cache, {args.split: split})
    scores = scores[args.split]
    print("| videos | workers | candidates scored | seconds | ms per candidate and video | "
          "same choice as the first row |\n| --- | --- | --- | --- | --- | --- |")
    for size in map(int, args.sizes.split(",")):
        sample = tuning_sample(split, size)
        first_result = None
        for workers in map(int, args.workers.split(",")):
            started = time.perf_counter()
            result = tune_on_scores({r.file: scores[r.file] for r in sample}, sample,
                                    workers=workers)
            seconds = time.perf_counter() - started
            first_result = first_result or result
            tried = result[1]
            # candidates that give the same proposals are scored once (grid_search)
            second = math.prod(len(v) for v in DEFAULT_TUNING_GRID.values())
            first = {effective_config(dataclasses.replace(ProposalConfig(), **overrides))
                     for overrides, _ in tried[:-second]}
            scored = len(first) + second
            print(f"| {len(sample)} | {workers} | {scored} | {seconds:.1f} | "
                  f"{1000 * seconds / scored / len(sample):.2f} | {result == first_result} |",
                  flush=True)


if __name__ == "__main__":
    main()
