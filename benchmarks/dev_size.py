"""How many dev videos does it take to choose the localizer? Tuning on parts of dev.

`rtdl train` chooses the proposal settings on the dev split among about a thousand
candidates (pipeline/proposal_tuning.py). On a small split the best-scoring candidate can
be one that merely fits those videos. For each trained run this scores its dev split once,
tunes on all of it, then on disjoint parts of `--sizes` videos each (stratified by label, in
the hash order `tuning_sample` uses), and evaluates every part's choice on the dev videos
outside that part, beside the whole split's choice on the same videos. The whole split's
choice has seen those videos, so the difference flatters it: read it as how far a small
split's choice can fall, not as an exact cost. Dev only; no test split is read.

    python benchmarks/dev_size.py --metadata W/media/metadata.json --cache W/features.h5 \
        --runs W/runs/full-s0 W/runs/full-s1 --sizes 50,100 --calibrate-evidence --out dev_size.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def disjoint_parts(records: list, size: int) -> list[list]:
    """len(records) // size disjoint parts of about `size` records, each with every label's
    share (records sorted by label, then by the hash of the file name, dealt in turn)."""
    count = max(1, len(records) // size)
    order = sorted(records, key=lambda r: (r.label, hashlib.sha1(r.file.encode()).hexdigest()))
    return [order[part::count] for part in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--sizes", default="50,100", help="videos per part, comma-separated")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="fit each run's frame evidence on the training split first")
    parser.add_argument("--workers", type=int, default=None, help="tuning processes (None: per core)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import numpy as np
    import torch

    from localization_bench import evaluate, open_set, split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.proposal_tuning import tune_on_scores
    from pipeline.proposals import all_proposals
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(1)
    print(describe_machine(), flush=True)
    bench = open_set(args.metadata, args.cache)
    dev = [r for r in bench.records if r.split == args.split]
    train = [r for r in bench.records if r.split == "train"]

    def metrics(scores, cfg, records) -> list[float]:
        found = evaluate(all_proposals({r.file: scores[r.file] for r in records}, cfg), records)
        return [100 * found["ap_avg"], 100 * found["ar_avg"]]

    rows = []
    print("| run | part videos | part | evidence chosen | AP / AR on the other dev videos | "
          "whole dev's choice there | AP difference |\n| --- | --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        model = load_checkpoint(run / "best.pt").model
        if args.calibrate_evidence:
            calibrate_frame_evidence(model, bench.cache, train, "cpu")
        _, scores = split_scores(model, bench.cache, {args.split: dev})
        scores = scores[args.split]
        whole, _ = tune_on_scores(scores, dev, workers=args.workers)
        for size in map(int, args.sizes.split(",")):
            for index, part in enumerate(disjoint_parts(dev, size)):
                chosen, _ = tune_on_scores({r.file: scores[r.file] for r in part}, part,
                                           workers=args.workers)
                inside = {r.file for r in part}
                rest = [r for r in dev if r.file not in inside]
                own, reference = metrics(scores, chosen, rest), metrics(scores, whole, rest)
                rows.append({"run": str(run), "size": size, "videos": len(part), "part": index,
                             "evidence": chosen.evidence, "config": chosen.__dict__,
                             "rest": own, "whole_choice_on_rest": reference})
                print(f"| {run.name} | {len(part)} | {index} | {chosen.evidence} | "
                      f"{own[0]:.1f} / {own[1]:.1f} | {reference[0]:.1f} / {reference[1]:.1f} | "
                      f"{own[0] - reference[0]:+.1f} |", flush=True)
    print("\n| part videos | parts | mean AP difference | worst | choices of the learned deviation alone |"
          "\n| --- | --- | --- | --- | --- |")
    for size in map(int, args.sizes.split(",")):
        chosen = [r for r in rows if r["size"] == size]
        gaps = [r["rest"][0] - r["whole_choice_on_rest"][0] for r in chosen]
        alone = sum(r["evidence"] == "learned_deviation" for r in chosen)
        print(f"| {size} | {len(chosen)} | {np.mean(gaps):+.1f} | {min(gaps):+.1f} | {alone} |")
    args.out.write_text(json.dumps({"machine": describe_machine(), "rows": rows}, indent=1,
                                   default=float))


if __name__ == "__main__":
    main()
