"""Which cue ranks a video's candidate segments better? Dev only, settings held fixed.

Recall at 2 and 5 proposals is where rtdl's localizer loses most against a perfect ranking of
its own candidates (`proposal_ceiling.py`). For each trained run, with the localizer its dev
split chose (read from a `localization_bench.py` output) held fixed, this adds one ranking
cue at a time to every candidate's score and reports dev avg AP, avg AR and the tuning
objective (their mean), and how many top-2 proposals of videos with two or more forged spans
overlap two spans or more (a run over both spans and the gap between them). The cues:
- valley: minus the run's deepest dip (`proposals.run_valley`, what `valley_weight` adds);
- stability: the share of threshold levels that hold a run with IoU >= 0.8 to this one (a
  span that many levels agree on is a span of the curve, not of one level);
- edge: the smaller of the two steps at the run's ends (mean of 2 frames inside minus the
  mean of 2 frames outside);
- split: minus 1 where some threshold level holds two or more runs inside this one.
The cues other than the valley are computed here, around `proposals.run_contrasts` (which
sees each curve and its runs), and were not adopted.

    python benchmarks/ranking_cues.py --metadata W/media/metadata.json --cache W/features.h5 \
        --runs W/runs/med-s0 W/runs/med-s1 --chosen W/lb.json --calibrate-evidence
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

# (name, the extra cue, its weight; a ProposalConfig change for the valley)
VARIANTS = [("chosen, no valley", None, 0.0, {"valley_weight": 0.0}),
            *[(f"valley {w:g}", None, 0.0, {"valley_weight": w}) for w in (0.5, 1.0, 2.0)],
            *[(f"stability {w:g}", "stability", w, {"valley_weight": 0.0}) for w in (0.1, 0.25, 0.5)],
            *[(f"edge {w:g}", "edge", w, {"valley_weight": 0.0}) for w in (0.5, 1.0)],
            *[(f"split {w:g}", "split", w, {"valley_weight": 0.0}) for w in (0.25, 0.5)]]


def cue_values(cue: str, scores: np.ndarray, runs, cfg) -> np.ndarray:
    """[N] the cue of each run (start, end exclusive) of one curve."""
    if cue == "edge":
        steps = []
        for start, end in runs:
            ends = []
            if start > 0:
                ends.append(scores[start:min(end, start + 2)].mean() - scores[max(0, start - 2):start].mean())
            if end < len(scores):
                ends.append(scores[max(start, end - 2):end].mean() - scores[end:end + 2].mean())
            steps.append(min(ends) if ends else 0.0)
        return np.asarray(steps)
    from pipeline.proposals import interval_iou, level_runs

    levels = level_runs(scores, cfg)
    if cue == "split":
        return -np.asarray([float(any(sum(a >= s and b <= e for a, b in level) >= 2 for level in levels))
                            for s, e in runs])
    return np.asarray([np.mean([any(interval_iou(run, other) >= 0.8 for other in level)
                                for level in levels]) if levels else 0.0 for run in runs])


def with_cue(cue: str | None, weight: float, cfg):
    """A stand-in for `proposals.run_contrasts` that adds `weight` x the cue (None: as is)."""
    from pipeline import proposals

    plain = proposals.run_contrasts

    def contrasts(scores, runs, outer_ratio):
        values = plain(scores, runs, outer_ratio)
        if cue is None or not len(runs):
            return values
        return values + weight * cue_values(cue, np.asarray(scores), runs, cfg)

    return contrasts


def merged_tops(predictions: dict, records) -> tuple[int, int]:
    """(top-2 proposals overlapping two forged spans or more, top-2 proposals) over the videos
    with two or more spans."""
    from pipeline.proposals import interval_iou

    merged = tops = 0
    for record in records:
        if len(record.fake_segments) < 2:
            continue
        for proposal in predictions.get(record.file, [])[:2]:
            tops += 1
            merged += sum(interval_iou(proposal[1:3], span) > 0.1 for span in record.fake_segments) >= 2
    return merged, tops


def main() -> None:
    from proposal_ceiling import chosen_config, chosen_runs_parser

    args = chosen_runs_parser(__doc__.split("\n\n")[0]).parse_args()

    import torch

    from localization_bench import evaluate, open_set, split_scores
    from pipeline import proposals
    from pipeline.checkpoint import load_checkpoint
    from pipeline.machine import describe_machine
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, by_split, _ = open_set(args.metadata, args.cache)
    dev = by_split["dev"]
    print("| run | variant | dev avg AP | dev avg AR | objective | top-2 over >= 2 spans |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        chosen = chosen_config(args.chosen, run)
        model = load_checkpoint(run / "best.pt").model
        if args.calibrate_evidence:
            calibrate_frame_evidence(model, cache, [r for r in records if r.split == "train"], "cpu")
        _, scores = split_scores(model, cache, {"dev": dev})
        plain = proposals.run_contrasts
        for name, cue, weight, change in VARIANTS:
            cfg = dataclasses.replace(chosen, **change)
            proposals.run_contrasts = with_cue(cue, weight, cfg)
            try:
                predictions = proposals.all_proposals(scores["dev"], cfg)
            finally:
                proposals.run_contrasts = plain
            m = evaluate(predictions, dev)
            merged, tops = merged_tops(predictions, dev)
            print(f"| {run.name} | {name} | {100 * m['ap_avg']:.2f} | {100 * m['ar_avg']:.2f} | "
                  f"{50 * (m['ap_avg'] + m['ar_avg']):.2f} | {merged} / {tops} |", flush=True)


if __name__ == "__main__":
    main()
