"""An exponential moving average of a model's weights (`train.ema_decay`), for stabler
checkpoints.

Why: on `rtdl synth` benchmarks the same recipe gives seed-to-seed spreads of several AP
points, and the frame scores of one epoch can differ from the next more than the variants
being compared (BENCHMARKS.md, "Why does AP fall while the frame AUC stays?"). Averaging the
weights over the last few hundred steps removes the part of that spread that comes from
where the last steps happened to land. The paper trains without it; `ema_decay: 0` (the
default) keeps the paper's training exactly.

Choices:
- Parameters only. Buffers (input statistics, frame-evidence calibration) are set outside
  the optimiser and stay the model's own, so the calibration computed while the averaged
  weights are in place belongs to those weights.
- Warm-up: the decay used at step n is min(decay, (1 + n) / (10 + n)), so the average is not
  dominated by the random initial weights in a short run (with decay 0.99 the full decay is
  reached after about 900 steps; before that recent weights count more).
- Validation and checkpoints use the averaged weights (`applied`); training continues from
  the raw weights, which `last.pt` keeps in its train_state for `--resume`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    """Shadow copies of `model`'s parameters, moved towards them after every step."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay: must be in (0, 1) when enabled, got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        for name, param in model.named_parameters():
            self.shadow[name].lerp_(param.detach(), weight)
        self.updates += 1

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Put the averaged weights into `model` for the duration of the block, then restore
        the raw ones (also when the block raises)."""
        raw = {name: p.detach().clone() for name, p in model.named_parameters()}
        try:
            self.copy_to(model)
            yield model
        finally:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    param.copy_(raw[name])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Put the averaged weights into `model` for good (the end of a run)."""
        for name, param in model.named_parameters():
            param.copy_(self.shadow[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "shadow": {k: v.detach().to("cpu", copy=True) for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("the weight average in the checkpoint does not match the model's "
                             "parameters")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
