"""Evidence plots in the style of the paper's Figure 4: curves over time, one panel each,
with predicted segments shaded (and ground truth, when known, drawn as bars).

Choices
- One panel per curve, sharing the time axis: frame probabilities live in [0, 1] while
  reconstruction errors have the feature scale, so they do not share a y axis.
- Only the `max_segments` best predicted segments are shaded (default 5): a video has up
  to 100 overlapping proposals, and shading all of them hides everything. Each shaded
  segment is labelled with its score in the top panel.
- Ground truth is a red bar along the top of every panel (not a fill), so it stays
  visible where it overlaps a predicted segment.
- A curve whose name ends in "score" is a probability and gets the fixed y range [0, 1],
  so its absolute level is readable; other curves (reconstruction errors) autoscale.
- The Agg backend is selected explicitly: plots are written on headless machines.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from data.atomic import write_atomic


def _segment_bounds(segment) -> tuple[float, float, float | None]:
    """(start, end, score) from a dict {start, end[, score]}, [score, start, end] (the
    prediction-file layout) or (start, end)."""
    if isinstance(segment, Mapping):
        return float(segment["start"]), float(segment["end"]), segment.get("score")
    values = list(segment)
    if len(values) == 3:
        return float(values[1]), float(values[2]), float(values[0])
    if len(values) == 2:
        return float(values[0]), float(values[1]), None
    raise ValueError(f"segment {segment!r}: expected (start, end), [score, start, end] or a dict")


def plot_evidence(times: Sequence[float], curves: Mapping[str, Sequence[float]], segments=(),
                  ground_truth: Sequence[Sequence[float]] | None = None, title: str = "",
                  path: str | Path | None = None, *, max_segments: int = 5) -> Path:
    """Write a PNG: one panel per named curve [T] over `times` [T] (seconds).

    segments: predicted segments, best first (dicts, [score, start, end] or (start, end));
    ground_truth: (start, end) pairs in seconds, or None when unknown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path is None:
        raise ValueError("plot_evidence: path is required")
    if not curves:
        raise ValueError("plot_evidence: no curves to plot")
    times = np.asarray(times, dtype=np.float64).reshape(-1)  # [T]
    for name, curve in curves.items():
        if np.asarray(curve).reshape(-1).shape[0] != times.shape[0]:
            raise ValueError(f"plot_evidence: curve {name!r} has {np.asarray(curve).size} values "
                             f"for {times.shape[0]} times")
    shaded = [_segment_bounds(s) for s in list(segments)[:max_segments]]
    truth = [(float(a), float(b)) for a, b in (ground_truth or [])]

    fig, axes = plt.subplots(len(curves), 1, figsize=(10, 1.9 * len(curves) + 0.6), sharex=True,
                             squeeze=False)
    for row, (ax, (name, curve)) in enumerate(zip(axes[:, 0], curves.items())):
        ax.plot(times, np.asarray(curve, dtype=np.float64).reshape(-1), color="tab:blue", lw=1.2)
        ax.set_ylabel(name, fontsize=8)
        if name.endswith("score"):
            ax.set_ylim(-0.02, 1.08)
        for k, (start, end, score) in enumerate(shaded):
            ax.axvspan(start, end, color="tab:orange", alpha=0.25,
                       label="predicted" if row == 0 and k == 0 else None)
            if row == 0 and score is not None:
                ax.text((start + end) / 2, 1.0, f"{score:.2f}", transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=7, color="tab:orange")
        for k, (start, end) in enumerate(truth):
            ax.axvspan(start, end, ymin=0.94, ymax=1.0, color="tab:red", alpha=0.9,
                       label="ground truth" if row == 0 and k == 0 else None)
        ax.grid(alpha=0.3)
    if shaded or truth:
        axes[0, 0].legend(loc="upper right", fontsize=7)
    if times.size:
        axes[-1, 0].set_xlim(0.0, max([float(times[-1]), *(end for _, end, _ in shaded), *(b for _, b in truth)]))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# loss terms and validation metrics of `rtdl train`'s metrics.jsonl rows, as drawn
TRAIN_NOT_LOSSES = ("train_samples", "train_steps", "train_samples_per_s")
VALIDATION_CURVES = {"val_ap_avg": "AP (avg.)", "val_ar_avg": "AR (avg.)", "val_auc": "AUC",
                     "val_accuracy": "accuracy",
                     # the learned deviation scorers' frame AUCs (pipeline/scorer_epochs.py)
                     "val_visual_scorer_frame_auc": "visual scorer frame AUC",
                     "val_audio_scorer_frame_auc": "audio scorer frame AUC"}


def plot_training_curves(rows: Sequence[Mapping], path: str | Path, title: str = "") -> Path:
    """Write a PNG of a run's metrics.jsonl rows: the training loss terms per epoch (left)
    and the validation AP / AR / AUC / accuracy per epoch (right), the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("plot_training_curves: no epochs to plot")
    epochs = [int(row["epoch"]) for row in rows]
    losses = sorted({key for row in rows for key in row
                     if key.startswith("train_") and key not in TRAIN_NOT_LOSSES})
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2), width_ratios=(1.25, 1))
    colours = plt.get_cmap("tab20").colors  # a model has more loss terms than the default cycle
    for index, key in enumerate(losses):  # the total thickest: it is what the optimiser minimises
        values = [row.get(key, np.nan) for row in rows]
        total = key == "train_total"
        left.plot(epochs, values, marker="o", ms=3, lw=2.6 if total else 1.1, label=key[len("train_"):],
                  color="black" if total else colours[index % len(colours)], zorder=3 if total else 2)
    left.set_title("training losses (mean per video)", fontsize=9)
    left.set_xlabel("epoch")
    if losses:
        left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for key, label in VALIDATION_CURVES.items():
        if any(isinstance(row.get(key), (int, float)) for row in rows):
            right.plot(epochs, [row.get(key, np.nan) for row in rows], marker="o", ms=3, label=label)
    best = rows[-1].get("best_epoch")
    if best:
        right.axvline(best, color="tab:gray", ls="--", lw=1, label=f"best epoch ({best})")
    right.set_ylim(-0.02, 1.02)
    right.set_title("validation", fontsize=9)
    right.set_xlabel("epoch")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:  # a reader never sees a half-written image
        return write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    finally:
        plt.close(fig)
