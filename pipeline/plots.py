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
