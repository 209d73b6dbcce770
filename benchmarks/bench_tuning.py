"""What choosing proposal settings costs: the two-stage dev grid of `rtdl train`'s last step.

Scores one run's validation split once, then times `tune_on_scores` with the default
grids on samples of growing size (`tuning_sample`, as `rtdl train` draws them), and
reports seconds per candidate and video, so the cost on a large split can be read off.
With `--workers 1,2` each sample is tuned once per worker count (pipeline/grid_workers.py),
in the same run, and the choices are checked to be the same; with `--run-cache on,off` once
with and once without `proposals.run_features` remembering what it measured (one worker:
spawned workers would import the module's default).

    python benchmarks/bench_tuning.py --metadata W/media/metadata.json --cache W/features.h5 \
        --run W/runs/full-s0 [--calibrate-evidence] [--sizes 50,100,200] [--workers 1,2] \
        [--run-cache on,off]
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)


def main() -> None:
    parser = set_parser(__doc__)
    parser.add_argument("--run", type=Path, required=True, help="a run folder with best.pt")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--sizes", default="50,100,200", help="videos tuned on, comma-separated")
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="fit the run's frame evidence on the training split first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", default="1",
                        help="processes scoring the candidates, comma-separated: each is timed")
    parser.add_argument("--run-cache", default="on",
                        help="on / off, comma-separated: with and without proposals.run_features' "
                             "memory, each timed (off needs --workers 1)")
    args = parser.parse_args()
    cache_modes = args.run_cache.split(",")
    if set(cache_modes) - {"on", "off"}:
        parser.error(f"--run-cache: expected on and/or off, got {args.run_cache!r}")
    if "off" in cache_modes and args.workers != "1":
        parser.error("--run-cache off needs --workers 1 (spawned workers use the module's default)")

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from localization_bench import split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline import proposals
    from pipeline.proposal_tuning import tune_on_scores, tuning_sample
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
    print("| videos | workers | run memory | stages | candidates scored | seconds | "
          "ms per candidate and video | same choice as the first row |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    default_bytes = proposals.RUN_FEATURE_CACHE_BYTES
    for size in map(int, args.sizes.split(",")):
        sample = tuning_sample(split, size)
        first_result = None
        for workers in map(int, args.workers.split(",")):
            for mode in cache_modes:
                proposals.RUN_FEATURE_CACHE_BYTES = default_bytes if mode == "on" else 0
                proposals.forget_run_features()  # every row starts with nothing remembered
                started = time.perf_counter()
                result = tune_on_scores({r.file: scores[r.file] for r in sample}, sample,
                                        workers=workers)
                seconds = time.perf_counter() - started
                first_result = first_result or result
                stages, scored = scored_per_stage(result[1], effective_config, ProposalConfig)
                print(f"| {len(sample)} | {workers} | {mode} | {stages} | {scored} | {seconds:.1f} | "
                      f"{1000 * seconds / scored / len(sample):.2f} | {result == first_result} |",
                      flush=True)
    proposals.RUN_FEATURE_CACHE_BYTES = default_bytes


def scored_per_stage(tried, effective_config, config_type) -> tuple[int, int]:
    """(stages run, candidates scored) of a search's `tried` rows: a stage is a block of rows
    that set the same fields, and within one, settings that give the same proposals are
    scored once (grid_search)."""
    stages, scored, block, fields = 0, 0, set(), None
    for overrides, _ in tried:
        if tuple(overrides) != fields:
            stages, scored, block, fields = stages + 1, scored + len(block), set(), tuple(overrides)
        block.add(effective_config(dataclasses.replace(config_type(), **overrides)))
    return stages, scored + len(block)


if __name__ == "__main__":
    main()
