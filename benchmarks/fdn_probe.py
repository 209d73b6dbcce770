"""Can a reconstruction error mark these forgeries at all? The FDN alone, trained to the end.

In the full model the FDN's error sits near chance on `rtdl synth` (0.50-0.57 frame AUC,
BENCHMARKS.md), while on the recorded footage of issue 9 the audio error reached 0.80.
Is that the model's recipe (a 0.1 loss weight, 4 epochs, a target the classification
losses reshape) or the data? This trains the paper's masked autoencoder by itself, per
modality, on the standardised inputs of the authentic training clips only (Eq. 2, the
fixed input as the target, as `fdn_target=input`), for many more steps than the model's
recipe gives it, then reports the mean per-video frame AUC of its deterministic error
(the complementary masks of `model/fdn.py`) on a split, per forged modality and forgery
type, with the untrained distance from the clip median as the reference. (The AUC is per
video, so any per-clip shift of the error, such as subtracting its clip median, leaves it
unchanged.)

    python benchmarks/fdn_probe.py --metadata W/media/metadata.json --cache W/features.h5 \
        --splits dev,test_unseen --epochs 40 [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--splits", default="dev", help="comma-separated splits to report")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=64, help="d_model of the autoencoder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args()

    import torch
    from torch import nn

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from model.fdn import MaskedAutoencoder1d, complementary_masks, random_masking
    from pipeline.dataset import pad_sequences
    from pipeline.diagnostics import clip_median_deviation, frame_auc_table, load_forgery_types
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    torch.manual_seed(args.seed)
    records = load_metadata(args.metadata)
    types = load_forgery_types(args.metadata)
    cache = FeatureCache(args.cache)
    train = [r for r in records_for_split(records, "train") if not r.is_fake]
    splits = [name for name in args.splits.split(",") if name]
    evaluated = [r for name in splits for r in records_for_split(records, name)]

    def read(record_list):
        clips = [cache.read(r.file) for r in record_list]
        return [np.asarray(v, np.float32) for v, _ in clips], [np.asarray(a, np.float32) for _, a in clips]

    train_visual, train_audio = read(train)
    eval_visual, eval_audio = read(evaluated)
    errors: dict[str, dict[str, np.ndarray]] = {r.file: {} for r in evaluated}
    for modality, train_x, eval_x in (("visual", train_visual, eval_visual), ("audio", train_audio, eval_audio)):
        frames = np.concatenate(train_x)
        mean, std = frames.mean(0), frames.std(0) + 1e-6
        standardise = [(x - mean) / std for x in train_x]
        dim = frames.shape[1]
        project_in, project_out = nn.Linear(dim, args.width), nn.Linear(args.width, dim)
        mae = MaskedAutoencoder1d(args.width, 2 * args.width, encoder_layers=2, decoder_layers=1,
                                  heads=4, ff_mult=2, dropout=0.1)
        params = [*project_in.parameters(), *project_out.parameters(), *mae.parameters()]
        optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
        generator = torch.Generator().manual_seed(args.seed)
        started = time.perf_counter()
        for epoch in range(args.epochs):
            order = torch.randperm(len(standardise), generator=generator).tolist()
            total = 0.0
            for i in range(0, len(order), args.batch_size):
                batch = [standardise[j] for j in order[i:i + args.batch_size]]
                x, _, mask = pad_sequences(batch, batch)
                hidden = random_masking(mask, 0.75, generator)
                recon = project_out(mae(project_in(x), mask, hidden))
                error = (recon - x).pow(2).mean(-1)
                loss = (error * hidden).sum() / hidden.sum().clamp_min(1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach())
            if epoch in (0, args.epochs - 1):
                print(f"{modality} epoch {epoch + 1}: hidden-frame loss {total / max(1, len(order) // args.batch_size):.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        mae.eval()
        with torch.no_grad():
            for record, x in zip(evaluated, eval_x):
                z = torch.from_numpy((x - mean) / std)[None]  # [1, T, C]
                valid = torch.ones(1, z.shape[1], dtype=torch.bool)
                n = 4
                hidden_n = complementary_masks(valid, n)  # [n, 1, T]
                embedded = project_in(z).repeat(n, 1, 1)
                recon_n = project_out(mae(embedded, valid.repeat(n, 1), hidden_n[:, 0]))  # [n, T, C]
                weight = hidden_n[:, 0, :, None].float()
                recon = (recon_n * weight).sum(0) / weight.sum(0).clamp_min(1)
                error = (recon - z[0]).pow(2).mean(-1).numpy()
                errors[record.file][f"{modality} reconstruction error"] = error
                errors[record.file][f"{modality} median deviation (untrained)"] = \
                    clip_median_deviation(x, mean, std)
    tables = {}
    for name in splits:
        table = tables[name] = frame_auc_table(errors, records_for_split(evaluated, name), types)
        kinds = sorted({(m, t) for signal in table.values() for m, by_type in signal.items() for t in by_type})
        print(f"mean per-video frame AUC on {name} (forged frames of the forged modality against "
              f"its authentic frames; 0.5 = chance)")
        print("| signal | " + " | ".join(f"{m} {t}" for m, t in kinds) + " |")
        print("| --- |" + " --- |" * len(kinds))
        for signal, by_modality in table.items():
            cells = [by_modality.get(m, {}).get(t) for m, t in kinds]
            print(f"| {signal} | " + " | ".join(f"{c['auc']:.3f} ({c['n']})" if c else "" for c in cells) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"epochs": args.epochs, "tables": tables}, indent=1) + "\n")


if __name__ == "__main__":
    main()
