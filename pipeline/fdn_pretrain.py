"""Train the Forgery Discovery Network alone on the authentic training clips, before the
joint epochs (`train.fdn_pretrain_epochs`, for `model.fdn_view: own`).

Why a stage of its own: the paper's FDN learns "the intrinsic spatiotemporal regularities
of real data" from Eq. 2 on authentic clips only. Inside the joint run that loss has weight
0.1, sees only the authentic share of each batch (a quarter with balanced classes) and
stops at the best dev epoch, often the first; on rtdl's 2,100-clip benchmark that FDN sits
near chance per frame, while the same autoencoder trained alone on the authentic clips, to
the end, marks held-out blur at frame AUC 0.98 (BENCHMARKS.md, "The FDN alone, trained to
the end"). With `fdn_view: own` nothing but Eq. 2 trains the FDN, so training it first
changes nothing else the run does; the joint epochs then go on applying Eq. 2 at the run's
own learning rate.

Choices (the paper gives none for this stage):
- Data: the training split's authentic videos, the trainer's random crops (`max_len`),
  batch size `train.batch_size`, shuffled by a generator seeded from `train.seed`.
- Optimiser: AdamW over the two FDNs' parameters only, at `train.fdn_pretrain_lr`
  (default 1e-3, the rate of the benchmark above) and `train.weight_decay`; its state is
  not kept: the joint optimiser starts fresh, as it does in a run without this stage.
- Masks: drawn as in training (`random_masking`, rho of the model), from a generator seeded
  apart from the joint epochs' masks, so adding the stage changes no later draw.
- Crash safety: the stage runs before the first epoch and writes nothing; a run stopped
  during it has no last.pt and is started again (without --resume).
"""
from __future__ import annotations

import logging
import time

import torch
from torch.utils.data import DataLoader, Subset

from data.labels import REAL
from model.fdn import reconstruction_loss
from pipeline.dataset import FeatureDataset, pad_collate

log = logging.getLogger(__name__)

# the seeds this stage derives from train.seed (the joint epochs use streams 1 and 2)
PRETRAIN_STREAM = 3
# crops are drawn per (seed, epoch, video): the stage's passes count from here, far from
# any joint epoch, so its crops are its own
FIRST_CROP_EPOCH = 1_000_000


def fdn_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters of both FDNs (what this stage trains)."""
    return [*model.visual_fdn.parameters(), *model.audio_fdn.parameters()]


def reconstruction_step_loss(model, visual, audio, mask, generator) -> torch.Tensor:
    """Eq. 2 averaged over the two modalities for a batch of authentic clips: the FDNs read
    the model's standardised inputs, as in `RTDeepLoc.forward` with fdn_view "own"."""
    every_clip = torch.ones(mask.shape[0], dtype=torch.bool, device=mask.device)
    losses = []
    for fdn, norm, x in ((model.visual_fdn, model.visual_input_norm, visual),
                         (model.audio_fdn, model.audio_input_norm, audio)):
        reconstruction = fdn(None, mask, generator, False, inputs=norm(x, mask))
        losses.append(reconstruction_loss(reconstruction.errors.float(), reconstruction.hidden,
                                          every_clip))
    return torch.stack(losses).mean()


def pretrain_fdn(model, dataset: FeatureDataset, *, epochs: int, lr: float, weight_decay: float,
                 batch_size: int, seed: int, device: torch.device) -> list[float]:
    """Train `model`'s FDNs on the authentic videos of `dataset` for `epochs` passes; returns
    the mean hidden-frame loss of each pass. The model's input statistics must be set."""
    cfg = model.config
    if not (cfg.use_fdn and cfg.fdn_view == "own"):
        raise ValueError("train.fdn_pretrain_epochs needs model.use_fdn true and model.fdn_view "
                         f"'own' (got use_fdn={cfg.use_fdn}, fdn_view={cfg.fdn_view!r}): a shared "
                         "FDN reads the fusion encoder, which Eq. 2 alone would collapse")
    authentic = [i for i, record in enumerate(dataset.records) if record.label == REAL]
    if not authentic:
        raise ValueError("train.fdn_pretrain_epochs: the training split holds no authentic video")
    order = torch.Generator().manual_seed(seed * 1000 + PRETRAIN_STREAM)
    loader = DataLoader(Subset(dataset, authentic), batch_size=batch_size, shuffle=True,
                        generator=order, collate_fn=pad_collate)
    masks = torch.Generator(device=device).manual_seed(seed * 1000 + PRETRAIN_STREAM)
    optimizer = torch.optim.AdamW(fdn_parameters(model), lr=lr, weight_decay=weight_decay)
    model.train()
    started, history = time.perf_counter(), []
    for epoch in range(epochs):
        dataset.set_epoch(FIRST_CROP_EPOCH + epoch)
        total, steps = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            loss = reconstruction_step_loss(model, batch.visual, batch.audio, batch.mask, masks)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"FDN pretraining: non-finite reconstruction loss in "
                                         f"pass {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        history.append(total / max(steps, 1))
        if epoch in (0, epochs - 1) or (epoch + 1) % 10 == 0:
            log.info("FDN pretraining on %d authentic videos, pass %d/%d: hidden-frame loss "
                     "%.4f (%.0f s)", len(authentic), epoch + 1, epochs, history[-1],
                     time.perf_counter() - started)
    return history
