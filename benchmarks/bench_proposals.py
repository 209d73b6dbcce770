"""How fast the localizer turns frame scores into proposals: this tree against a git revision.

Tuning (`rtdl train`'s last step, `rtdl tune`) calls `pipeline.proposals.all_proposals` once
per candidate setting on every dev video, so its speed sets what tuning costs. This loads
`pipeline/proposals.py` as it is in the working tree and as it was at `--against` (a git
revision), scores one run's split once, and times both on the same candidates of the
evidence grid (`SIGNAL_TUNING_GRID` x a few proposal settings, `--candidates` of them evenly
spaced), alternating which goes first.
It checks that the two give the same segments in the same order for every video and
candidate, and reports the largest difference of a proposal's score.

    python benchmarks/bench_proposals.py --metadata W/media/metadata.json --cache W/features.h5 \
        --run W/runs/full-s0 --against HEAD~1 [--videos 50] [--candidates 200] [--calibrate-evidence]
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def module_at(revision: str, relative: str, name: str):
    """`relative` (a file of this repository) as it was at git `revision`, imported as `name`."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:{relative}"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="a run folder with best.pt")
    parser.add_argument("--against", required=True, help="git revision to compare with")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--videos", type=int, default=50, help="videos of the split (tuning sample)")
    parser.add_argument("--candidates", type=int, default=200,
                        help="settings timed, evenly spaced over the grid")
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="fit the run's frame evidence on the training split first")
    args = parser.parse_args()

    import numpy as np
    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from localization_bench import split_scores
    from pipeline import proposals as current
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.proposal_tuning import SIGNAL_TUNING_GRID, tuning_sample
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(1)
    print(describe_machine(), flush=True)
    before = module_at(args.against, "pipeline/proposals.py", "proposals_before")
    cache = FeatureCache(args.cache)
    records = load_metadata(args.metadata)
    sample = tuning_sample(records_for_split(records, args.split), args.videos)
    model = load_checkpoint(args.run / "best.pt").model
    if args.calibrate_evidence:
        calibrate_frame_evidence(model, cache, [r for r in records if r.split == "train"], "cpu")
    _, scores = split_scores(model, cache, {args.split: sample})
    scores = scores[args.split]

    grid = {**SIGNAL_TUNING_GRID, "level_weight": (0.0, 1.0), "snap_frames": (0, 3)}
    every = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    candidates = every[::max(1, len(every) // args.candidates)][:args.candidates]
    seconds = {"working tree": 0.0, args.against: 0.0}
    mismatched, largest = 0, 0.0
    for i, overrides in enumerate(candidates):
        runs = [("working tree", current), (args.against, before)]
        outputs = {}
        for label, module in (runs if i % 2 == 0 else runs[::-1]):
            cfg = module.ProposalConfig(**overrides)
            started = time.perf_counter()
            outputs[label] = module.all_proposals(scores, cfg)
            seconds[label] += time.perf_counter() - started
        new, old = outputs["working tree"], outputs[args.against]
        for file in new:
            if [p[1:] for p in new[file]] != [p[1:] for p in old[file]]:
                mismatched += 1
            elif new[file]:
                largest = max(largest, float(np.max(np.abs(np.asarray(new[file])[:, 0]
                                                             - np.asarray(old[file])[:, 0]))))
    work = len(candidates) * len(scores)
    print(f"{len(candidates)} candidates x {len(scores)} videos of {args.split}")
    print("| code | seconds | ms per candidate and video |\n| --- | --- | --- |")
    for label, value in seconds.items():
        print(f"| {label} | {value:.1f} | {1000 * value / work:.3f} |")
    print(f"speed-up: {seconds[args.against] / seconds['working tree']:.2f}x; videos whose "
          f"segments or order differ: {mismatched} of {work}; largest score difference: {largest:.2e}")


if __name__ == "__main__":
    main()
