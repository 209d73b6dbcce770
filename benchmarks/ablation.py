"""Does the method work? The paper's Table 3 ablation and Figure 3 sweeps on rtdl synth.

On one synthetic set (seen forgery types in train/dev/test, held-out types only in
test_unseen) this trains and evaluates:
- the full model, without AICL, without MTLR, and without FDN (the baseline), over
  several seeds: mean and spread of avg AP and avg AR (paper protocol) for both test splits;
- K (AICL top-K) and rho (mask ratio) sweeps, as in Figure 3;
- Figure 4-style plots: reconstruction errors against ground truth for test videos of
  each class, from the full model.

Features come from the pretrained backbones when they are on disk, else from the
weight-free extractors (said in the output). Proposal settings are tuned on dev for every
run. Every step is resumable: finished runs are read back from `results.jsonl`.

    python benchmarks/ablation.py --workdir /tmp/rtdl-ablation --num-videos 320 --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VARIANTS = {  # name -> ModelConfig overrides (Table 3)
    "full": {},
    "no_aicl": {"use_aicl": False},
    "no_mtlr": {"use_mtlr": False},
    "no_fdn (baseline)": {"use_fdn": False},
}


def prepare_data(workdir: Path, num_videos: int, data_seed: int) -> tuple[Path, Path, str]:
    from pipeline.demo import choose_extractors
    from pipeline.extract import ExtractionOptions, run_extraction
    from pipeline.synth import synth_dataset

    media, cache = workdir / "media", workdir / "features.h5"
    metadata = media / "metadata.json"
    if not metadata.exists():
        synth_dataset(media, num_videos, data_seed, workers=2)
    options, why = choose_extractors()
    summary = run_extraction(cache, metadata=metadata, root=media,
                             options=ExtractionOptions(device="cpu", **options))
    if summary.n_failed:
        raise SystemExit(f"extraction failed: {summary.describe()}")
    return metadata, cache, why


def run_one(name: str, overrides: dict, seed: int, args, metadata: Path, cache_path: Path) -> dict:
    """Train one configuration, tune proposals on dev, evaluate test and test_unseen."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.checkpoint import load_checkpoint
    from pipeline.demo import DemoConfig, demo_run_config
    from pipeline.evaluate import PROTOCOLS, evaluate_predictions
    from pipeline.predict import run_predictions, tune_proposals
    from pipeline.train import train

    slug = name.split()[0].replace("=", "")  # "K=5" -> "K5", "no_fdn (baseline)" -> "no_fdn"
    run_dir = args.workdir / "runs" / f"{slug}-s{seed}"
    demo = DemoConfig(seed=seed, device="cpu", **{k: getattr(args, k) for k in
                                                  ("epochs", "batch_size", "lr", "d_model")})
    run_cfg = demo_run_config(demo, **overrides)
    t0 = time.perf_counter()
    best = run_dir / "best.pt"
    if not best.exists():
        best = train(run_cfg, cache_path, metadata, run_dir)
    checkpoint = load_checkpoint(best)
    records = load_metadata(metadata)
    cache = FeatureCache(cache_path)
    proposal_cfg, _ = tune_proposals(checkpoint.model, cache, records_for_split(records, "dev"))
    protocol = PROTOCOLS["rtdeeploc"]
    result = {"variant": name, "overrides": overrides, "seed": seed, "run_dir": str(run_dir)}
    for split in ("test", "test_unseen"):
        split_records = records_for_split(records, split)
        preds, probs = run_predictions(checkpoint.model, cache, split_records,
                                       proposal_config=proposal_cfg)
        metrics = evaluate_predictions(preds, split_records, ap_iou=protocol.ap_iou,
                                       ar_n=protocol.ar_n, ar_iou=protocol.ar_iou, video_probs=probs)
        result[split] = {"ap_avg": metrics["ap_avg"], "ar_avg": metrics["ar_avg"],
                         "auc": metrics["auc"]}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def load_done(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key_of(variant: str, overrides: dict, seed: int) -> str:
    return f"{variant}|{json.dumps(overrides, sort_keys=True)}|{seed}"


def summarize(rows: list[dict], label_of) -> list[str]:
    """Markdown rows: mean ± std over seeds of avg AP / AR / AUC, percent."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(label_of(row), []).append(row)
    lines = ["| configuration | seeds | test avg AP | test avg AR | test AUC "
             "| unseen avg AP | unseen avg AR | unseen AUC |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def stat(group: list[dict], split: str, metric: str) -> str:
        values = [100 * r[split][metric] for r in group if r[split][metric] is not None]
        if not values:
            return "n/a"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}"

    for label, group in groups.items():
        cells = [stat(group, s, m) for s in ("test", "test_unseen") for m in ("ap_avg", "ar_avg", "auc")]
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def figure4(run_dir: Path, metadata: Path, cache_path: Path, out_dir: Path, per_class: int = 2) -> list[Path]:
    """Reconstruction-error curves against ground truth for test videos of each class."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from data.records import LABELS
    from pipeline.checkpoint import load_checkpoint
    from pipeline.plots import plot_evidence
    from pipeline.predict import predict_arrays

    checkpoint = load_checkpoint(run_dir / "best.pt")
    cache = FeatureCache(cache_path)
    test = records_for_split(load_metadata(metadata), "test")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for label, name in enumerate(LABELS):
        for record in [r for r in test if r.label == label][:per_class]:
            visual, audio = cache.read(record.file)
            out = predict_arrays(checkpoint.model, [(record.file, visual, audio)])[record.file]
            times = (np.arange(len(out["joint_scores"])) + 0.5) / record.fps
            norm = {k: out[k] / (out[k].max() + 1e-9) for k in ("visual_recon_error", "audio_recon_error")}
            path = out_dir / f"fig4_{name}_{Path(record.file).stem}.png"
            plot_evidence(times, {"visual recon error (norm.)": norm["visual_recon_error"],
                                  "audio recon error (norm.)": norm["audio_recon_error"],
                                  "joint frame score": out["joint_scores"]},
                          segments=(), ground_truth=record.fake_segments,
                          title=f"{record.file} ({name}); shaded: ground truth", path=path)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rtdl-ablation"))
    parser.add_argument("--num-videos", type=int, default=320)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sweep-seeds", default="0", help="seeds for the K and rho sweeps")
    parser.add_argument("--k-values", default="5,10,15,20")
    parser.add_argument("--rho-values", default="0.5,0.6,0.7,0.75,0.8")
    parser.add_argument("--no-sweeps", action="store_true")
    from pipeline.demo import DemoConfig  # the demo's training settings are the defaults

    demo = DemoConfig()
    parser.add_argument("--epochs", type=int, default=demo.epochs)
    parser.add_argument("--batch-size", type=int, default=demo.batch_size)
    parser.add_argument("--lr", type=float, default=demo.lr)
    parser.add_argument("--d-model", type=int, default=demo.d_model)
    parser.add_argument("--figures", type=Path, default=REPO / "benchmarks" / "figures")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(2)
    metadata, cache, why = prepare_data(args.workdir, args.num_videos, args.data_seed)
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    print(f"features: {why}", flush=True)
    results_path = args.workdir / "results.jsonl"
    done = {key_of(r["variant"], r["overrides"], r["seed"]): r for r in load_done(results_path)}

    jobs = [(name, ov, seed) for seed in map(int, args.seeds.split(",")) for name, ov in VARIANTS.items()]
    if not args.no_sweeps:
        for seed in map(int, args.sweep_seeds.split(",")):
            jobs += [(f"K={k}", {"aicl_k": int(k)}, seed) for k in args.k_values.split(",") if int(k) != 10]
            jobs += [(f"rho={r}", {"mask_ratio": float(r)}, seed) for r in args.rho_values.split(",")
                     if float(r) != 0.75]
    for name, overrides, seed in jobs:
        key = key_of(name, overrides, seed)
        if key in done:
            continue
        row = run_one(name, overrides, seed, args, metadata, cache)
        done[key] = row
        with results_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{name} seed {seed}: test AP {100 * row['test']['ap_avg']:.2f} AR "
              f"{100 * row['test']['ar_avg']:.2f} | unseen AP {100 * row['test_unseen']['ap_avg']:.2f} "
              f"AR {100 * row['test_unseen']['ar_avg']:.2f} ({row['seconds']} s)", flush=True)

    rows = list(done.values())
    table = [r for r in rows if r["variant"] in VARIANTS]
    print("\nTable 3 (ablation):\n" + "\n".join(summarize(table, lambda r: r["variant"])))
    sweep_seeds = set(map(int, args.sweep_seeds.split(",")))
    k_rows = [r for r in rows if r["variant"].startswith("K=") or (r["variant"] == "full" and r["seed"] in sweep_seeds)]
    rho_rows = [r for r in rows if r["variant"].startswith("rho=") or (r["variant"] == "full" and r["seed"] in sweep_seeds)]
    if not args.no_sweeps:
        print("\nFigure 3a (K):\n" + "\n".join(summarize(
            sorted(k_rows, key=lambda r: r["overrides"].get("aicl_k", 10)),
            lambda r: f"K={r['overrides'].get('aicl_k', 10)}")))
        print("\nFigure 3b (rho):\n" + "\n".join(summarize(
            sorted(rho_rows, key=lambda r: r["overrides"].get("mask_ratio", 0.75)),
            lambda r: f"rho={r['overrides'].get('mask_ratio', 0.75)}")))
    full = next(r for r in rows if r["variant"] == "full")
    for path in figure4(Path(full["run_dir"]), metadata, cache, args.figures):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
