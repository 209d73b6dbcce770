"""Where AR@2 is lost within a video, and whether the audio curve's ends should snap elsewhere.

`proposal_ceiling.py` showed that recall is lost in the order of a video's own candidates
(a perfect ranking of the same candidates reaches avg AR 64 on seen types). This script
looks inside that order, for each trained run and the localizer its dev split chose (read
from a `localization_bench.py` output), on one split (default dev):

1. every ground-truth segment of a fake video (the protocol's `fake_periods`, labelled by
   the modality whose period it overlaps most) in one of: hit by one of the top N proposals
   (IoU >= 0.5, with the best IoU among them bucketed), first hit ranked below N, or no
   proposal at IoU >= 0.5 at all;
2. for each segment whose first hit is ranked below N, what the N proposals above it are:
   another true segment, a segment inside or around this one (IoU < 0.5), a partial
   overlap, or a false alarm (no overlap with any true segment), and which curve made
   each ("visual" / "audio" with soft routing);
3. with soft routing, dev avg AP / AR with the chosen settings held fixed and only the
   frames the audio curve's runs snap to replaced: the picture's change (what the
   localizer does; it must reproduce the chosen numbers, a check of this script), the
   audio's cepstral change (`boundary_cues.cepstral_change`), no snapping, or the larger
   of the two changes' within-clip percentiles.

    python benchmarks/recall_loss.py --metadata W/media/metadata.json --cache W/features.h5 \
        --runs W/runs/full-s0 --chosen W/lb.json [--split dev] [--top 2]
"""
from __future__ import annotations

import collections
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

HIT_IOU = 0.5  # the protocol's lowest AR threshold
IOU_BUCKETS = ((0.9, "IoU >= 0.9"), (0.8, "IoU 0.8-0.9"), (HIT_IOU, "IoU 0.5-0.8"))


def segment_modality(record, segment) -> str:
    """"visual", "audio" or "both": the modalities whose forged periods overlap `segment`
    by IoU > 0.5 (the protocol's segments merge touching periods of the two)."""
    from pipeline.diagnostics import modality_segments
    from pipeline.proposals import interval_iou

    found = [m for m in ("visual", "audio")
             if any(interval_iou(segment, s) > 0.5 for s in modality_segments(record, m))]
    return "both" if len(found) == 2 else (found[0] if found else "merged")


def relation(proposal, segment, segments) -> str:
    """How a proposal [start, end] that is not a hit of `segment` relates to the truth."""
    from pipeline.proposals import interval_iou

    if max(interval_iou(proposal, s) for s in segments) >= HIT_IOU:
        return "another true segment"
    overlap = max(0.0, min(proposal[1], segment[1]) - max(proposal[0], segment[0]))
    if overlap > 0.8 * (proposal[1] - proposal[0]):
        return "inside it (too short)"
    if overlap > 0.8 * (segment[1] - segment[0]):
        return "around it (too long)"
    if any(min(proposal[1], s[1]) > max(proposal[0], s[0]) for s in segments):
        return "partial overlap with a true segment"
    return "false alarm (no true segment)"


def ranking_losses(scores: dict, records, cfg, top: int) -> tuple[collections.Counter, collections.Counter]:
    """(outcome per (modality, outcome) of every true segment, the proposals above a missed
    one per (modality, curve, relation))."""
    from pipeline.proposals import interval_iou, labelled_proposals

    outcomes, above = collections.Counter(), collections.Counter()
    for record in records:
        segments = [tuple(s) for s in record.fake_segments]
        if not segments:
            continue
        proposals = labelled_proposals(scores[record.file], cfg)
        for segment in segments:
            modality = segment_modality(record, segment)
            ious = [interval_iou(p[1:3], segment) for p in proposals]
            first = next((i for i, v in enumerate(ious) if v >= HIT_IOU), None)
            if first is None:
                outcomes[(modality, "no proposal at IoU >= 0.5")] += 1
                continue
            if first >= top:
                outcomes[(modality, f"first hit ranked below {top}")] += 1
                for p in proposals[:top]:
                    above[(modality, p[3], relation(p[1:3], segment, segments))] += 1
                continue
            best = max(ious[:top])
            outcomes[(modality, f"hit in the top {top}, " +
                      next(name for floor, name in IOU_BUCKETS if best >= floor))] += 1
    return outcomes, above


def audio_snap_proposals(video, cfg, audio_change) -> list[list[float]]:
    """Soft routing's proposals of one video with the audio curve's runs snapped to
    `audio_change` (None: not snapped) and the visual curve's to the picture's change:
    each modality proposes alone, unsuppressed, then the two are suppressed together as
    `labelled_proposals` does."""
    from pipeline.proposals import (labelled_proposals, localizer_curves, soft_routing_probabilities,
                                    suppress_and_rank)

    probs = soft_routing_probabilities(video, cfg, localizer_curves(video, cfg))
    loose = dataclasses.replace(cfg, nms="none", max_proposals=10 ** 9)
    pooled = labelled_proposals(video, loose, modality_probs={"visual": probs["visual"]})
    pooled += labelled_proposals(dataclasses.replace(video, visual_change=audio_change), loose,
                                 modality_probs={"audio": probs["audio"]})
    return [p[:3] for p in suppress_and_rank([p[:3] for p in pooled], cfg)]


def snap_sources(scores: dict, records, cfg, audio_changes: dict) -> dict:
    """{source: {"ap_avg", "ar_avg"}} of the audio curve snapping to each source (module
    docstring, item 3); {} unless the localizer routes softly and snaps."""
    from localization_bench import evaluate
    from pipeline.proposals import rank_normalize

    if cfg.routing != "soft" or not cfg.snap_frames:
        return {}
    out = {}
    for source in ("picture (as chosen)", "audio cepstral change", "nowhere",
                   "larger percentile of the two"):
        predictions = {}
        for record in records:
            video = scores[record.file]
            change = {"picture (as chosen)": video.visual_change,
                      "audio cepstral change": audio_changes[record.file],
                      "nowhere": None,
                      "larger percentile of the two": np.maximum(
                          rank_normalize(video.visual_change),
                          rank_normalize(audio_changes[record.file]))}[source]
            predictions[record.file] = audio_snap_proposals(video, cfg, change)
        out[source] = evaluate(predictions, records)
    return out


def main() -> None:
    from proposal_ceiling import chosen_run_scores, chosen_runs_parser

    parser = chosen_runs_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--top", type=int, default=2, help="N of the AR@N looked into")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from boundary_cues import cepstral_change
    from localization_bench import evaluate, open_set
    from pipeline.machine import describe_machine
    from pipeline.proposals import all_proposals

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, _, _ = open_set(args.metadata, args.cache)
    split_records = [r for r in records if r.split == args.split]
    n_mels = int(cache.settings.get("audio", {}).get("n_mels", 0))
    results, audio_changes = [], {}
    for run in args.runs:
        cfg, scores = chosen_run_scores(run, args.chosen, cache, records,
                                        {args.split: split_records}, args.calibrate_evidence)
        scores = scores[args.split]
        if n_mels and not audio_changes:  # once, on the timeline of the model's outputs
            for record in split_records:
                change = cepstral_change(np.asarray(cache.read(record.file)[1], np.float32), n_mels)
                length = len(scores[record.file].visual_change)
                audio_changes[record.file] = np.pad(change, (0, max(0, length - len(change))))[:length]
        outcomes, above = ranking_losses(scores, split_records, cfg, args.top)
        sources = snap_sources(scores, split_records, cfg, audio_changes) if n_mels else {}
        chosen = evaluate(all_proposals(scores, cfg), split_records)
        results.append({"run": str(run), "chosen": chosen,
                        "outcomes": [[*k, v] for k, v in sorted(outcomes.items())],
                        "above_missed": [[*k, v] for k, v in sorted(above.items())],
                        "audio_snap_sources": sources})
        total = sum(outcomes.values())
        print(f"\n{run.name} {args.split}: AP {100 * chosen['ap_avg']:.2f}, AR {100 * chosen['ar_avg']:.2f}; "
              f"{total} true segments of fake videos")
        for (modality, outcome), count in sorted(outcomes.items()):
            print(f"  {modality:6s} {outcome:34s} {count:4d}  {count / total:.3f}")
        print(f"  above a segment first hit below rank {args.top}: (segment's modality, curve, relation)")
        for key, count in sorted(above.items(), key=lambda kv: -kv[1]):
            print(f"  {key} {count}")
        for source, value in sources.items():
            print(f"  audio curve snapped to {source}: AP {100 * value['ap_avg']:.2f}, "
                  f"AR {100 * value['ar_avg']:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"machine": describe_machine(), "split": args.split,
                                        "top": args.top, "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
