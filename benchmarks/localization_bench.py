"""Where does localization come from? Frame-level AUCs, localizer variants and references.

For each trained run (a folder with best.pt) on one rtdl synth (or LAV-DF-style) set:
1. per-frame ROC AUC of every signal (head scores, reconstruction errors, the routed curve,
   untrained references), per modality and forgery type, on dev, test and test_unseen
   (`pipeline/diagnostics.py`), plus routing accuracy;
2. localizer variants, each tuned on dev only, evaluated once on test and test_unseen:
   - "heads (paper)": argmax routing over the heads' frame scores;
   - "heads + error": the reconstruction-error evidence mixed in, soft routing and
     smoothing allowed (what `rtdl train` now tunes);
   - "recon error only": every video called fake, the larger error percentile of the two
     modalities as the curve (no learned localizer);
   - "learned deviation only", "sync only": the same with the learned deviation scorers'
     probabilities, or with the audio-visual desynchrony (`model/av_sync.py`: fitted on
     authentic training clips, no forgery label, no seed), where the model has them;
3. the untrained reference "median deviation": every video called fake, per-frame distance of
   the standardised input from the clip's median frame, max over modalities.

    python benchmarks/localization_bench.py --metadata W/media/metadata.json \
        --cache W/features.h5 --runs W/runs/full-s0 W/runs/full-s1 --out W/localization.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPLITS = ("dev", "test", "test_unseen")


def evaluate(predictions, records):
    from pipeline.metrics import PROTOCOLS, evaluate_predictions

    p = PROTOCOLS["rtdeeploc"]
    m = evaluate_predictions(predictions, records, ap_iou=p.ap_iou, ar_n=p.ar_n, ar_iou=p.ar_iou)
    return {"ap_avg": float(m["ap_avg"]), "ar_avg": float(m["ar_avg"])}


def fixed_scores(curves: dict, records, probs=(0.0, 0.0, 0.0, 1.0)):
    """VideoScores with every video called fake and `curves[file]` as the joint curve."""
    from pipeline.proposals import VideoScores

    out = {}
    for r in records:
        if r.file in curves:
            c = np.asarray(curves[r.file], np.float64)
            out[r.file] = VideoScores(np.asarray(probs), c, c, c, r.fps, r.duration)
    return out


class BenchmarkSet(NamedTuple):
    cache: object  # data.cache.FeatureCache
    records: list  # every record of the metadata
    by_split: dict  # {split: records} for SPLITS
    types: dict  # {file: {modality: [forgery type per period]}} (pipeline/diagnostics.py)


def open_set(metadata, cache_source) -> BenchmarkSet:
    """The cache, metadata, SPLITS' records and forgery types of one benchmark set: what
    every script of this folder that tunes on dev and tests once starts from."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.diagnostics import load_forgery_types

    records = load_metadata(metadata)
    return BenchmarkSet(FeatureCache(cache_source), records,
                        {s: records_for_split(records, s) for s in SPLITS},
                        load_forgery_types(metadata))


def tune_and_test(scores_by_split: dict, records_by_split: dict, signal_grid: dict,
                  grid: dict | None = None) -> dict:
    """Choose localizer settings on dev (`grid`: the proposal settings searched after the
    signal, None: the default grid), evaluate test and test_unseen once."""
    from pipeline.proposal_tuning import DEFAULT_TUNING_GRID, SIGNAL_TUNING_GRID, tune_on_scores
    from pipeline.proposals import all_proposals

    best, _ = tune_on_scores(scores_by_split["dev"], records_by_split["dev"], signal_grid=signal_grid,
                             grid=grid)
    result = {"config": {k: v for k, v in dataclasses.asdict(best).items()
                         if k in (*SIGNAL_TUNING_GRID, *DEFAULT_TUNING_GRID)}}
    # dev too: the number variants are chosen by (test is only reported)
    for split in ("dev", "test", "test_unseen"):
        result[split] = evaluate(all_proposals(scores_by_split[split], best), records_by_split[split])
    return result


def split_scores(model, cache, records_by_split: dict) -> tuple[dict, dict]:
    """({split: {file: predict_arrays outputs}}, {split: {file: VideoScores}}) of `model`,
    each video's timing taken from its record."""
    from pipeline.inference import predict_arrays, to_video_scores

    outputs, scores = {}, {}
    for split, records in records_by_split.items():
        outputs[split] = predict_arrays(model, ((r.file, *cache.read(r.file)) for r in records))
        scores[split] = {r.file: to_video_scores(outputs[split][r.file], r.fps, r.duration)
                         for r in records}
    return outputs, scores


LOCALIZERS = ("heads (paper)", "heads + error", "recon error only", "learned deviation only",
              "sync only")


def run_report(run_dir: Path, cache, records_by_split, forgery_types, calibrate_with=None,
               localizers=LOCALIZERS, av_sync_agreement: str | None = None) -> dict:
    """Frame AUCs, routing and localizers of one run; `calibrate_with` (training records):
    set the checkpoint's frame-evidence references from them first, as the trainer does
    (for checkpoints written before a kind of evidence existed). `localizers`: which of
    LOCALIZERS to tune and test ("heads + error", the model's, always: the frame tables
    use its curve)."""
    from pipeline.checkpoint import load_checkpoint
    from pipeline.diagnostics import frame_auc_table, model_signals, routing_report
    from pipeline.proposals import EVIDENCE_KINDS, evidence_curve, routed_curve

    model = load_checkpoint(run_dir / "best.pt").model
    if av_sync_agreement is not None:  # the fit stays; the sync evidence is recalibrated below
        if calibrate_with is None:
            raise ValueError("av_sync_agreement: needs calibrate_with, the sync evidence's "
                             "percentiles must be taken again")
        model.av_sync.agreement = av_sync_agreement
    if calibrate_with is not None:
        from pipeline.train import calibrate_frame_evidence

        calibrate_frame_evidence(model, cache, calibrate_with, "cpu")
    outputs, scores = split_scores(model, cache, records_by_split)
    report = {"run": str(run_dir), "frame_auc": {}, "routing": {}, "localizers": {}}
    if "heads (paper)" in localizers:
        report["localizers"]["heads (paper)"] = tune_and_test(scores, records_by_split, {})
    report["localizers"]["heads + error"] = tune_and_test(scores, records_by_split, None)

    def evidence_alone(*fields: str) -> dict:
        """Every video called fake, the largest of these output fields as the curve."""
        curves = {split: {f: np.max([o[field] for field in fields], axis=0)
                          for f, o in outs.items()} for split, outs in outputs.items()}
        return tune_and_test({s: fixed_scores(curves[s], records_by_split[s]) for s in SPLITS},
                             records_by_split, {"smooth_frames": (1, 5)})

    # without the FDN there is no reconstruction error to use
    if model.config.use_fdn and "recon error only" in localizers:
        report["localizers"]["recon error only"] = evidence_alone("visual_error_evidence",
                                                                  "audio_error_evidence")
    if model.config.deviation_scorer_weight > 0 and "learned deviation only" in localizers:
        report["localizers"]["learned deviation only"] = evidence_alone("visual_learned_deviation",
                                                                        "audio_learned_deviation")
    # the desynchrony alone: fitted on authentic clips, no label
    if bool(model.av_sync.is_set) and "sync only" in localizers:
        report["localizers"]["sync only"] = evidence_alone("sync_evidence")
    from pipeline.proposals import ProposalConfig

    chosen = ProposalConfig(**report["localizers"]["heads + error"]["config"])
    for split in SPLITS:  # dev too: what the choice saw, per frame
        routed = {f: routed_curve(s, chosen) for f, s in scores[split].items()}
        paper_routed = {f: routed_curve(s, ProposalConfig()) for f, s in scores[split].items()}
        signals = model_signals(outputs[split], routed)
        for f in signals:
            signals[f]["routed (paper)"] = paper_routed[f]
            signals[f]["visual error evidence"] = outputs[split][f]["visual_error_evidence"]
            signals[f]["audio error evidence"] = outputs[split][f]["audio_error_evidence"]
            # the combined evidence kinds, per modality (each single kind is a signal above)
            length = len(paper_routed[f])
            for kind in EVIDENCE_KINDS[4:]:
                for modality in ("visual", "audio"):
                    signals[f][f"{modality} evidence: {kind}"] = evidence_curve(
                        scores[split][f], modality, kind, length)
        report["frame_auc"][split] = frame_auc_table(signals, records_by_split[split], forgery_types)
        report["routing"][split] = routing_report(
            {f: o["class_probs"] for f, o in outputs[split].items()}, records_by_split[split])
    return report


def reference_report(cache, records_by_split, forgery_types, stats) -> dict:
    from pipeline.diagnostics import frame_auc_table, median_deviation_signals

    signals = {s: median_deviation_signals(cache, records_by_split[s], *stats) for s in SPLITS}
    curves = {s: {f: sig["median deviation max"] for f, sig in signals[s].items()} for s in SPLITS}
    # per-video min-max, the reference has no calibration of its own
    curves = {s: {f: (c - c.min()) / max(c.max() - c.min(), 1e-9) for f, c in cs.items()}
              for s, cs in curves.items()}
    result = tune_and_test({s: fixed_scores(curves[s], records_by_split[s]) for s in SPLITS},
                           records_by_split, {"smooth_frames": (1, 5)})
    result["frame_auc"] = {s: frame_auc_table(signals[s], records_by_split[s], forgery_types)
                           for s in ("test", "test_unseen")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="recalibrate each checkpoint's frame evidence on the training split "
                             "(checkpoints from before the deviation evidence carry none)")
    parser.add_argument("--localizers", default=",".join(LOCALIZERS),
                        help=f"comma-separated, of: {', '.join(LOCALIZERS)} (the model's, "
                             f"'heads + error', always)")
    from model.config import AV_SYNC_AGREEMENTS

    parser.add_argument("--av-sync-agreement", choices=AV_SYNC_AGREEMENTS,
                        help="score the desynchrony of every run this way instead of as it "
                             "was trained (model/av_sync.py; needs --calibrate-evidence)")
    args = parser.parse_args()
    if args.av_sync_agreement and not args.calibrate_evidence:
        parser.error("--av-sync-agreement: needs --calibrate-evidence (the sync evidence's "
                     "percentiles are taken again)")
    localizers = [name.strip() for name in args.localizers.split(",")]
    unknown = sorted(set(localizers) - set(LOCALIZERS))
    if unknown:
        parser.error(f"--localizers: unknown {unknown}; choose from {list(LOCALIZERS)}")

    import torch

    from model.normalize import frame_statistics
    from pipeline.diagnostics import format_auc_table
    from pipeline.machine import describe_machine

    torch.set_num_threads(2)
    cache, records, by_split, types = open_set(args.metadata, args.cache)
    train = [r for r in records if r.split == "train"]
    arrays = [cache.read(r.file) for r in train]
    stats = (frame_statistics(v for v, _ in arrays), frame_statistics(a for _, a in arrays))
    out = {"machine": describe_machine(), "reference": reference_report(cache, by_split, types, stats), "runs": []}
    print(out["machine"])
    ref = out["reference"]
    print(f"median deviation reference: test AP {100 * ref['test']['ap_avg']:.1f} AR "
          f"{100 * ref['test']['ar_avg']:.1f} | unseen AP {100 * ref['test_unseen']['ap_avg']:.1f} "
          f"AR {100 * ref['test_unseen']['ar_avg']:.1f}")
    for run in args.runs:
        report = run_report(run, cache, by_split, types, train if args.calibrate_evidence else None,
                            localizers, args.av_sync_agreement)
        out["runs"].append(report)
        for name, loc in report["localizers"].items():
            print(f"{run.name} {name}: test AP {100 * loc['test']['ap_avg']:.1f} AR "
                  f"{100 * loc['test']['ar_avg']:.1f} | unseen AP {100 * loc['test_unseen']['ap_avg']:.1f} "
                  f"AR {100 * loc['test_unseen']['ar_avg']:.1f}  {loc['config']}", flush=True)
        for split in SPLITS:
            print(format_auc_table(report["frame_auc"][split], f"\n{run.name} frame AUC, {split} "
                                   f"(routing accuracy {report['routing'][split]['accuracy']:.2f})"))
    for split in ("test", "test_unseen"):
        print(format_auc_table(ref["frame_auc"][split], f"\nreference frame AUC, {split}"))
    args.out.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
