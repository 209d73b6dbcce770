"""Where is recall lost: in the candidate segments, or in their ranking?

For each trained run and the localizer its dev split chose (read from a
`localization_bench.py` output), this takes every candidate segment the localizer forms
before scoring and suppression, and reports per split:
- the AR@N it reaches (the paper's protocol: N = 20, 10, 5, 2, IoU 0.5:0.05:0.95);
- the AR@N a perfect ranking of the same candidates would reach: per video and IoU
  threshold, min(N, number of ground-truth segments that some candidate overlaps by more
  than the threshold). An upper bound: no ranking of these candidates does better;
- the candidates per video, and how far the best candidate's start and end lie from the
  ground truth (frames, median of absolute errors), per forged modality;
- with soft routing, avg AP and AR if the localizer were told (from the labels) which
  modalities of a fake video were forged (an untouched one's P(modified) divided by 100),
  or which videos are fake (every P of a real video divided by 100): how much better
  routing, or a better video-level decision, could give with the same curves.

    python benchmarks/proposal_ceiling.py --metadata W/media/metadata.json \
        --cache W/features.h5 --runs W/runs/full-s0 --chosen W/lb_full_s0.json [--calibrate-evidence]
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


def best_candidates(candidates: list[list], segments, fps: float) -> list[tuple[float, int, int]]:
    """Per ground-truth segment: (best IoU, start error, end error in frames) over `candidates`
    ([score, start, end, ...]); (0, 0, 0) when there is none."""
    from pipeline.proposals import interval_iou

    found = []
    for start, end in segments:
        ious = [interval_iou(c[1:3], (start, end)) for c in candidates]
        if not ious:
            found.append((0.0, 0, 0))
            continue
        best = candidates[int(np.argmax(ious))]
        found.append((max(ious), round((best[1] - start) * fps), round((best[2] - end) * fps)))
    return found


def ceiling_report(scores: dict, records, cfg) -> dict:
    """AR@N reached, AR@N of a perfect ranking of the candidates, and boundary errors."""
    from pipeline.diagnostics import modality_segments
    from pipeline.metrics import PROTOCOLS, evaluate_predictions
    from pipeline.proposals import all_proposals, labelled_proposals

    protocol = PROTOCOLS["rtdeeploc"]
    thresholds = np.asarray(protocol.ar_iou)
    reached = evaluate_predictions(all_proposals(scores, cfg), records, ap_iou=protocol.ap_iou,
                                   ar_n=protocol.ar_n, ar_iou=protocol.ar_iou)
    everything = dataclasses.replace(cfg, nms="none", max_proposals=10 ** 9)
    recalled = np.zeros((len(protocol.ar_n), len(thresholds)))
    n_segments, n_candidates = 0, []
    errors: dict[str, list] = {"visual": [], "audio": []}
    for record in records:
        if not record.fake_segments:
            continue
        candidates = labelled_proposals(scores[record.file], everything)
        n_candidates.append(len(candidates))
        best = best_candidates(candidates, record.fake_segments, record.fps)
        best_iou = np.asarray([b[0] for b in best])
        covered = (best_iou[:, None] > thresholds[None, :]).sum(axis=0)  # [thresholds]
        recalled += np.minimum(np.asarray(protocol.ar_n)[:, None], covered[None, :])
        n_segments += len(record.fake_segments)
        for modality in errors:
            segments = modality_segments(record, modality)
            errors[modality] += [b[1:] for b in best_candidates(candidates, segments, record.fps)
                                 if b[0] > 0]
    ceiling = recalled / max(n_segments, 1)  # [N, thresholds]

    def median_abs(values, i):
        return float(np.median(np.abs([v[i] for v in values]))) if values else None

    return {"ar_avg": float(reached["ar_avg"]), "ap_avg": float(reached["ap_avg"]),
            "ceiling_ar_avg": float(ceiling.mean()),
            "ceiling_ar": {str(n): float(row.mean()) for n, row in zip(protocol.ar_n, ceiling)},
            "candidates_per_fake_video": float(np.median(n_candidates)) if n_candidates else 0.0,
            "boundary_error_frames": {m: {"start": median_abs(v, 0), "end": median_abs(v, 1),
                                          "segments": len(v)} for m, v in errors.items()}}


# an untouched modality's (or a real video's) P(modified) is divided by this in the oracles:
# its proposals fall below every other's, but keep their order among themselves
ORACLE_DEMOTION = 100.0


def routing_oracles(scores: dict, records, cfg) -> dict:
    """{oracle: {"ap_avg", "ar_avg"}} of soft routing told the truth (module docstring);
    {} for other routings."""
    from data.labels import is_modified
    from pipeline.metrics import PROTOCOLS, evaluate_predictions
    from pipeline.proposals import labelled_proposals, localizer_curves, soft_routing_probabilities

    if cfg.routing != "soft":
        return {}
    protocol = PROTOCOLS["rtdeeploc"]

    def told(record, probs):
        if not record.fake_segments:
            return probs
        return {m: p if is_modified(record.label, m) else p / ORACLE_DEMOTION for m, p in probs.items()}

    def fakes(record, probs):
        return probs if record.fake_segments else {m: p / ORACLE_DEMOTION for m, p in probs.items()}

    out = {}
    for name, rule in (("forged modality known", told), ("fake videos known", fakes)):
        predictions = {}
        for record in records:
            video = scores[record.file]
            probs = soft_routing_probabilities(video, cfg, localizer_curves(video, cfg))
            predictions[record.file] = [p[:3] for p in labelled_proposals(
                video, cfg, modality_probs=rule(record, probs))]
        result = evaluate_predictions(predictions, records, ap_iou=protocol.ap_iou,
                                      ar_n=protocol.ar_n, ar_iou=protocol.ar_iou)
        out[name] = {"ap_avg": float(result["ap_avg"]), "ar_avg": float(result["ar_avg"])}
    return out


def chosen_config(paths: list[Path], run: Path):
    """The dev-chosen "heads + error" localizer of `run` in localization_bench outputs."""
    from pipeline.proposals import ProposalConfig

    for path in paths:
        for report in json.loads(path.read_text())["runs"]:
            if Path(report["run"]).name == run.name:
                settings = report["localizers"]["heads + error"]["config"]
                return ProposalConfig(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in settings.items()})
    raise SystemExit(f"no run named {run.name!r} in {[str(p) for p in paths]}")


def chosen_run_scores(run: Path, chosen: list[Path], cache, records, by_split: dict,
                      calibrate_evidence: bool):
    """(the dev-chosen localizer of `run`, {split: {file: VideoScores}} of its best.pt on the
    splits of `by_split`), the frame evidence refitted on the training split first when asked."""
    from localization_bench import split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.train import calibrate_frame_evidence

    cfg = chosen_config(chosen, run)
    model = load_checkpoint(run / "best.pt").model
    if calibrate_evidence:
        calibrate_frame_evidence(model, cache, [r for r in records if r.split == "train"], "cpu")
    return cfg, split_scores(model, cache, by_split)[1]


def chosen_runs_parser(description: str) -> argparse.ArgumentParser:
    """The options of a script that reads trained runs and their dev-chosen localizers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--chosen", type=Path, nargs="+", required=True,
                        help="localization_bench.py outputs holding each run's dev-chosen localizer")
    parser.add_argument("--calibrate-evidence", action="store_true",
                        help="refit the checkpoints' frame evidence on the training split, as "
                             "localization_bench.py --calibrate-evidence does")
    return parser


def main() -> None:
    parser = chosen_runs_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from localization_bench import open_set
    from pipeline.machine import describe_machine

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, by_split, _ = open_set(args.metadata, args.cache)
    results = []
    for run in args.runs:
        cfg, scores = chosen_run_scores(run, args.chosen, cache, records, by_split,
                                        args.calibrate_evidence)
        row = {"run": str(run), "splits": {s: ceiling_report(scores[s], by_split[s], cfg) for s in SPLITS}}
        for split in SPLITS:
            row["splits"][split]["oracles"] = routing_oracles(scores[split], by_split[split], cfg)
        results.append(row)
        for split, r in row["splits"].items():
            errors = r["boundary_error_frames"]
            print(f"{run.name} {split}: AR {100 * r['ar_avg']:.1f}, perfect ranking of the same "
                  f"candidates {100 * r['ceiling_ar_avg']:.1f} "
                  f"({', '.join(f'@{n} {100 * v:.1f}' for n, v in r['ceiling_ar'].items())}); "
                  f"{r['candidates_per_fake_video']:.0f} candidates per fake video; best candidate's "
                  f"|start| / |end| error, median frames: visual {errors['visual']['start']} / "
                  f"{errors['visual']['end']}, audio {errors['audio']['start']} / {errors['audio']['end']}",
                  flush=True)
            for name, o in r["oracles"].items():
                print(f"{run.name} {split}: {name}: AP {100 * o['ap_avg']:.1f}, AR {100 * o['ar_avg']:.1f} "
                      f"(as chosen: AP {100 * r['ap_avg']:.1f}, AR {100 * r['ar_avg']:.1f})", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"machine": describe_machine(), "runs": results}, indent=1))


if __name__ == "__main__":
    main()
