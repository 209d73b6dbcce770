"""What does each epoch of training do to the frame signals and to AP? One run, epoch by epoch.

Trains one configuration (the demo preset plus `--set` overrides) one epoch at a time
(resuming from `last.pt`, so the run is the same as a single long one) and keeps each
epoch's weights as `ep<k>.pt`. Then, for each kept epoch:
- the frame AUC of the forged modality on test and test_unseen (`pipeline/diagnostics.py`)
  of the routed curve, each head and each reconstruction error, and the 4-class routing
  accuracy;
- avg AP / AR of three localizers, each chosen on dev only and evaluated once:
  "paper" (argmax routing over the raw head scores, no smoothing), "paper + rank" (the same
  with `curve_normalization=rank`), and "dev-chosen" (normalisation, routing and error
  weight picked on dev, 5-frame smoothing).

The proposal grid here is small on purpose (the video weight only); `rtdl train` tunes a
larger one.

    python benchmarks/epoch_trajectory.py --workdir /tmp/abl --out /tmp/traj --epochs 10 --seed 0
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from localization_bench import SPLITS  # noqa: E402

LOCALIZERS = {  # name -> signal grid searched on dev
    "paper": {},
    "paper + rank": {"curve_normalization": ("rank",)},
    "dev-chosen": {"curve_normalization": ("none", "rank"), "routing": ("argmax", "soft"),
                   "error_weight": (0.0, 0.5), "smooth_frames": (5,)},
}
PROPOSAL_GRID = {"video_weight": (0.5, 0.0, 1.0)}


def train_epochs(run_dir: Path, metadata: Path, cache: Path, epochs: int, seed: int, changes: list[str]) -> None:
    from pipeline.demo import DEMO_PRESET
    from pipeline.train import train
    from pipeline.train_config import load_run_config

    for epoch in range(1, epochs + 1):
        if (run_dir / f"ep{epoch}.pt").exists():
            continue
        cfg = load_run_config(DEMO_PRESET, [*changes, "train.tune_proposals=false"],
                              epochs=epoch, seed=seed, device="cpu")
        train(cfg, cache, metadata, run_dir, resume=(run_dir / "last.pt").exists())
        shutil.copy(run_dir / "last.pt", run_dir / f"ep{epoch}.pt")


def evaluate_epoch(checkpoint: Path, cache, by_split: dict, forgery_types: dict) -> dict:
    from localization_bench import tune_and_test
    from pipeline.checkpoint import load_checkpoint
    from pipeline.diagnostics import frame_auc_table, model_signals, routing_report
    from pipeline.inference import predict_arrays, to_video_scores
    from pipeline.proposals import routed_curve

    model = load_checkpoint(checkpoint).model
    outputs = {s: predict_arrays(model, ((r.file, *cache.read(r.file)) for r in rs)) for s, rs in by_split.items()}
    scores = {s: {r.file: to_video_scores(outputs[s][r.file], r.fps, r.duration) for r in rs}
              for s, rs in by_split.items()}
    row: dict = {"localizers": {}}
    for name, signal_grid in LOCALIZERS.items():
        tuned = tune_and_test(scores, by_split, signal_grid, PROPOSAL_GRID)
        result = {split: [round(100 * tuned[split]["ap_avg"], 1), round(100 * tuned[split]["ar_avg"], 1)]
                  for split in ("test", "test_unseen")}
        result["chosen"] = {k: tuned["config"][k] for k in ("curve_normalization", "routing", "error_weight")}
        row["localizers"][name] = result
    for split in ("test", "test_unseen"):
        routed = {f: routed_curve(v) for f, v in scores[split].items()}
        table = frame_auc_table(model_signals(outputs[split], routed), by_split[split], forgery_types)
        row[f"frame AUC {split}"] = {signal: {m: round(table[signal][m]["all"]["auc"], 3) for m in table[signal]}
                                     for signal in ("routed", "visual head", "audio head", "joint head",
                                                    "visual recon error", "audio recon error")
                                     if signal in table}
        row[f"routing accuracy {split}"] = round(routing_report(
            {f: o["class_probs"] for f, o in outputs[split].items()}, by_split[split])["accuracy"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="a folder with media/metadata.json and features.h5 (e.g. benchmarks/ablation.py's)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (epoch checkpoints, results)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="changes", action="append", default=[],
                        help="RunConfig override, e.g. model.use_fdn=false (repeatable)")
    parser.add_argument("--evaluate", default=None, help="comma-separated epochs to evaluate (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.diagnostics import load_forgery_types
    from pipeline.machine import describe_machine

    torch.set_num_threads(args.threads)
    print(describe_machine())
    metadata, cache_path = args.workdir / "media" / "metadata.json", args.workdir / "features.h5"
    train_epochs(args.out, metadata, cache_path, args.epochs, args.seed, args.changes)
    cache = FeatureCache(cache_path)
    records = load_metadata(metadata)
    by_split = {s: records_for_split(records, s) for s in SPLITS}
    types = load_forgery_types(metadata)
    epochs = [int(e) for e in args.evaluate.split(",")] if args.evaluate else range(1, args.epochs + 1)
    results = args.out / "trajectory.jsonl"
    done = {json.loads(line)["epoch"] for line in results.open()} if results.exists() else set()
    for epoch in epochs:
        if epoch in done:
            continue
        row = {"epoch": epoch, **evaluate_epoch(args.out / f"ep{epoch}.pt", cache, by_split, types)}
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
