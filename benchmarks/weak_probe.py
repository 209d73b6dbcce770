"""Does weak supervision itself lose the per-frame evidence? Probes on the same inputs.

Four frame scorers per modality, each trained on the train split's cached features, each
scored with the per-video frame AUC of `pipeline/diagnostics.py` on test and test_unseen:
- frame-supervised MLP: frame labels, which RT-DeepLoc never sees (the ceiling of
  `feature_ceiling.py`; input: the clip-context view, frame minus clip median and its 5- and
  15-frame averages);
- MIL MLP: the same network and input, trained from video labels only, by Top-K MIL (the
  paper's pooling, K = L / 8);
- MIL linear on |deviation|: rtdl's learned deviation scorer (`model/deviation_scorer.py`,
  the module itself), video labels, Top-K MIL;
- the same with non-negative weights (projected after every step, from zero).
Next to them the untrained clip-median deviation. No model of rtdl is trained here.

    python benchmarks/weak_probe.py --metadata W/media/metadata.json --cache W/features.h5
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import set_parser  # noqa: E402 (after the path it lives on)


def train_mil(clips, video_labels, make_net, epochs: int, lr: float, seed: int):
    """Top-K MIL on per-clip inputs [T, F] (or whatever `make_net`'s module takes): BCE of
    the mean of the K = L / 8 highest frame logits against the video label."""
    import torch

    from model.mil import topk_mil_pool

    torch.manual_seed(seed)
    net = make_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    targets = torch.tensor(video_labels, dtype=torch.float32)
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(clips)).split(16):
            losses = []
            for i in batch.tolist():
                logits = net(clips[i])  # [T]
                mask = torch.ones(1, len(logits), dtype=torch.bool)
                pooled = topk_mil_pool(logits[None, :, None], mask, 0.125)[0, 0]
                losses.append(torch.nn.functional.binary_cross_entropy_with_logits(pooled, targets[i]))
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if hasattr(net, "project"):
                net.project()
    net.eval()
    return net


def print_modality_table(signals: dict, fakes, types: dict, modality: str, split: str) -> None:
    """Print the mean per-video frame AUC of every signal ({file: {name: [T]}}) on the
    fake videos of `split`, for `modality`'s forgery types only."""
    from pipeline.diagnostics import format_auc_table, frame_auc_table

    table = frame_auc_table(signals, fakes, types)
    only = {name: {modality: t[modality]} for name, t in table.items() if modality in t}
    print(format_auc_table(only, f"\n{split}, {modality} (mean per-video frame AUC, videos):"),
          flush=True)


def main() -> None:
    parser = set_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modalities", default="visual,audio")
    args = parser.parse_args()

    import torch

    from common import open_training_view
    from data.metadata import records_for_split
    from feature_ceiling import clip_context, train_probe, training_statistics
    from model.deviation_scorer import DeviationScorer
    from pipeline.diagnostics import clip_median_deviation, frame_mask, modality_segments

    cache, records, types, train = open_training_view(args.metadata, args.cache)
    arrays = {r.file: cache.read(r.file) for r in records if r.file in cache}
    for index, modality in enumerate(("visual", "audio")):
        if modality not in args.modalities.split(","):
            continue
        mean, std = training_statistics(arrays, train, index)

        def context(file):
            return clip_context(arrays[file][index], mean, std)

        def standardised(file):  # [T, D] float32, what the model's scorer reads
            return torch.tensor((arrays[file][index] - mean) / std, dtype=torch.float32)

        contexts = [context(r.file) for r in train]
        frame_labels = [frame_mask(modality_segments(r, modality), len(c), r.fps)
                        for r, c in zip(train, contexts)]
        video_labels = [float(bool(modality_segments(r, modality))) for r in train]
        every_frame = np.concatenate(contexts)
        centre, scale = every_frame.mean(0), every_frame.std(0) + 1e-6
        del every_frame
        scaled = [torch.tensor((c - centre) / scale, dtype=torch.float32) for c in contexts]
        width, dim = scaled[0].shape[1], len(mean)

        class Mlp(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Sequential(torch.nn.Linear(width, 128), torch.nn.ReLU(),
                                               torch.nn.Linear(128, 1))

            def forward(self, x):
                return self.net(x).squeeze(-1)

        class Scorer(torch.nn.Module):  # the shipped module on one clip [T, D]
            def __init__(self, non_negative: bool):
                super().__init__()
                self.scorer, self.non_negative = DeviationScorer(dim), non_negative

            def forward(self, x):
                return self.scorer(x[None], torch.ones(1, len(x), dtype=torch.bool))[0]

            def project(self):  # after each step: weights kept >= 0 (from zero, like the module)
                if self.non_negative:
                    with torch.no_grad():
                        self.scorer.weight.clamp_(min=0.0)

        supervised = train_probe(contexts, frame_labels, 6, args.seed)
        mil_mlp = train_mil(scaled, video_labels, Mlp, args.epochs, 1e-3, args.seed)
        standard = [standardised(r.file) for r in train]
        linear = train_mil(standard, video_labels, lambda: Scorer(False), args.epochs, 1e-3, args.seed)
        non_negative = train_mil(standard, video_labels, lambda: Scorer(True), args.epochs, 1e-3,
                                 args.seed)
        for split in ("test", "test_unseen"):
            fakes = [r for r in records_for_split(records, split)
                     if r.file in arrays and modality_segments(r, modality)]
            signals = {}
            with torch.no_grad():
                for r in fakes:
                    c = context(r.file)
                    x = standardised(r.file)
                    signals[r.file] = {
                        "frame-supervised MLP (ceiling)": supervised(c),
                        "MIL MLP (video labels)": mil_mlp(torch.tensor((c - centre) / scale,
                                                                       dtype=torch.float32)).numpy(),
                        "MIL linear on |deviation| (rtdl's scorer)": linear(x).numpy(),
                        "MIL linear, non-negative weights": non_negative(x).numpy(),
                        "clip-median deviation (untrained)": clip_median_deviation(
                            arrays[r.file][index], mean, std)}
            print_modality_table(signals, fakes, types, modality, split)


if __name__ == "__main__":
    main()
