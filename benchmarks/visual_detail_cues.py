"""Untrained visual cues, per frame: does a region's detail mark the forged frames?

The learned visual deviation scorer ranks held-out blur inverted (BENCHMARKS.md, "Each
learned deviation scorer at its own epoch"): it learns the seen forgeries' directions, and
blur removes change. This script asks whether a
cue with no learned direction does better, on the weight-free visual descriptor
(`extractors/lowlevel_visual.py`, `--visual-model lowlevel`): statistics 16-17 of each of
the 16 regions are its Laplacian and fine-texture energy relative to the frame's median
region, which blurring or blending a face lowers against its own background.

Cues (higher = more likely forged; each then smoothed by a running median of W frames):
- `median_deviation` (the reference): mean over all 320 dimensions of |x - clip median|,
  each dimension over its spread among authentic training frames;
- `detail_vs_clip`: the largest over regions of the mean over statistics 16-17 of
  |x - clip median| / its spread in authentic training clips; fails where a forgery covers
  most of the clip (the median frame is then forged);
- `detail_vs_authentic`: the same against each (region, statistic)'s mean and spread over
  authentic training frames instead of the clip's median (no clip reference);
- `detail_loss_vs_authentic`: one-sided, only detail *below* the authentic mean (a chosen
  direction: blur and blending lower detail; a splice or re-render may not).
Spreads are fitted on the first CALIBRATION_VIDEOS authentic training clips, as the
trainer's calibrations are. Prints mean per-video frame AUC of forged visual frames per
split and forgery type; choose on dev only.

    python benchmarks/visual_detail_cues.py --metadata W/media/metadata.json --cache W/features.h5
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import open_training_view, set_parser  # noqa: E402 (after the path it lives on)

REGIONS, STATS = 16, 20
DETAIL = [16, 17]  # relative Laplacian and fine-texture energy (extractors/lowlevel_visual.py)
WINDOWS = (1, 5, 9, 15)


def running_median(x, window: int):
    """Centred running median of a [T] curve, edges repeated."""
    import numpy as np

    if window <= 1:
        return x
    half = window // 2
    padded = np.pad(x, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def main() -> None:
    parser = set_parser(__doc__, splits="dev,test,test_unseen")
    args = parser.parse_args()

    import numpy as np

    from pipeline.diagnostics import frame_auc_table
    from pipeline.train import CALIBRATION_VIDEOS

    view = open_training_view(args.metadata, args.cache)
    if view.cache.settings["visual"].get("kind") != "lowlevel":
        raise SystemExit(f"{args.cache}: visual features are "
                         f"{view.cache.settings['visual'].get('kind')!r}; this reads the lowlevel descriptor")
    reals = [r.file for r in view.train if not r.is_fake][:CALIBRATION_VIDEOS]
    authentic = [view.cache.read(f)[0] for f in reals]
    stacked = np.concatenate(authentic)  # [frames, 320]
    centred = np.concatenate([v - np.median(v, axis=0) for v in authentic])
    spread_all = np.median(np.abs(centred), axis=0) + 1e-6  # per dimension, around the clip median
    detail = stacked.reshape(-1, REGIONS, STATS)[:, :, DETAIL]
    mean_auth, sd_auth = detail.mean(axis=0), detail.std(axis=0) + 1e-6  # [16, 2]
    spread_clip = (np.median(np.abs(centred.reshape(-1, REGIONS, STATS)[:, :, DETAIL]), axis=0) + 1e-6)
    print(f"fitted on {len(reals)} authentic training clips ({len(stacked)} frames)")

    def cues(visual):
        regions = visual.reshape(len(visual), REGIONS, STATS)[:, :, DETAIL]
        z_clip = np.abs(regions - np.median(regions, axis=0)) / spread_clip
        z_auth = (regions - mean_auth) / sd_auth
        return {"median_deviation": (np.abs(visual - np.median(visual, axis=0)) / spread_all).mean(1),
                "detail_vs_clip": z_clip.mean(2).max(1),
                "detail_vs_authentic": np.abs(z_auth).mean(2).max(1),
                "detail_loss_vs_authentic": np.clip(-z_auth, 0, None).mean(2).max(1)}

    print("| split | cue | window | visual | per type |")
    print("| --- | --- | --- | --- | --- |")
    for split in args.splits.split(","):
        recs = [r for r in view.records if r.split == split and r.file in view.cache]
        raw = {r.file: cues(view.cache.read(r.file)[0]) for r in recs}
        for window in WINDOWS:
            signals = {f: {name: running_median(c, window) for name, c in curves.items()}
                       for f, curves in raw.items()}
            table = frame_auc_table(signals, recs, view.types)
            for name in table:
                row = table[name].get("visual", {})
                if not row:
                    continue
                per = ", ".join(f"{kind} {v['auc']:.3f}" for kind, v in row.items() if kind != "all")
                print(f"| {split} | {name} | {window} | {row['all']['auc']:.3f} | {per} |", flush=True)


if __name__ == "__main__":
    main()
