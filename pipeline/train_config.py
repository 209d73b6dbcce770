"""Training configuration: `TrainConfig` (optimisation, data, devices) and `RunConfig`
(model + train), loaded from YAML with `--set key=value` overrides.

Choices the paper leaves open:
- Paper defaults: AdamW, lr 1e-5, batch 32 (Sec. 4.2). The paper gives no epoch count
  or weight decay; we use 30 epochs and AdamW's usual 0.01 and make both configurable.
- `max_len` = 512 frames (about 20 s at 25 fps) covers nearly every LAV-DF and
  AV-Deepfake1M video whole; longer training sequences are randomly cropped to it.
- Split names default to "auto": the metadata decides. If any record is in a `dev`
  split (LAV-DF, rtdl synth) we train on `train` and validate on `dev`; if any is in
  `val` (AV-Deepfake1M) we validate on `val`. Naming them explicitly overrides this.
- bf16 autocast is used only on CUDA (`amp`); CPU runs stay in float32 so that a fixed
  `seed` gives bit-identical weights.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from data.config import apply_overrides, load_yaml
from model.config import ModelConfig
from pipeline.options import TuningOptions

DEVICES = ("auto", "cpu", "cuda")
# which epoch's weights the learned deviation scorers keep in best.pt (pipeline/train.py)
SCORER_EPOCHS = ("network", "own")
# RunConfig YAML files shipped with rtdl, usable by name: `rtdl train --config demo`
PRESETS = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # passes over the training split
    batch_size: int = 32  # videos per step and per process (paper: 32)
    lr: float = 1e-5  # AdamW learning rate (paper: 1e-5)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping
    deviation_scorer_lr_scale: float = 10.0  # learned deviation scorers' lr / lr (chosen on dev, BENCHMARKS.md)
    # the epoch whose learned deviation scorers best.pt keeps: "network" (the network's best
    # epoch) or "own" (each scorer's, by its frame AUC on the validation split)
    deviation_scorer_epoch: str = "network"
    # passes of the FDN alone over the authentic training videos before the joint epochs
    # (pipeline/fdn_pretrain.py); needs model.fdn_view "own"; 0 = none (the paper)
    fdn_pretrain_epochs: int = 0
    fdn_pretrain_lr: float = 1e-3  # AdamW learning rate of that stage
    ema_decay: float = 0.0  # moving average of the weights for validation and checkpoints; 0 = off (paper)
    max_len: int = 512  # training sequences longer than this are randomly cropped (frames)
    standardize_inputs: bool = True  # per-dimension mean/std of training frames, see model/normalize.py
    seed: int = 0  # model init, data order, crops, masking: all derived from it
    num_workers: int = 0  # DataLoader worker processes per training process
    in_memory: bool = False  # read the whole cache into RAM before training
    device: str = "auto"  # auto | cpu | cuda (auto: cuda when available)
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    train_split: str = "auto"  # metadata split to train on; auto: "train"
    val_split: str = "auto"  # metadata split to validate on; auto: "dev" or "val"
    tensorboard: bool = False  # also log every epoch's metrics to <run folder>/tensorboard
    tune_proposals: bool = True  # after the last epoch, choose proposal settings on the validation split
    tune_max_videos: int = TuningOptions.max_videos  # ... on at most this many of its videos (a fixed sample; 0: all)
    tune_passes: int = TuningOptions.passes  # ... in at most this many passes of its two stages (1: once)
    # also tune last.pt when its weights differ from best.pt's (a second search as long as the
    # first); off: last.pt, the point a run resumes from, holds no settings of its own
    tune_last: bool = False

    def __post_init__(self) -> None:
        # frozen configs are checked once here, so the trainer can trust every field
        positive = ("epochs", "batch_size", "max_len", "tune_passes")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr: must be > 0, got {self.lr}")
        if self.fdn_pretrain_lr <= 0:
            raise ValueError(f"train.fdn_pretrain_lr: must be > 0, got {self.fdn_pretrain_lr}")
        for name in ("weight_decay", "grad_clip", "num_workers", "tune_max_videos",
                     "fdn_pretrain_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name}: must be >= 0, got {getattr(self, name)}")
        if self.deviation_scorer_lr_scale <= 0:
            raise ValueError(f"train.deviation_scorer_lr_scale: must be > 0, got "
                             f"{self.deviation_scorer_lr_scale}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay: must be in [0, 1), got {self.ema_decay}")
        if self.deviation_scorer_epoch not in SCORER_EPOCHS:
            raise ValueError(f"train.deviation_scorer_epoch: expected one of {SCORER_EPOCHS}, got "
                             f"{self.deviation_scorer_epoch!r}")
        if self.device not in DEVICES:
            raise ValueError(f"train.device: expected one of {DEVICES}, got {self.device!r}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # the network (model/config.py)
    train: TrainConfig = field(default_factory=TrainConfig)  # how it is trained

    def __post_init__(self) -> None:
        if self.train.fdn_pretrain_epochs and not (self.model.use_fdn
                                                   and self.model.fdn_view == "own"):
            raise ValueError(
                f"train.fdn_pretrain_epochs={self.train.fdn_pretrain_epochs} needs "
                f"model.use_fdn true and model.fdn_view 'own' (got use_fdn={self.model.use_fdn}, "
                f"fdn_view={self.model.fdn_view!r}): a shared FDN reads the fusion encoder, "
                f"which the reconstruction loss alone would collapse")


def config_file(config: str | Path) -> Path:
    """A YAML path, or the file of a preset named `config` (PRESETS/<name>.yaml)."""
    path = Path(config)
    if path.is_file() or path.suffix:
        return path
    preset = PRESETS / f"{config}.yaml"
    if not preset.is_file():
        known = sorted(p.stem for p in PRESETS.glob("*.yaml"))
        raise ValueError(f"--config {config}: neither a file nor a preset (presets: {known})")
    return preset


def load_run_config(config_path: str | Path | None = None,
                    overrides: Sequence[str] = (),
                    **train_fields) -> RunConfig:
    """RunConfig from an optional YAML file or preset name (`model:` and `train:` sections),
    then `--set` overrides (dotted keys such as `model.mask_ratio=0.5`), then explicit CLI
    options given as `train_fields` (e.g. epochs=3); options left as None are ignored."""
    cfg = load_yaml(RunConfig, config_file(config_path)) if config_path else RunConfig()
    cfg = apply_overrides(cfg, list(overrides))
    given = {key: value for key, value in train_fields.items() if value is not None}
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **given))
