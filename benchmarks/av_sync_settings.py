"""Choosing the audio-visual desynchrony's settings on dev, per frame (model/av_sync.py).

Fits `AVSync` on the authentic training clips (the first CALIBRATION_VIDEOS, as the
trainer does; inputs standardised with the training split's statistics, as the model does)
for every combination of lags, number of canonical pairs, ridge and window below, and
prints the mean per-video frame AUC of the forged modality on the chosen splits (dev by
default: settings are chosen there, never on test), per modality and forgery type. No
model is trained.

    python benchmarks/av_sync_settings.py --metadata W/media/metadata.json --cache W/features.h5
    python benchmarks/av_sync_settings.py ... --splits test,test_unseen --only-default
    python benchmarks/av_sync_settings.py ... --only-default --agreements product,likelihood_ratio
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)

LAGS = {"v1/a5": ((0,), (-2, -1, 0, 1, 2)),
        "v3/a7": ((-1, 0, 1), (-3, -2, -1, 0, 1, 2, 3)),
        "v5/a9": ((-2, -1, 0, 1, 2), (-4, -3, -2, -1, 0, 1, 2, 3, 4))}
COMPONENTS = (8, 16, 32)
RIDGES = (0.1, 0.3)
WINDOWS = (9, 15, 25)


def main() -> None:
    parser = set_parser(__doc__, splits="dev")
    parser.add_argument("--only-default", action="store_true",
                        help="only the settings the model uses (model/av_sync.py's constants)")
    parser.add_argument("--agreements", default="product",
                        help="comma-separated agreements to score each setting with "
                             "(model/av_sync.py: product, likelihood_ratio)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from common import open_training_view
    from data.metadata import records_for_split
    from model import av_sync
    from model.config import AV_SYNC_AGREEMENTS
    from model.normalize import frame_statistics
    from pipeline.diagnostics import frame_auc_table
    from pipeline.train import CALIBRATION_VIDEOS

    cache, records, types, train = open_training_view(args.metadata, args.cache)
    arrays = {r.file: cache.read(r.file) for r in records if r.file in cache}
    (v_mean, v_std), (a_mean, a_std) = (frame_statistics(arrays[r.file][i] for r in train) for i in (0, 1))

    def standardised(file):
        visual, audio = arrays[file]
        return (torch.tensor((visual - v_mean) / v_std, dtype=torch.float32),
                torch.tensor((audio - a_mean) / a_std, dtype=torch.float32))

    reals = [r.file for r in train if not r.is_fake][:CALIBRATION_VIDEOS]
    splits = {s: [r for r in records_for_split(records, s) if r.file in arrays]
              for s in args.splits.split(",")}
    default = ("v3/a7", av_sync.COMPONENTS, av_sync.RIDGE, av_sync.WINDOW)
    assert LAGS[default[0]] == (av_sync.VISUAL_LAGS, av_sync.AUDIO_LAGS)
    grid = [default] if args.only_default else list(itertools.product(LAGS, COMPONENTS, RIDGES, WINDOWS))
    print(f"fitted on {len(reals)} authentic training clips; frame AUC of the forged modality")
    agreements = args.agreements.split(",")
    unknown = sorted(set(agreements) - set(AV_SYNC_AGREEMENTS))
    if unknown:
        parser.error(f"--agreements: unknown {unknown}; choose from {list(AV_SYNC_AGREEMENTS)}")
    print("| lags | K | ridge | window | agreement | split | visual | audio | mean | per type |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    fitted = {}
    for lags, k, ridge, window in grid:
        key = (lags, k, ridge)
        if key not in fitted:  # the window does not change the fit
            sync = av_sync.AVSync(v_mean.shape[0], a_mean.shape[0], visual_lags=LAGS[lags][0],
                                  audio_lags=LAGS[lags][1], components=k, ridge=ridge)
            sync.fit(lambda: (standardised(f) for f in reals))
            fitted = {key: sync}
        sync = fitted[key]
        sync.window = window
        for agreement, (split, recs) in itertools.product(agreements, splits.items()):
            sync.agreement = agreement
            signals = {}
            for r in recs:
                visual, audio = standardised(r.file)
                mask = torch.ones(1, len(visual), dtype=torch.bool)
                signals[r.file] = {"desync": sync(visual[None], audio[None], mask)[0].numpy()}
            table = frame_auc_table(signals, recs, types)["desync"]
            va, aa = table["visual"]["all"]["auc"], table["audio"]["all"]["auc"]
            per = ", ".join(f"{kind} {v['auc']:.3f}" for m in ("visual", "audio")
                            for kind, v in table[m].items() if kind != "all")
            mark = " (used)" if (lags, k, ridge, window) == default else ""
            print(f"| {lags}{mark} | {k} | {ridge:g} | {window} | {agreement} | {split} | {va:.3f} | "
                  f"{aa:.3f} | {np.mean([va, aa]):.3f} | {per} |", flush=True)


if __name__ == "__main__":
    main()
