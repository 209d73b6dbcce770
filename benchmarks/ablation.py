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
sys.path.insert(0, str(REPO / "benchmarks"))

VARIANTS = {  # name -> ModelConfig overrides, or "train.<field>" (Table 3, plus rtdl's own).
    # Every variant starts from the demo preset, which has the learned deviation scorers
    # (model/deviation_scorer.py) since they were chosen on dev; they train beside the
    # network without changing it, so the Table 3 components compare as before.
    "full": {},
    "no_aicl": {"use_aicl": False},
    "no_mtlr": {"use_mtlr": False},
    "no_fdn (baseline)": {"use_fdn": False},
    "full + authentic frames": {"frame_negative_weight": 1.0},
    "full + FDN error on the input": {"fdn_target": "input"},
    "full + weight average": {"train.ema_decay": 0.99},
    # how the scorers were chosen (BENCHMARKS.md, "A learned deviation scorer")
    "full without learned deviation": {"deviation_scorer_weight": 0.0},
    "full + learned deviation": {"deviation_scorer_weight": 1.0,
                                 "train.deviation_scorer_lr_scale": 1.0},
    "full + learned deviation at 10x lr": {"deviation_scorer_weight": 1.0,
                                           "train.deviation_scorer_lr_scale": 10.0},
    "no_fdn + learned deviation at 10x lr": {"use_fdn": False, "deviation_scorer_weight": 1.0,
                                             "train.deviation_scorer_lr_scale": 10.0},
}


def prepare_data(workdir: Path, num_videos: int, data_seed: int,
                 split_sizes: tuple[int, ...] | None = None,
                 speech: str = "formant") -> tuple[Path, Path, str]:
    from pipeline.demo import choose_extractors
    from pipeline.extract import run_extraction
    from pipeline.options import ExtractionOptions
    from pipeline.synth import synth_dataset

    media, cache = workdir / "media", workdir / "features.h5"
    metadata = media / "metadata.json"
    if not metadata.exists():
        extra = {}
        if split_sizes:  # exact clips per split: train, dev, test, test_unseen
            num_videos = sum(split_sizes)
            extra["split_fractions"] = tuple(n / num_videos for n in split_sizes)
        synth_dataset(media, num_videos, data_seed, workers=2, speech=speech, **extra)
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
    from localization_bench import SPLITS, run_report
    from pipeline.demo import DEMO_PRESET
    from pipeline.train_config import load_run_config
    from pipeline.diagnostics import load_forgery_types
    from pipeline.train import train

    slug = name.split()[0].replace("=", "")  # "K=5" -> "K5", "no_fdn (baseline)" -> "no_fdn"
    slug += "-afr" if overrides.get("frame_negative_weight") else ""
    slug += "-inp" if overrides.get("fdn_target") == "input" else ""
    slug += "-ema" if overrides.get("train.ema_decay") else ""
    slug += "-lds" if overrides.get("deviation_scorer_weight") else ""
    slug += "-lr10" if overrides.get("train.deviation_scorer_lr_scale") == 10.0 else ""
    run_dir = args.workdir / "runs" / f"{slug}-s{seed}"
    # run_report below chooses every localizer on dev itself, so training skips its own tuning
    changes = [f"model.d_model={args.d_model}", "train.tune_proposals=false",
               *(f"{k}={v}" if "." in k else f"model.{k}={v}" for k, v in overrides.items())]
    run_cfg = load_run_config(DEMO_PRESET, changes, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=seed, device="cpu")
    t0 = time.perf_counter()
    if not (run_dir / "best.pt").exists():
        train(run_cfg, cache_path, metadata, run_dir)
    records = load_metadata(metadata)
    by_split = {s: records_for_split(records, s) for s in SPLITS}
    report = run_report(run_dir, FeatureCache(cache_path), by_split, load_forgery_types(metadata))
    result = {"variant": name, "overrides": overrides, "seed": seed, "run_dir": str(run_dir),
              "localizers": report["localizers"], "frame_auc": report["frame_auc"],
              "routing_accuracy": {s: r["accuracy"] for s, r in report["routing"].items()}}
    # the table's headline: the localizer rtdl uses (evidence chosen on dev)
    for split in ("test", "test_unseen"):
        result[split] = report["localizers"]["heads + error"][split]
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def reference_row(workdir: Path, metadata: Path, cache_path: Path) -> dict:
    """The untrained clip-median-deviation reference (computed once, cached in the workdir)."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from localization_bench import SPLITS, reference_report
    from model.normalize import frame_statistics
    from pipeline.diagnostics import load_forgery_types

    path = workdir / "reference.json"
    if not path.exists():
        cache = FeatureCache(cache_path)
        records = load_metadata(metadata)
        arrays = [cache.read(r.file) for r in records if r.split == "train"]
        stats = (frame_statistics(v for v, _ in arrays), frame_statistics(a for _, a in arrays))
        report = reference_report(cache, {s: records_for_split(records, s) for s in SPLITS},
                                  load_forgery_types(metadata), stats)
        path.write_text(json.dumps(report, default=float))
    report = json.loads(path.read_text())
    return {"variant": "no training", "localizer": "median deviation", "test": report["test"],
            "test_unseen": report["test_unseen"]}


def frame_auc_summary(rows: list[dict]) -> list[str]:
    """Markdown: per variant and signal, the forged modality's mean frame AUC over seeds."""
    signals = ("routed", "routed (paper)", "visual head", "audio head", "joint head",
               "visual recon error", "audio recon error", "visual learned deviation",
               "audio learned deviation")
    lines = ["| variant | signal | visual, test | audio, test | visual, unseen | audio, unseen |",
             "| --- | --- | --- | --- | --- | --- |"]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["variant"], []).append(row)
    for variant, group in groups.items():
        for signal in signals:
            if "recon" in signal and group[0]["overrides"].get("use_fdn") is False:
                continue  # no FDN, no reconstruction error
            cells = []
            for split in ("test", "test_unseen"):
                for modality in ("visual", "audio"):
                    values = [r["frame_auc"][split].get(signal, {}).get(modality, {}).get("all", {}).get("auc")
                              for r in group]
                    values = [v for v in values if v is not None]
                    spread = statistics.stdev(values) if len(values) > 1 else 0.0
                    cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}" if values else "n/a")
            if any(c != "n/a" for c in cells):
                lines.append(f"| {variant} | {signal} | " + " | ".join(cells) + " |")
    return lines


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
    lines = ["| configuration | seeds | test avg AP | test avg AR "
             "| unseen avg AP | unseen avg AR |",
             "| --- | --- | --- | --- | --- | --- |"]

    def stat(group: list[dict], split: str, metric: str) -> str:
        values = [100 * r[split][metric] for r in group if r[split].get(metric) is not None]
        if not values:
            return "n/a"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}"

    for label, group in groups.items():
        cells = [stat(group, s, m) for s in ("test", "test_unseen") for m in ("ap_avg", "ar_avg")]
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def figure4(run_dir: Path, metadata: Path, cache_path: Path, out_dir: Path, per_class: int = 2) -> list[Path]:
    """Reconstruction-error curves against ground truth for test videos of each class."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from data.labels import LABELS
    from pipeline.checkpoint import load_checkpoint
    from pipeline.plots import plot_evidence
    from pipeline.inference import predict_arrays

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
    parser.add_argument("--split-sizes", default=None,
                        help="clips per split train,dev,test,test_unseen (overrides --num-videos)")
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--speech", default="formant", choices=("formant", "espeak"),
                        help="rtdl synth's speech for the clips")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sweep-seeds", default="0", help="seeds for the K and rho sweeps")
    parser.add_argument("--k-values", default="5,10,15,20")
    parser.add_argument("--rho-values", default="0.5,0.6,0.7,0.75,0.8")
    parser.add_argument("--no-sweeps", action="store_true")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (1 when running several seeds side by side)")
    from pipeline.demo import DEMO_PRESET  # the demo's training settings are the defaults
    from pipeline.train_config import load_run_config

    demo = load_run_config(DEMO_PRESET)
    parser.add_argument("--epochs", type=int, default=demo.train.epochs)
    parser.add_argument("--batch-size", type=int, default=demo.train.batch_size)
    parser.add_argument("--lr", type=float, default=demo.train.lr)
    parser.add_argument("--d-model", type=int, default=demo.model.d_model)
    parser.add_argument("--figures", type=Path, default=REPO / "benchmarks" / "figures")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(args.threads)
    sizes = tuple(int(n) for n in args.split_sizes.split(",")) if args.split_sizes else None
    metadata, cache, why = prepare_data(args.workdir, args.num_videos, args.data_seed, sizes,
                                        args.speech)
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    print(f"features: {why}", flush=True)
    results_path = args.workdir / "results.jsonl"
    done = {key_of(r["variant"], r["overrides"], r["seed"]): r for r in load_done(results_path)}

    chosen = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known: {list(VARIANTS)}")
    jobs = [(name, VARIANTS[name], seed) for seed in map(int, args.seeds.split(",")) for name in chosen]
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
    print(f"\n{describe_machine()}")
    print("\nTable 3 (ablation), localizer chosen on dev (heads + error evidence):\n"
          + "\n".join(summarize(table, lambda r: r["variant"])))
    print("\nEvery variant x localizer (each tuned on dev), and the references:")
    # without the FDN there is no reconstruction error, so no "recon error only" row
    by_localizer = [dict(r, test=loc["test"], test_unseen=loc["test_unseen"], localizer=name)
                    for r in table for name, loc in r.get("localizers", {}).items()
                    if not (name == "recon error only" and r["overrides"].get("use_fdn") is False)]
    reference = reference_row(args.workdir, metadata, cache)
    print("\n".join(summarize(by_localizer + [reference],
                             lambda r: f"{r['variant']} / {r['localizer']}")))
    print("\nFrame AUC of the forged modality (mean over seeds ± std; test | test_unseen):")
    print("\n".join(frame_auc_summary(table)))
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
    full = next((r for r in rows if r["variant"] == "full"), None)
    if full is None or args.no_figures:
        return
    for path in figure4(Path(full["run_dir"]), metadata, cache, args.figures):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
