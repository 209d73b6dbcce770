"""Choosing the spectral detail's settings on dev, per frame (model/spectral_detail.py).

Fits `SpectralDetail` on the authentic training clips (the first CALIBRATION_VIDEOS, as
the trainer does) for every combination of bands, envelope terms and window below, and
prints the mean per-video frame AUC of forged audio on the chosen splits (dev by default:
settings are chosen there, never on test), per forgery type. No model is trained. The
cache's audio features must be log-mel (`--audio-model logmel`).

    python benchmarks/spectral_detail_settings.py --metadata W/media/metadata.json --cache W/features.h5
    python benchmarks/spectral_detail_settings.py ... --splits test,test_unseen --only-default
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)

BANDS = {"0-40": (0 / 64, 40 / 64), "10-40": (10 / 64, 40 / 64), "10-64": (10 / 64, 64 / 64),
         "0-64": (0 / 64, 64 / 64)}
ENVELOPE_TERMS = (4, 8, 12, 16)
WINDOWS = (5, 9, 15)


def main() -> None:
    parser = set_parser(__doc__, splits="dev")
    parser.add_argument("--only-default", action="store_true",
                        help="only the settings the model uses (model/spectral_detail.py's constants)")
    args = parser.parse_args()
    unknown = sorted(set(args.splits.split(",")) - {"dev", "test", "test_unseen"})
    if unknown:
        parser.error(f"--splits: unknown {unknown}; choose from dev, test, test_unseen")

    import torch

    from localization_bench import open_set
    from model import spectral_detail
    from pipeline.diagnostics import frame_auc_table
    from pipeline.machine import describe_machine
    from pipeline.train import CALIBRATION_VIDEOS

    torch.set_num_threads(1)
    print(describe_machine(), flush=True)
    cache, records, by_split, types = open_set(args.metadata, args.cache)
    audio_settings = cache.settings["audio"]
    if audio_settings.get("kind") != "logmel":
        raise SystemExit(f"{args.cache}: audio features are {audio_settings.get('kind')!r}; "
                         "the spectral detail reads log-mel bands")
    n_mels = int(audio_settings["n_mels"])
    reals = [r.file for r in records if r.split == "train" and not r.is_fake and r.file in cache]
    audio = {f: torch.as_tensor(cache.read(f)[1]) for f in reals[:CALIBRATION_VIDEOS]}
    splits = {s: [r for r in by_split[s] if r.file in cache] for s in args.splits.split(",")}
    default = next(name for name, share in BANDS.items() if share == spectral_detail.BANDS)
    default = (default, spectral_detail.ENVELOPE_TERMS, spectral_detail.WINDOW)
    grid = [default] if args.only_default else list(itertools.product(BANDS, ENVELOPE_TERMS, WINDOWS))
    print(f"fitted on {len(audio)} authentic training clips; frame AUC of forged audio")
    print("| bands (of 64) | envelope terms | window | split | audio | per type |")
    print("| --- | --- | --- | --- | --- | --- |")
    fitted = {}
    for bands, terms, window in grid:
        if (bands, terms) not in fitted:  # the window does not change the fit
            detail = spectral_detail.SpectralDetail(bands=BANDS[bands], envelope_terms=terms)
            detail.fit(lambda: iter(audio.values()), n_mels)
            fitted = {(bands, terms): detail}
        detail = fitted[(bands, terms)]
        detail.window = window
        for split, recs in splits.items():
            signals = {}
            for r in recs:
                clip = torch.as_tensor(cache.read(r.file)[1])[None]
                mask = torch.ones(1, clip.shape[1], dtype=torch.bool)
                signals[r.file] = {"detail": detail(clip, mask)[0].numpy()}
            table = frame_auc_table(signals, recs, types)["detail"]["audio"]
            per = ", ".join(f"{kind} {v['auc']:.3f}" for kind, v in table.items() if kind != "all")
            mark = " (used)" if (bands, terms, window) == default else ""
            print(f"| {bands}{mark} | {terms} | {window} | {split} | {table['all']['auc']:.3f} | "
                  f"{per} |", flush=True)


if __name__ == "__main__":
    main()
