"""Dev avg AP / AR of the localizer each ablation run chose on dev (for runs recorded before
`localization_bench.tune_and_test` kept dev metrics): the numbers to choose variants by.

Reads `<workdir>/results.jsonl` (benchmarks/ablation.py), reloads each run's best.pt,
scores the dev split and applies the recorded dev-chosen settings of every localizer that
reads the model's own scores ("heads (paper)", "heads + error").

    python benchmarks/dev_scores.py --workdir /tmp/abl2 --variants "full|full + learned deviation"
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

LOCALIZERS = ("heads (paper)", "heads + error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--variants", required=True, help="'|'-separated variant names")
    args = parser.parse_args()

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from localization_bench import evaluate, split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.proposals import ProposalConfig, all_proposals

    torch.set_num_threads(1)
    print(describe_machine())
    cache = FeatureCache(args.workdir / "features.h5")
    dev = records_for_split(load_metadata(args.workdir / "media" / "metadata.json"), "dev")
    rows = [json.loads(line) for line in (args.workdir / "results.jsonl").read_text().splitlines()]
    print("| variant | localizer | seeds | dev avg AP | dev avg AR | per seed AP |")
    print("| --- | --- | --- | --- | --- | --- |")
    for variant in args.variants.split("|"):
        runs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        results = {name: [] for name in LOCALIZERS}
        for run in runs:
            model = load_checkpoint(Path(run["run_dir"]) / "best.pt").model
            scores = split_scores(model, cache, {"dev": dev})[1]["dev"]
            for name in LOCALIZERS:
                config = ProposalConfig(**run["localizers"][name]["config"])
                results[name].append(evaluate(all_proposals(scores, config), dev))
        for name, values in results.items():
            ap = [100 * v["ap_avg"] for v in values]
            ar = [100 * v["ar_avg"] for v in values]
            spread = (lambda x: statistics.stdev(x) if len(x) > 1 else 0.0)
            print(f"| {variant} | {name} | {len(values)} | {statistics.mean(ap):.2f} ± {spread(ap):.2f} "
                  f"| {statistics.mean(ar):.2f} ± {spread(ar):.2f} | {' / '.join(f'{a:.1f}' for a in ap)} |")


if __name__ == "__main__":
    main()
