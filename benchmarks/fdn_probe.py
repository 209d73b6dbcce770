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


def train_authentic_mae(clips: list, *, epochs: int, seed: int = 0, width: int = 64,
                        batch_size: int = 16, lr: float = 1e-3, label: str = ""):
    """The paper's masked autoencoder (Sec. 3.2) trained alone on authentic clips [T, C]:
    a linear embedding of the standardised input, `MaskedAutoencoder1d`, a linear read-out,
    Eq. 2 on the hidden frames against the fixed input; masks drawn from a generator seeded
    with `seed`, weights from torch's global RNG. Returns a function clip [T, C] -> per-frame
    error [T], the deterministic error of the complementary masks (model/fdn.py)."""
    import torch
    from torch import nn

    from model.fdn import MaskedAutoencoder1d, complementary_masks, random_masking
    from pipeline.dataset import pad_sequences

    frames = np.concatenate(clips)
    mean, std = frames.mean(0), frames.std(0) + 1e-6
    standardised = [(x - mean) / std for x in clips]
    dim = frames.shape[1]
    project_in, project_out = nn.Linear(dim, width), nn.Linear(width, dim)
    mae = MaskedAutoencoder1d(width, 2 * width, encoder_layers=2, decoder_layers=1, heads=4,
                              ff_mult=2, dropout=0.1)
    params = [*project_in.parameters(), *project_out.parameters(), *mae.parameters()]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(standardised), generator=generator).tolist()
        total = 0.0
        for i in range(0, len(order), batch_size):
            batch = [standardised[j] for j in order[i:i + batch_size]]
            x, _, mask = pad_sequences(batch, batch)
            hidden = random_masking(mask, 0.75, generator)
            error = (project_out(mae(project_in(x), mask, hidden)) - x).pow(2).mean(-1)
            loss = (error * hidden).sum() / hidden.sum().clamp_min(1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        if epoch in (0, epochs - 1):
            print(f"{label} epoch {epoch + 1}: hidden-frame loss "
                  f"{total / max(1, -(-len(order) // batch_size)):.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    mae.eval()

    @torch.no_grad()
    def errors(clip: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(((clip - mean) / std).astype(np.float32))[None]  # [1, T, C]
        valid = torch.ones(1, z.shape[1], dtype=torch.bool)
        n = 4  # ceil(1 / (1 - 0.75)), as the model's inference
        hidden = complementary_masks(valid, n)[:, 0]  # [n, T]
        recon_n = project_out(mae(project_in(z).repeat(n, 1, 1), valid.repeat(n, 1), hidden))
        weight = hidden[..., None].float()  # [n, T, 1]
        recon = (recon_n * weight).sum(0) / weight.sum(0).clamp_min(1)
        return (recon - z[0]).pow(2).mean(-1).numpy()

    return errors


def authentic_mae_errors(cache, train_records, records, *, epochs: int, seed: int = 0,
                         width: int = 64) -> dict[str, dict[str, np.ndarray]]:
    """{file: {"visual": [T], "audio": [T]}}: each modality's `train_authentic_mae` error for
    `records` and for the authentic clips among `train_records` (it was trained on those).
    torch's global RNG (weights, dropout) is seeded once, before the visual model."""
    import torch

    torch.manual_seed(seed)
    reals = [r for r in train_records if not r.is_fake]
    wanted = {r.file: r for r in [*records, *reals]}
    clips = {file: tuple(np.asarray(a, np.float32) for a in cache.read(file)) for file in wanted}
    out: dict[str, dict[str, np.ndarray]] = {file: {} for file in wanted}
    for index, modality in enumerate(("visual", "audio")):
        errors = train_authentic_mae([clips[r.file][index] for r in reals], epochs=epochs,
                                     seed=seed, width=width, label=modality)
        for file, pair in clips.items():
            out[file][modality] = errors(pair[index])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--splits", default="dev", help="comma-separated splits to report")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=64, help="d_model of the autoencoder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args()

    from data.cache import FeatureCache
    from data.metadata import load_metadata, records_for_split
    from pipeline.diagnostics import clip_median_deviation, frame_auc_table, load_forgery_types
    from pipeline.machine import describe_machine

    print(describe_machine(), flush=True)
    records = load_metadata(args.metadata)
    types = load_forgery_types(args.metadata)
    cache = FeatureCache(args.cache)
    train = records_for_split(records, "train")
    splits = [name for name in args.splits.split(",") if name]
    evaluated = [r for name in splits for r in records_for_split(records, name)]
    found = authentic_mae_errors(cache, train, evaluated, epochs=args.epochs, seed=args.seed,
                                 width=args.width)
    frames = {m: np.concatenate([np.asarray(cache.read(r.file)[i], np.float64)
                                 for r in train if not r.is_fake]) for i, m in enumerate(("visual", "audio"))}
    stats = {m: (x.mean(0), x.std(0) + 1e-6) for m, x in frames.items()}
    errors: dict[str, dict[str, np.ndarray]] = {}
    for record in evaluated:
        visual, audio = cache.read(record.file)
        errors[record.file] = {
            f"{m} reconstruction error": found[record.file][m] for m in ("visual", "audio")}
        for m, x in (("visual", visual), ("audio", audio)):
            errors[record.file][f"{m} median deviation (untrained)"] = \
                clip_median_deviation(np.asarray(x, np.float32), *stats[m])
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
