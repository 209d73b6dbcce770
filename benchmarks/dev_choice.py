"""Why does dev choose the localizer it chooses? Per frame, then per half of dev.

For a dev split made of clips with the seen forgery types and clips with validation types
(`rtdl synth --validation-types`, held out of training), and one trained run:
1. per-frame ROC AUC of every signal on dev, per modality and forgery type
   (`pipeline/diagnostics.py`), so the validation types can be read beside the seen ones;
2. the localizer dev chose (`rtdl train`'s grid, as `localization_bench.py` tunes it), and
   the same settings with each other evidence kind, evaluated on each half of dev apart
   (seen-type clips, validation-type clips; each half keeps its share of real clips) and on
   the whole: which half pulls the choice where.

A record is in the validation half when its file name starts with `--validation-prefix`
(how the 2,100-clip benchmark's validation clips were added: BENCHMARKS.md) or when any
of its forgery types is in `--validation-types`; real clips follow their folder.

    python benchmarks/dev_choice.py --metadata W/media/metadata.json --cache "W/features*.h5" \
        --run W/runs/full-own-s0 --out dev_choice.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata", type=Path, required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--validation-prefix", default="dev_validation/")
    parser.add_argument("--validation-types", default="face_recolour,pitch_shift")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from data.metadata import records_for_split
    from localization_bench import evaluate, open_set, split_scores
    from pipeline.checkpoint import load_checkpoint
    from pipeline.diagnostics import format_auc_table, frame_auc_table, model_signals
    from pipeline.machine import describe_machine
    from pipeline.proposal_tuning import tune_on_scores
    from pipeline.proposals import EVIDENCE_KINDS, all_proposals, routed_curve
    from pipeline.train import calibrate_frame_evidence

    torch.set_num_threads(2)
    print(describe_machine(), flush=True)
    cache, records, by_split, types = open_set(args.metadata, args.cache)
    validation_types = set(args.validation_types.split(","))
    dev = by_split["dev"]
    in_validation = {r.file for r in dev if r.file.startswith(args.validation_prefix)
                     or validation_types & {t for by_modality in types.get(r.file, {}).values()
                                              for t in by_modality}}
    halves = {"seen half": [r for r in dev if r.file not in in_validation],
              "validation half": [r for r in dev if r.file in in_validation], "whole dev": dev}

    model = load_checkpoint(args.run / "best.pt").model
    calibrate_frame_evidence(model, cache, records_for_split(records, "train"), "cpu")
    outputs, scores = split_scores(model, cache, {"dev": dev})
    chosen, _ = tune_on_scores(scores["dev"], dev)
    signals = model_signals(outputs["dev"], {f: routed_curve(s, chosen) for f, s in scores["dev"].items()})
    auc = frame_auc_table(signals, dev, types)
    print(format_auc_table(auc, f"\n{args.run.name} frame AUC, dev ({len(halves['validation half'])} "
                                f"of {len(dev)} clips in the validation half)"))

    rows = {}
    for kind in EVIDENCE_KINDS:
        config = dataclasses.replace(chosen, evidence=kind)
        rows[kind] = {name: evaluate(all_proposals({r.file: scores["dev"][r.file] for r in half}, config), half)
                      for name, half in halves.items()}
    print(f"\nchosen: {dataclasses.asdict(chosen)}\n")
    print("| evidence (other settings as chosen) | " + " | ".join(f"{h} AP / AR" for h in halves) + " |")
    print("| --- |" + " --- |" * len(halves))
    for kind, by_half in rows.items():
        mark = " (chosen)" if kind == chosen.evidence else ""
        print(f"| {kind}{mark} | " + " | ".join(
            f"{100 * m['ap_avg']:.1f} / {100 * m['ar_avg']:.1f}" for m in by_half.values()) + " |")
    args.out.write_text(json.dumps({"machine": describe_machine(), "run": str(args.run),
                                    "chosen": dataclasses.asdict(chosen), "frame_auc_dev": auc,
                                    "by_evidence": rows}, indent=1, default=float))


if __name__ == "__main__":
    main()
