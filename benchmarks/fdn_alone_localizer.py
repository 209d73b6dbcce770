"""What would the FDN alone (trained on authentic clips, to the end) give the localizer?

`fdn_probe.py` shows, per frame, that the paper's masked autoencoder trained by itself on
authentic clips marks held-out forgeries that the full model's FDN misses. This puts its
error where the model's FDN error goes, for each trained run, and chooses the localizer on
dev as `rtdl train` does (`localization_bench.tune_and_test`), test evaluated once:

- "FDN alone as the reconstruction evidence": the run's scores with the FDN-alone error
  (its percentile among authentic training frames, `model.evidence.ErrorCalibration`) in
  place of the model's FDN error; today's whole grid, so dev may take it or not.
- "the three cues averaged": the evidence of each modality is the mean of the
  desynchrony, the modality's learned deviation and the FDN-alone error (the kind
  `sync_and_learned_deviation` plus the reconstruction error); the grid restricted to that
  evidence (weights 0.5 / 0.75 / 1), everything else as today. Dev does not choose this
  over the others (first row): this row says what it costs on seen types and buys on
  held-out ones, not what rtdl would pick.

    python benchmarks/fdn_alone_localizer.py --metadata W/media/metadata.json \
        --cache W/features.h5 --runs W/runs/full-s0 [W/runs/full-s1 ...] --out fdn_alone.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SPLITS = ("dev", "test", "test_unseen")


def calibrated(errors: dict, reference_files: list[str]) -> dict:
    """{file: {modality: percentile [T]}} of `errors` among the reference clips' frames."""
    import torch

    from model.evidence import ErrorCalibration

    out: dict[str, dict[str, np.ndarray]] = {file: {} for file in errors}
    for modality in ("visual", "audio"):
        calibration = ErrorCalibration()
        calibration.set_reference(np.concatenate([errors[f][modality] for f in reference_files]))
        for file, by_modality in errors.items():
            out[file][modality] = calibration(torch.as_tensor(by_modality[modality])[None])[0].numpy()
    return out


def with_evidence(scores: dict, evidence: dict, three_cues: bool) -> dict:
    """Each VideoScores with `evidence` as its reconstruction evidence (averaged with the
    desynchrony and the learned deviation when `three_cues`)."""
    out = {}
    for file, video in scores.items():
        n = len(video.visual_scores)
        fields = {}
        for modality in ("visual", "audio"):
            error = np.asarray(evidence[file][modality][:n], np.float64)
            if three_cues:
                learned = getattr(video, f"{modality}_learned_deviation")
                error = (np.asarray(video.sync_evidence[:n]) + np.asarray(learned[:n]) + error) / 3
            fields[f"{modality}_evidence"] = error
        out[file] = dataclasses.replace(video, **fields)
    return out


def routed_auc(scores: dict, records, config: dict, forgery_types) -> dict:
    """{modality: {type: mean per-video frame AUC}} of the routed curve under `config`."""
    from pipeline.diagnostics import frame_auc_table
    from pipeline.proposals import ProposalConfig, routed_curve

    cfg = ProposalConfig(**config)
    table = frame_auc_table({f: {"routed": routed_curve(v, cfg)} for f, v in scores.items()},
                            records, forgery_types)
    return {m: {t: cell["auc"] for t, cell in by_type.items()} for m, by_type in table["routed"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="of the FDN alone")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from data.metadata import records_for_split
    from fdn_probe import authentic_mae_errors
    from localization_bench import open_set, split_scores, tune_and_test
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.proposal_tuning import SIGNAL_TUNING_GRID
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, by_split, forgery_types = open_set(args.metadata, args.cache)
    train = records_for_split(records, "train")
    errors = authentic_mae_errors(cache, train, [r for s in SPLITS for r in by_split[s]],
                                  epochs=args.epochs, seed=args.seed)
    evidence = calibrated(errors, [r.file for r in train if not r.is_fake])
    three_cue_grid = {**SIGNAL_TUNING_GRID, "evidence": ("reconstruction",),
                      "error_weight": (0.5, 0.75, 1.0)}
    out = {"machine": describe_machine(), "epochs": args.epochs, "runs": []}
    for run in args.runs:
        model = load_checkpoint(run / "best.pt").model
        calibrate_frame_evidence(model, cache, train, "cpu")
        _, scores = split_scores(model, cache, by_split)
        report = {"run": str(run)}
        for name, three_cues, signal_grid in (("FDN alone as the reconstruction evidence", False, None),
                                       ("the three cues averaged", True, three_cue_grid)):
            replaced = {s: with_evidence(scores[s], evidence, three_cues) for s in SPLITS}
            result = tune_and_test(replaced, by_split, signal_grid)
            result["routed_frame_auc"] = {s: routed_auc(replaced[s], by_split[s], result["config"],
                                                        forgery_types) for s in ("test", "test_unseen")}
            report[name] = result
            print(f"{run.name} {name}: " + " | ".join(
                f"{s} AP {100 * result[s]['ap_avg']:.2f} AR {100 * result[s]['ar_avg']:.2f}" for s in SPLITS)
                + f"  {result['config']}", flush=True)
            print(f"  routed frame AUC: {json.dumps(result['routed_frame_auc'])}", flush=True)
        out["runs"].append(report)
        args.out.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
