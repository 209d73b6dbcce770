"""`rtdl train`: fit RT-DeepLoc on a feature cache with video-level labels only.

`train(run_config, cache_path, metadata_path, out_dir, resume=False)` returns the path of
the best checkpoint. The run folder holds `last.pt` (with optimizer and RNG state, for
`--resume`), `best.pt`, `metrics.jsonl` (one JSON object per epoch), `curves.png` (its
loss terms and validation metrics, redrawn every epoch), `run_config.yaml`, `tensorboard/`
with `train.tensorboard`, and, once the last epoch is done, `proposals.yaml`.

Choices the paper leaves open:
- Randomness. Every source is derived from `train.seed`: model init (torch.manual_seed
  before build_model), data order (DistributedSampler seeded with the seed, reshuffled per
  epoch), crop offsets (seeded by (seed, epoch, item), see pipeline/dataset.py), masking
  (a torch.Generator seeded by (seed, epoch, rank)) and the global RNG used by dropout
  (re-seeded at the start of each epoch from (seed, epoch, rank)). A resumed run therefore
  repeats exactly what an uninterrupted run would have done, and two CPU runs with the
  same seed give bit-identical weights.
- Validation each epoch on the validation split, by rank 0 alone on the unwrapped model
  (other ranks wait at a barrier), through the same inference and metrics as `rtdl predict`
  and `rtdl evaluate` (pipeline/inference.py, pipeline/metrics.py): the best checkpoint is
  the one with the highest average AP under the RT-DeepLoc protocol (AP at IoU 0.1..0.7).
  Ties keep the earlier epoch. With the learned deviation scorers, validation also reads
  each scorer's frame AUC on the validation split (`val_<modality>_scorer_frame_auc`), and
  `train.deviation_scorer_epoch: own` keeps each scorer at its own best epoch in best.pt
  (pipeline/scorer_epochs.py); "network" (the default) keeps the network's.
- Non-finite loss: checked every step before backward (all ranks agree through an
  all-reduce, so no rank hangs); training stops with `NonFiniteLossError` naming the epoch,
  step and the loss term(s) that went non-finite. Checkpoints are written only after a
  whole epoch, so `last.pt` / `best.pt` stay the last good ones.
- Kill safety: checkpoints are written atomically (pipeline/checkpoint.py), and a run that
  starts in a folder (fresh or `--resume`) first makes metrics.jsonl and best.pt agree with
  last.pt and deletes temporary files of killed writers (`repair_run_folder`).
- Bad inputs are refused before the first step: a train split of one class, a validation
  split without a fake video, NaN / Inf features in any train or validation video.
- Distributed: `torchrun --nproc-per-node N rtdl train ...` sets RANK / WORLD_SIZE /
  LOCAL_RANK; we use NCCL on CUDA and gloo on CPU. `batch_size` is per process.
  Rank 0 alone logs, writes metrics and checkpoints (weights of the unwrapped model).
- bf16 autocast on CUDA when `train.amp`; no GradScaler, bf16 has float32's range.
- Input standardisation (`train.standardize_inputs`, on by default): before the first
  step the model's input standardiser gets the per-dimension mean / std of every frame of
  the training split (model/normalize.py). Without it, the weight-free demo features
  (raw colour means, log energies, DCT terms, log-mel in log units) left every
  classification loss at chance on `rtdl synth` data. The paper does not mention it; for
  TSN / wav2vec features it is a harmless fixed affine map. Every rank computes the same
  statistics from the same split, so DDP replicas start identical.
- Proposal settings: after the last epoch the run chooses them on the validation split
  (pipeline/proposal_tuning.py, `train.tune_proposals`) and stores them in best.pt (and in last.pt
  when it holds the same weights, or with `train.tune_last`), so
  `rtdl predict` / `rtdl localize` use tuned settings without a `--proposals` file.
- Data-wait share: the time spent in `next(loader)` over the whole step time, per epoch,
  logged in metrics.jsonl as `data_wait_share` (what benchmarks/bench_train.py reports).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from data.atomic import write_atomic
from data.config import to_dict
from data.records import VideoRecord
from data.feature_settings import FeatureSettings
from model.spectral_detail import applies_to as spectral_detail_applies_to
from pipeline.checkpoint import read_checkpoint_payload, remove_stale_temporaries, save_checkpoint, \
    unwrap_model
from pipeline.dataset import Batch, FeatureDataset, cache_name, pad_collate
from pipeline.devices import resolve_device
from pipeline.fdn_pretrain import pretrain_fdn
from pipeline.inference import predict_arrays, predict_scores, predictions_from_scores
from pipeline.metrics import PROTOCOLS, evaluate_predictions
from pipeline.proposal_tuning import network_note, tune_run_checkpoints
from pipeline.scorer_epochs import compose_best_checkpoint, reading_key, scorer_frame_aucs, \
    update_best_scorers
from pipeline.train_config import RunConfig, TrainConfig
from pipeline.weight_average import WeightAverage

log = logging.getLogger(__name__)

LAST, BEST, METRICS, CURVES = "last.pt", "best.pt", "metrics.jsonl", "curves.png"


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; training stopped."""


@dataclass
class TrainOutcome:
    best_checkpoint: Path  # out_dir/best.pt
    last_checkpoint: Path  # out_dir/last.pt
    model: torch.nn.Module  # the trained (unwrapped) model of this process
    epochs_completed: int  # epochs the run folder holds now (last.pt's epoch)
    best_epoch: int = 0  # epoch (1-based) best.pt holds
    best_metrics: dict = dataclasses.field(default_factory=dict)  # that epoch's metrics row
    proposal_tuning: dict | None = None  # how best.pt's proposal settings were chosen, if tuned


# ----------------------------------------------------------------------------- helpers

@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False  # we called init_process_group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes (or the caller created); single process otherwise."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(),
                    int(os.environ.get("LOCAL_RANK", "0")), True)


def resolve_splits(records: Sequence[VideoRecord], cfg: TrainConfig,
                   metadata_path: str | Path) -> tuple[str, str]:
    """(train split, validation split); "auto" picks from the splits present."""
    present = sorted({r.split for r in records})
    train_split = "train" if cfg.train_split == "auto" else cfg.train_split
    if cfg.val_split != "auto":
        val_split = cfg.val_split
    elif "dev" in present:  # LAV-DF, rtdl synth
        val_split = "dev"
    elif "val" in present:  # AV-Deepfake1M
        val_split = "val"
    else:
        raise ValueError(f"{metadata_path}: no 'dev' or 'val' split to validate on (splits: "
                         f"{present}); set train.val_split")
    for name, split in (("train_split", train_split), ("val_split", val_split)):
        if split not in present:
            raise ValueError(f"{metadata_path}: field 'split' has no record with value {split!r} "
                             f"(train.{name}); splits present: {present}")
    return train_split, val_split


def check_split_labels(train_records: Sequence[VideoRecord], val_records: Sequence[VideoRecord],
                       train_split: str, val_split: str, metadata_path: str | Path) -> None:
    """Refuse splits a run can neither learn from nor select a checkpoint on.

    Video-level labels of a single class teach the classifier nothing (it still "trains"
    and writes a best.pt), and a validation split without a fake video leaves the average
    AP that picks best.pt undefined; both are found here, before any epoch is spent.
    """
    from data.labels import LABELS

    counts = Counter(LABELS[r.label] for r in train_records)
    if len(counts) < 2:
        (label, n), = counts.items()
        raise ValueError(f"{metadata_path}: train split {train_split!r} holds only {label!r} "
                         f"videos ({n}); training needs at least two classes (fix the metadata "
                         f"or choose another split with train.train_split)")
    absent = [label for label in LABELS if label not in counts]
    if absent:
        log.warning("%s: train split %r has no %s video; the model cannot learn %s", metadata_path,
                    train_split, " / ".join(absent), "that class" if len(absent) == 1 else "those classes")
    if not any(r.fake_segments for r in val_records):
        raise ValueError(f"{metadata_path}: validation split {val_split!r} has no fake video, so "
                         f"the average precision that selects best.pt is undefined; choose "
                         f"another split with train.val_split")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixing `parts` (so (seed, epoch, rank) streams never overlap)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0]
               % (2 ** 63))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": list(np.random.get_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")


def open_tensorboard(out_dir: Path):
    """A SummaryWriter logging into out_dir/tensorboard; a clear error without the package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ValueError("--tensorboard (train.tensorboard) needs the tensorboard package, an "
                         "optional extra: pip install 'rtdl[tensorboard]' (or pip install "
                         "tensorboard)") from err
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


def log_epoch(writer, row: dict) -> None:
    """One metrics.jsonl row as TensorBoard scalars, train/* and val/* by epoch."""
    for key, value in row.items():
        if key in ("epoch", "best_epoch") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        group, _, name = key.partition("_")
        tag = f"{group}/{name}" if group in ("train", "val") else f"run/{key}"
        writer.add_scalar(tag, value, global_step=row["epoch"])
    writer.flush()


def draw_curves(out_dir: Path) -> None:
    """Redraw curves.png from metrics.jsonl; a failed plot is logged, never stops training."""
    from pipeline.plots import plot_training_curves

    try:
        rows = _read_rows(out_dir / METRICS)
        if rows:
            plot_training_curves(rows, out_dir / CURVES, title=f"{out_dir}: {len(rows)} epoch(s)")
    except (OSError, ValueError, RuntimeError) as err:
        log.warning("%s: training curves not drawn: %s", out_dir / CURVES, err)


def input_statistics(dataset: FeatureDataset) -> tuple[np.ndarray, ...]:
    """(visual mean [Dv], visual std [Dv], audio mean [Da], audio std [Da]) over every frame
    of the dataset's videos (whole videos, not crops; see model/normalize.py)."""
    from model.normalize import frame_statistics

    videos = [dataset.video_arrays(i) for i in range(len(dataset))]
    visual_mean, visual_std = frame_statistics(v for v, _ in videos)
    audio_mean, audio_std = frame_statistics(a for _, a in videos)
    return visual_mean, visual_std, audio_mean, audio_std


# ----------------------------------------------------------------------------- validation

# authentic training videos whose reconstruction errors calibrate the error evidence; a
# subset bounds the cost of the extra inference pass per epoch
CALIBRATION_VIDEOS = 256


def calibrate_frame_evidence(model, cache, train_records: Sequence[VideoRecord],
                             device: torch.device) -> None:
    """Set the model's evidence percentiles from real training videos (model/evidence.py):
    reconstruction errors (with the FDN), clip deviations of the input, the audio-visual
    desynchrony, which is first fitted on the same videos when it is not yet (model/av_sync.py),
    for log-mel audio the spectral detail, fitted likewise (model/spectral_detail.py), and
    the audio learned deviation (with the scorers; model/deviation_scorer.py).

    The first CALIBRATION_VIDEOS real videos in record order, so the reference does not
    depend on the epoch; nothing happens without a real video.
    """
    reals = [r.file for r in train_records if r.label == 0][:CALIBRATION_VIDEOS]
    if not reals:
        log.warning("no real video in the training split: the frame evidence stays unset")
        return
    if not bool(model.av_sync.is_set):  # deterministic and label-free: fitted once
        model.fit_av_sync(lambda: (cache.read(key) for key in reals))
    audio_settings = cache.settings.get("audio", {})
    # the spectral detail reads mel bands in frequency order: log-mel audio only
    if spectral_detail_applies_to(audio_settings) and not bool(model.spectral_detail.is_set):
        model.fit_spectral_detail(lambda: (cache.read(key)[1] for key in reals),
                                  int(audio_settings["n_mels"]))
    outputs = predict_arrays(model, ((key, *cache.read(key)) for key in reals), device=device)
    references = {"visual_deviation_calibration": "visual_deviation",
                  "audio_deviation_calibration": "audio_deviation",
                  "sync_calibration": "av_desync"}
    if bool(model.spectral_detail.is_set):
        references["detail_calibration"] = "spectral_detail"
    if hasattr(model, "deviation_scorers"):
        references["audio_learned_calibration"] = "audio_learned_deviation"
    if model.config.use_fdn:
        references.update(visual_error_calibration="visual_recon_error",
                          audio_error_calibration="audio_recon_error")
    for calibration, field in references.items():
        getattr(model, calibration).set_reference(np.concatenate([outputs[k][field] for k in reals]))


def validate(model, cache, val_records: list[VideoRecord], device: torch.device,
             train_records: Sequence[VideoRecord] = ()) -> tuple[dict[str, float], str]:
    """Validation metrics and the name of the one that selects the best checkpoint.

    Calibrates the reconstruction-error evidence on `train_records` first, so that the
    checkpoint saved after validation carries the reference its errors were judged by.
    With learned deviation scorers the metrics also hold each one's frame AUC
    (pipeline/scorer_epochs.py).
    """
    model.eval()
    calibrate_frame_evidence(model, cache, train_records, device)
    protocol = PROTOCOLS["rtdeeploc"]
    scores = predict_scores(model, cache, val_records, device=str(device))
    predictions, video_probs = predictions_from_scores(scores, val_records)
    result = evaluate_predictions(predictions, val_records, video_probs=video_probs,
                                  ap_iou=protocol.ap_iou, ar_n=protocol.ar_n, ar_iou=protocol.ar_iou)
    truth = {r.file: r.label for r in val_records}
    hits = [int(np.argmax(video_probs[f])) == truth[f] for f in truth if f in video_probs]
    metrics = {"val_ap_avg": float(result["ap_avg"]), "val_ar_avg": float(result["ar_avg"]),
               "val_accuracy": float(np.mean(hits)) if hits else float("nan")}
    if result.get("auc") is not None:
        metrics["val_auc"] = float(result["auc"])
    if hasattr(model, "deviation_scorers"):
        for modality, auc in scorer_frame_aucs(scores, val_records).items():
            metrics[reading_key(modality)] = float(auc)
    return metrics, "val_ap_avg"


# ----------------------------------------------------------------------------- training

def _check_finite(losses: dict[str, torch.Tensor], epoch: int, step: int, global_step: int,
                  info: DistInfo, out_dir: Path) -> None:
    total = losses["total"].detach()
    ok = torch.isfinite(total).float()
    if info.enabled:  # every rank must stop together, or the others hang in all-reduce
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    if ok.item() == 1.0:
        return
    bad = {name: float(value.detach().float()) for name, value in losses.items()
           if not bool(torch.isfinite(value.detach()).all())}
    terms = ", ".join(f"{name}={value}" for name, value in bad.items()) or "on another rank"
    last = out_dir / LAST
    kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint was written yet"
    raise NonFiniteLossError(f"non-finite loss at epoch {epoch + 1}, step {step + 1} (global step "
                             f"{global_step + 1}): {terms}; training stopped, {kept}")


def train_run(run_config: RunConfig, cache_path, metadata_path: str | Path,
              out_dir: str | Path, resume: bool = False) -> TrainOutcome:
    """Train; returns the outcome with the best checkpoint's path and the trained model."""
    from data.cache import FeatureCache
    from data.metadata import load_metadata
    from model.rtdeeploc import build_model

    cfg = run_config.train
    out_dir = Path(out_dir)
    requested = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    info = init_distributed(requested)
    writer = None
    try:
        if cfg.tensorboard and info.is_main:  # checked before any data is read
            out_dir.mkdir(parents=True, exist_ok=True)
            writer = open_tensorboard(out_dir)
        device = resolve_device(cfg.device, info.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL and default allocations follow this process's GPU
        last_path, best_path, metrics_path = out_dir / LAST, out_dir / BEST, out_dir / METRICS
        if resume and not last_path.is_file():
            raise ValueError(f"{last_path}: --resume needs the last.pt of an earlier run in --out")
        if not resume and last_path.exists():
            raise ValueError(f"{out_dir}: already holds a run ({LAST}); pass --resume to continue "
                             f"it or choose another --out")

        cache = FeatureCache(cache_path)
        if cache.visual_dim is None or cache.audio_dim is None:
            raise ValueError(f"{cache_path}: the feature cache holds no video")
        records = load_metadata(metadata_path)
        train_split, val_split = resolve_splits(records, cfg, metadata_path)
        train_records = [r for r in records if r.split == train_split]
        val_records = [r for r in records if r.split == val_split]
        check_split_labels(train_records, val_records, train_split, val_split, metadata_path)
        train_set = FeatureDataset(cache, train_records, max_len=cfg.max_len, seed=cfg.seed,
                                   in_memory=cfg.in_memory)
        # validation reads the cache through predict_scores; this set only checks the videos
        val_set = FeatureDataset(cache, val_records, max_len=None)
        # every video is read once before the first step: NaN / Inf features stop the run
        # here, naming the cache, video and modality, not as a NaN loss epochs later
        standardize = cfg.standardize_inputs and not resume  # a resumed model has its statistics
        statistics = input_statistics(train_set) if standardize else train_set.check_features()
        val_set.check_features()

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank and every run
        model = build_model(run_config.model, cache.visual_dim, cache.audio_dim)
        if standardize:
            model.set_input_statistics(*statistics)
        model = model.to(device)
        optimizer = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        start_epoch, best = 0, {"name": None, "value": -math.inf, "epoch": 0}
        last_row, resumed_state = None, {}
        if resume:
            start_epoch, best, last_row, resumed_state = _restore(
                last_path, run_config, model, optimizer, cache, device)
            if start_epoch >= cfg.epochs:
                log.warning("%s already completed %d of %d epochs; nothing to do (raise --epochs "
                            "to train longer)", last_path, start_epoch, cfg.epochs)
        # "own": each learned deviation scorer's best epoch so far (pipeline/scorer_epochs.py)
        own_scorer_epochs = cfg.deviation_scorer_epoch == "own" and hasattr(model, "deviation_scorers")
        best_scorers = dict(resumed_state.get("best_scorers") or {})
        if cfg.fdn_pretrain_epochs and start_epoch == 0:
            # every rank trains the same FDN from the same seed, so no broadcast is needed
            pretrain_fdn(model, train_set, epochs=cfg.fdn_pretrain_epochs,
                         lr=cfg.fdn_pretrain_lr, weight_decay=cfg.weight_decay,
                         batch_size=cfg.batch_size, seed=cfg.seed, device=device)
        if info.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            repair_run_folder(out_dir, start_epoch, last_row, best, model, run_config, cache)
        if resume:  # after the repair, which rewrites best.pt from last.pt's (averaged) weights
            _restore_raw_weights(resumed_state, model, average, last_path)
        if info.is_main:
            (out_dir / "run_config.yaml").write_text(yaml.safe_dump(to_dict(run_config), sort_keys=False))
            log.info("training on %d videos (%s), validating on %d (%s); %s, world size %d",
                     len(train_records), train_split, len(val_records), val_split, device,
                     info.world_size)

        wrapped = model
        if info.enabled:
            # ablations (use_fdn=False, use_mtlr=False) leave whole modules without gradient,
            # which DDP must be told about; the full model uses every parameter every step
            ablated = not (run_config.model.use_fdn and run_config.model.use_mtlr)
            wrapped = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=ablated)
        sampler = DistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                     shuffle=True, seed=cfg.seed, drop_last=False)
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                            num_workers=cfg.num_workers, collate_fn=pad_collate,
                            pin_memory=device.type == "cuda", drop_last=False)
        use_amp = cfg.amp and device.type == "cuda"
        steps_per_epoch = len(loader)
        epoch = start_epoch
        for epoch in range(start_epoch, cfg.epochs):
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            torch.manual_seed(derived_seed(cfg.seed, epoch, info.rank, 1))  # dropout etc.
            mask_generator = torch.Generator(device=device)
            mask_generator.manual_seed(derived_seed(cfg.seed, epoch, info.rank, 2))
            train_metrics = _train_epoch(wrapped, loader, optimizer, mask_generator, cfg, device,
                                         use_amp, epoch, epoch * steps_per_epoch, info, out_dir,
                                         average)
            if info.is_main:
                # the raw weights go on training; validation and both checkpoints see the average
                averaged_state = {}
                if average is not None:
                    averaged_state = {"raw_model_state": {
                        k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                        "weight_average": average.state_dict()}
                with average.applied(model) if average is not None else nullcontext():
                    val_metrics, key = validate(model, cache, val_records, device, train_records)
                    row = {"epoch": epoch + 1, **train_metrics, **val_metrics}
                    value = val_metrics[key]
                    improved = value > best["value"] or best["name"] is None
                    if improved:
                        best = {"name": key, "value": float(value), "epoch": epoch + 1}
                    row["best_epoch"] = best["epoch"]
                    if own_scorer_epochs:
                        readings = {m: val_metrics[reading_key(m)] for m in ("visual", "audio")
                                    if reading_key(m) in val_metrics}
                        best_scorers = update_best_scorers(best_scorers, model, readings, epoch + 1)
                        row.update({f"best_{m}_scorer_epoch": kept["epoch"]
                                    for m, kept in best_scorers.items()})
                    append_jsonl(metrics_path, row)
                    draw_curves(out_dir)
                    if writer is not None:
                        log_epoch(writer, row)
                    common = dict(epoch=epoch + 1, metrics=row, feature_settings=cache.settings,
                                  visual_dim=cache.visual_dim, audio_dim=cache.audio_dim)
                    save_checkpoint(last_path, model, run_config, **common, train_state={
                        "optimizer": optimizer.state_dict(), "rng": rng_state(), "best": best,
                        **({"best_scorers": best_scorers} if own_scorer_epochs else {}),
                        **averaged_state})
                    if improved:
                        save_checkpoint(best_path, model, run_config, **common)
                    log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) if isinstance(v, float) else v
                                                          for k, v in row.items()})
            if info.enabled:
                dist.barrier()
                # rank 0 calibrated the frame evidence during validation: share it
                for buffer in model.fitted_buffers().values():
                    dist.broadcast(buffer, src=0)
        if average is not None:  # what the run hands on is what it validated and saved
            average.copy_to(model)
        # the loop ran up to cfg.epochs; a resumed run that had done as many or more ran none
        outcome = TrainOutcome(best_path, last_path, model, max(start_epoch, cfg.epochs))
        if info.is_main and best_path.is_file() and own_scorer_epochs:
            compose_best_checkpoint(best_path, best_scorers)
        if info.is_main and best_path.is_file():
            payload = read_checkpoint_payload(best_path)
            outcome.best_epoch, outcome.best_metrics = int(payload["epoch"]), dict(payload["metrics"])
            outcome.proposal_tuning = payload.get("proposal_tuning")
            trained_now = start_epoch < cfg.epochs
            if cfg.tune_proposals and (trained_now or "proposal_config" not in payload):
                log.info("choosing proposal settings on the %s split", val_split)
                _, outcome.proposal_tuning = tune_run_checkpoints(
                    best_path, last_path, model, cache, val_records, val_split, device,
                    max_videos=cfg.tune_max_videos, passes=cfg.tune_passes, tune_last=cfg.tune_last)
        return outcome
    finally:
        if writer is not None:
            writer.close()
        if info.created_group:
            dist.destroy_process_group()


def parameter_groups(model, cfg: TrainConfig) -> list[dict]:
    """The optimiser's parameter groups: the network at `lr`, and the learned deviation
    scorers (model/deviation_scorer.py), where present, at `lr x deviation_scorer_lr_scale`.

    Why a group of their own: each scorer is one linear layer over a few hundred inputs, fit
    from the video labels alone; at the network's step size it is still far from fit when the
    best epoch is taken (after one epoch in most runs of our benchmark). AdamW is per
    parameter, so the network's updates do not change with the scorers' rate. The default
    10x was chosen on dev (BENCHMARKS.md, "A learned deviation scorer"): dev avg AP 41.5
    against 35.8 at 1x on the 2,100-clip benchmark."""
    scorers = [p for n, p in model.named_parameters() if n.startswith("deviation_scorers.")]
    network = [p for n, p in model.named_parameters() if not n.startswith("deviation_scorers.")]
    groups = [{"params": network}]
    if scorers:
        groups.append({"params": scorers, "lr": cfg.lr * cfg.deviation_scorer_lr_scale})
    return groups


def _restore(last_path: Path, run_config: RunConfig, model, optimizer, cache,
             device: torch.device) -> tuple[int, dict, dict, dict]:
    """Load last.pt into `model` and `optimizer`: (epochs done, best, last metrics row,
    train_state). With a weight average the model gets the averaged weights here, as saved;
    `_restore_raw_weights` then puts the raw ones back for training."""
    payload = read_checkpoint_payload(last_path, map_location="cpu")
    saved_model_cfg = payload["run_config"]["model"]
    if saved_model_cfg != to_dict(run_config.model):
        raise ValueError(f"{last_path}: field 'run_config.model' differs from this run's model "
                         f"config; resume with the same model settings")
    if (payload["visual_dim"], payload["audio_dim"]) != (cache.visual_dim, cache.audio_dim):
        raise ValueError(f"{last_path}: fields visual_dim/audio_dim ({payload['visual_dim']}, "
                         f"{payload['audio_dim']}) differ from the cache's "
                         f"({cache.visual_dim}, {cache.audio_dim})")
    FeatureSettings(payload["feature_settings"]).check_compatible(
        FeatureSettings(cache.settings), label=f"the run being resumed ({last_path})",
        other_label=cache_name(cache))
    state = payload.get("train_state")
    if not state:
        raise ValueError(f"{last_path}: field 'train_state' is missing; cannot resume from a best.pt")
    model.load_state_dict(payload["model_state"])
    optimizer.load_state_dict(state["optimizer"])
    for param_state in optimizer.state.values():  # optimizer tensors follow the model's device
        for k, v in param_state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                param_state[k] = v.to(device)
    set_rng_state(state["rng"])
    log.info("resuming after epoch %d from %s", payload["epoch"], last_path)
    return int(payload["epoch"]), dict(state["best"]), dict(payload["metrics"]), dict(state)


def _restore_raw_weights(state: dict, model, average: WeightAverage | None, last_path: Path) -> None:
    """After `_restore`: continue training from the raw weights of a weight-averaged run."""
    if average is not None:
        if "weight_average" in state:
            average.load_state_dict(state["weight_average"])
        else:  # the run trained without an average so far: it starts from the saved weights
            log.warning("%s holds no weight average (train.ema_decay was 0); the average starts "
                        "from its weights", last_path)
    if "raw_model_state" in state:
        model.load_state_dict(state["raw_model_state"])


def _read_rows(metrics_path: Path) -> list[dict]:
    """The rows of metrics.jsonl; a line cut short by a kill is dropped."""
    rows = []
    for number, line in enumerate(metrics_path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: line %d is incomplete (the run was killed while writing it); "
                        "dropped", metrics_path, number)
    return rows


def repair_run_folder(out_dir: Path, completed: int, last_row: dict | None, best: dict,
                      model, run_config: RunConfig, cache) -> None:
    """Make the run folder agree with last.pt (which says `completed` epochs) after a kill.

    Each epoch appends its metrics row, then writes last.pt, then best.pt when it improved;
    a kill between these steps leaves rows of an epoch that will be rerun (repeated rows
    after resume), or a best.pt older than the best epoch last.pt records. The rows are cut
    back to the completed epochs (the last one restored from last.pt when it is missing),
    and a best.pt that lags behind is rewritten from last.pt's weights, which are the best
    epoch's whenever the lag happened. Temporary files of killed writers are deleted.
    """
    for tmp in remove_stale_temporaries(out_dir, (LAST, BEST)):
        log.info("removed %s, left half written by an interrupted run", tmp)
    metrics_path, best_path = out_dir / METRICS, out_dir / BEST
    rows = _read_rows(metrics_path) if metrics_path.exists() else []
    kept = {}
    for row in rows:
        if isinstance(row.get("epoch"), int) and row["epoch"] <= completed:
            kept[row["epoch"]] = row  # a repeated epoch keeps its latest row
    if completed and last_row is not None and completed not in kept:
        kept[completed] = last_row
    repaired = [kept[epoch] for epoch in sorted(kept)]
    if repaired != rows:
        log.warning("%s: rewritten with the %d row(s) of the epochs completed in %s (it had %d)",
                    metrics_path, len(repaired), LAST, len(rows))
        write_atomic(metrics_path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in repaired))
    if not completed or best.get("epoch") != completed:
        return
    best_epoch = None
    if best_path.exists():
        try:
            best_epoch = read_checkpoint_payload(best_path)["epoch"]
        except ValueError as err:
            log.warning("%s", err)
    if best_epoch != completed:
        log.warning("%s holds epoch %s, but %s records epoch %d as the best; rewriting it from %s",
                    best_path, best_epoch, LAST, completed, LAST)
        save_checkpoint(best_path, model, run_config, epoch=completed, metrics=last_row or {},
                        feature_settings=cache.settings, visual_dim=cache.visual_dim,
                        audio_dim=cache.audio_dim)


def _train_epoch(model, loader, optimizer, mask_generator, cfg: TrainConfig, device, use_amp: bool,
                 epoch: int, first_global_step: int, info: DistInfo, out_dir: Path,
                 average: WeightAverage | None = None) -> dict:
    model.train()
    bare = unwrap_model(model)
    sums: dict[str, float] = {}
    samples, wait_time, step_time = 0, 0.0, 0.0
    # closed on every exit: a bar left open by a stopped epoch shifts every later bar
    with tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
              disable=not info.is_main, leave=False) as bar:
        iterator = iter(loader)
        step = 0
        while True:
            t0 = time.perf_counter()
            try:
                batch: Batch = next(iterator)
            except StopIteration:
                break
            t1 = time.perf_counter()
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                output = model(batch.visual, batch.audio, batch.mask, generator=mask_generator)
                losses = bare.losses(output, batch.labels)
            _check_finite(losses, epoch, step, first_global_step + step, info, out_dir)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            if cfg.grad_clip > 0:  # per group: the scorers' gradients never rescale the network's
                for group in optimizer.param_groups:
                    torch.nn.utils.clip_grad_norm_(group["params"], cfg.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(bare)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(batch)
            samples += len(batch)
            t2 = time.perf_counter()  # .item()/float() above synchronised the device
            wait_time += t1 - t0
            step_time += t2 - t0
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{float(losses['total'].detach()):.4f}")
    names = sorted(sums)
    totals = torch.tensor([sums[n] for n in names] + [samples, wait_time, step_time],
                          dtype=torch.float64)
    if info.enabled:  # sums over all ranks (gloo and NCCL both reduce CPU/GPU float64)
        totals = totals.to(device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    *loss_sums, samples_all, wait_all, time_all = totals.tolist()
    metrics = {f"train_{n}": total / max(samples_all, 1) for n, total in zip(names, loss_sums)}
    # ranks step in lockstep, so all ranks' samples over the mean per-rank time is the rate
    mean_time = time_all / info.world_size
    metrics.update({"train_samples": int(samples_all), "train_steps": step,
                    "train_samples_per_s": samples_all / mean_time if mean_time else 0.0,
                    "data_wait_share": wait_all / time_all if time_all else 0.0,
                    "lr": optimizer.param_groups[0]["lr"]})
    return metrics


def describe_outcome(outcome: TrainOutcome) -> list[str]:
    """The closing lines of a run: where the best checkpoint is, its epoch and metrics, and
    where the tuned proposal settings went."""
    metrics = outcome.best_metrics
    shown = [(name, metrics[key]) for name, key in (("AP", "val_ap_avg"), ("AR", "val_ar_avg"),
                                                     ("AUC", "val_auc"), ("accuracy", "val_accuracy"))
             if isinstance(metrics.get(key), (int, float))]
    values = ", ".join(f"{name} {value:.4f}" for name, value in shown) or "no validation metrics"
    lines = [f"best checkpoint: {outcome.best_checkpoint} (epoch {outcome.best_epoch} of "
             f"{outcome.epochs_completed}; validation {values})"]
    scorer_epochs = metrics.get("deviation_scorer_epochs")
    if scorer_epochs:
        lines.append("learned deviation scorers kept at their own best epochs: " + ", ".join(
            f"{modality} {epoch}" for modality, epoch in scorer_epochs.items()))
    curves = outcome.best_checkpoint.with_name(CURVES)
    if curves.is_file():
        lines.append(f"training curves: {curves} (metrics per epoch: "
                     f"{outcome.best_checkpoint.with_name(METRICS)})")
    tuning = outcome.proposal_tuning
    if tuning:
        lines.append(f"proposal settings: tuned on split {tuning.get('split')!r} "
                     f"(objective {tuning.get('best_objective', float('nan')):.4f}, start "
                     f"{tuning.get('default_objective', float('nan')):.4f}), stored in best.pt / "
                     f"last.pt and {outcome.best_checkpoint.with_name('proposals.yaml')}")
        lines += network_note(tuning)
    return lines


def train(run_config: RunConfig, cache_path, metadata_path: str | Path, out_dir: str | Path,
          resume: bool = False) -> Path:
    """Train RT-DeepLoc (see the module docstring); returns the path of `best.pt`."""
    return train_run(run_config, cache_path, metadata_path, out_dir, resume).best_checkpoint
