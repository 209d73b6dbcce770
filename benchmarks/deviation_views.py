"""What should the learned deviation scorer read? Its two views, trained alone, per frame.

For each modality, rtdl's learned deviation scorer (`model/deviation_scorer.py`, the module
itself) is trained twice on the train split's cached features, by the same Top-K MIL on
the video labels (K = L / 8, Adam, `--lr`, `--epochs`, batches of 16), once per view:
- "deviation_windows": |frame - clip median| and its 5- and 15-frame running medians;
- "window_deviations": |w-frame mean frame - its clip median| for w = 1, 5, 15, 25.
Each is scored by the mean per-video frame AUC of the forged modality
(`pipeline/diagnostics.py`) on the splits asked for (dev by default: the views are chosen
there). No model of rtdl is trained here; the scorer inside `rtdl train` trains beside the
network at 10x the network's learning rate (3e-3 in `--config demo`) and keeps the best
epoch, so its numbers differ from these.

    python benchmarks/deviation_views.py --metadata W/media/metadata.json --cache W/features.h5
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)


def main() -> None:
    parser = set_parser(__doc__, splits="dev")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modalities", default="visual,audio")
    args = parser.parse_args()

    import numpy as np
    import torch

    from common import open_training_view
    from data.metadata import records_for_split
    from model.config import DEVIATION_VIEWS
    from model.deviation_scorer import DeviationScorer
    from pipeline.diagnostics import modality_segments
    from weak_probe import print_modality_table, train_mil

    cache, records, types, train = open_training_view(args.metadata, args.cache)
    for index, modality in enumerate(("visual", "audio")):
        if modality not in args.modalities.split(","):
            continue
        every_frame = np.concatenate([cache.read(r.file)[index] for r in train])
        mean, std = every_frame.mean(0), every_frame.std(0) + 1e-6
        del every_frame

        def standardised(file: str) -> torch.Tensor:  # [T, D], what the model's scorer reads
            return torch.tensor((cache.read(file)[index] - mean) / std, dtype=torch.float32)

        class OneClip(torch.nn.Module):  # the shipped module on one clip [T, D]
            def __init__(self, view: str):
                super().__init__()
                self.scorer = DeviationScorer(len(mean), view=view)

            def forward(self, x):
                return self.scorer(x[None], torch.ones(1, len(x), dtype=torch.bool))[0]

        inputs = [standardised(r.file) for r in train]
        labels = [float(bool(modality_segments(r, modality))) for r in train]
        scorers = {view: train_mil(inputs, labels, lambda v=view: OneClip(v), args.epochs, args.lr, args.seed)
                   for view in DEVIATION_VIEWS}
        for split in args.splits.split(","):
            fakes = [r for r in records_for_split(records, split)
                     if r.file in cache and modality_segments(r, modality)]
            with torch.no_grad():
                signals = {r.file: {view: scorer(standardised(r.file)).numpy()
                                    for view, scorer in scorers.items()} for r in fakes}
            print_modality_table(signals, fakes, types, modality, split)


if __name__ == "__main__":
    main()
