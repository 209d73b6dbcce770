"""`rtdl localize --report DIR`: one self-contained HTML page per run that an analyst opens
from disk in any browser.

For each clip: the video in a player, the predicted label and class probabilities, a
timeline of the curve(s) the segments were cut from (`proposals.localizer_curves`), the
visual / audio / joint frame scores and both reconstruction errors with the proposed
segments shaded, and a table of segments whose rows seek the player.

Choices
- No server, no network, no framework: the timeline is inline SVG drawn here, the styling
  an inline stylesheet, and the only script a few lines of plain JavaScript (seek on a
  table row or a timeline click, a playhead that follows the player).
- Videos up to `embed_limit_mb` are embedded as data URIs, so the page alone is the whole
  report and can be mailed or archived; a larger one is linked by a path relative to the
  page (the page then opens wherever that relative path still holds), and the page says so.
- Curves are drawn as in the paper's Figure 4: probabilities on a fixed [0, 1] axis,
  reconstruction errors autoscaled (they have the feature scale). The `max_shaded` best
  segments are shaded (a video has up to 100 overlapping proposals: shading them all hides
  the curves), lighter for lower scores, in the colour of the branch that produced them;
  the table lists the `max_rows` best, the rest folded away below it.
- Every text that comes from a file (names, notes) is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from data.atomic import write_atomic
from data.labels import LABELS

REPORT_NAME = "report.html"
EMBED_LIMIT_MB = 25.0
MAX_SHADED, MAX_ROWS = 5, 10  # segments shaded on the timeline / shown unfolded in the table
# curves of the timeline, top to bottom: (outputs key, label, fixed [0, 1] axis)
CURVES = (("localizer_curve_visual", "visual localizer curve", True),
          ("localizer_curve_audio", "audio localizer curve", True),
          ("localizer_curve_joint", "joint localizer curve", True),
          ("visual_scores", "visual frame score", True),
          ("audio_scores", "audio frame score", True),
          ("joint_scores", "joint frame score", True),
          ("visual_recon_error", "visual recon. error", False),
          ("audio_recon_error", "audio recon. error", False))
MODALITY_COLOURS = {"visual": "#1f77b4", "audio": "#2ca02c", "joint": "#d62728"}
_WIDTH, _PANEL, _GAP, _LEFT = 900, 46, 10, 130  # svg geometry, pixels

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 8px; word-break: break-all; }
.meta { color: #555; font-size: 12px; margin-bottom: 16px; }
.clip { border: 1px solid #ddd; border-radius: 8px; padding: 16px; margin-bottom: 24px; }
.top { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
.top > div { flex: 1; min-width: 280px; }
video { width: 320px; max-width: 100%; background: #000; border-radius: 4px; }
.label { font-size: 18px; font-weight: 600; } .label.fake { color: #b00020; } .label.real { color: #1b5e20; }
.probs td { padding: 1px 6px; font-size: 13px; } .bar { background: #eee; width: 160px; height: 10px; }
.bar div { background: #555; height: 10px; }
.note { background: #fff4e5; border-left: 3px solid #f0a000; padding: 4px 8px; font-size: 12px; margin: 6px 0; }
svg.timeline { display: block; margin-top: 12px; cursor: crosshair; }
table.segments { border-collapse: collapse; margin-top: 10px; font-size: 13px; }
table.segments th, table.segments td { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: right; }
table.segments tr.seek { cursor: pointer; } table.segments tr.seek:hover { background: #eef4ff; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
"""

_SCRIPT = """
document.querySelectorAll('.clip').forEach(function (clip) {
  var video = clip.querySelector('video'), head = clip.querySelector('.playhead');
  var svg = clip.querySelector('svg.timeline'), duration = parseFloat(svg.dataset.duration);
  var left = parseFloat(svg.dataset.left), width = parseFloat(svg.dataset.width);
  function seek(t) { if (video) { video.currentTime = t; video.play(); } }
  clip.querySelectorAll('tr.seek').forEach(function (row) {
    row.addEventListener('click', function () { seek(parseFloat(row.dataset.start)); });
  });
  svg.addEventListener('click', function (e) {
    var box = svg.getBoundingClientRect(), x = (e.clientX - box.left) * svg.viewBox.baseVal.width / box.width;
    if (x >= left) { seek(Math.min(duration, (x - left) / width * duration)); }
  });
  if (video) {
    video.addEventListener('timeupdate', function () {
      var x = left + Math.min(1, video.currentTime / duration) * width;
      head.setAttribute('x1', x); head.setAttribute('x2', x);
    });
  }
});
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _polyline(times: np.ndarray, values: np.ndarray, duration: float, y0: float, lo: float,
              hi: float) -> str:
    """SVG points of a curve in the panel whose top is y0."""
    width = _WIDTH - _LEFT - 10
    span = hi - lo if hi > lo else 1.0
    xs = _LEFT + np.clip(times / duration, 0, 1) * width
    ys = y0 + _PANEL - (np.clip(values, lo, hi) - lo) / span * _PANEL
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def timeline_svg(outputs: Mapping[str, np.ndarray], segments: Sequence[Mapping], fps: float,
                 duration: float) -> str:
    """Inline SVG: one panel per curve of CURVES over time, segments shaded, a playhead."""
    width = _WIDTH - _LEFT - 10
    curves = [(key, label, fixed) for key, label, fixed in CURVES if key in outputs]
    height = len(curves) * (_PANEL + _GAP) + 24
    duration = max(duration, 1e-6)
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
             f'width="{_WIDTH}" height="{height}" data-duration="{duration:.4f}" data-left="{_LEFT}" '
             f'data-width="{width}" role="img" aria-label="frame scores and reconstruction errors over time">']
    segments = list(segments)[:MAX_SHADED]
    top_score = max((float(s["score"]) for s in segments), default=1.0) or 1.0
    for segment in reversed(segments):  # best drawn last, on top
        x0 = _LEFT + min(max(segment["start"] / duration, 0.0), 1.0) * width
        x1 = _LEFT + min(max(segment["end"] / duration, 0.0), 1.0) * width
        opacity = 0.08 + 0.27 * max(float(segment["score"]), 0.0) / top_score
        colour = MODALITY_COLOURS.get(segment.get("modality"), "#ff7f0e")
        parts.append(f'<rect x="{x0:.1f}" y="0" width="{max(x1 - x0, 1.0):.1f}" height="{height - 24}" '
                     f'fill="{colour}" fill-opacity="{opacity:.3f}"><title>{segment["start"]:.2f}-'
                     f'{segment["end"]:.2f} s, score {segment["score"]:.3f} ({_esc(segment.get("modality"))})'
                     f'</title></rect>')
    for row, (key, label, fixed) in enumerate(curves):
        y0 = row * (_PANEL + _GAP)
        values = np.asarray(outputs[key], dtype=np.float64).reshape(-1)  # [T]
        times = (np.arange(values.shape[0]) + 0.5) / fps  # [T] frame centres, seconds
        finite = values[np.isfinite(values)]
        lo, hi = (0.0, 1.0) if fixed else ((float(finite.min()), float(finite.max())) if finite.size else (0, 1))
        parts.append(f'<rect x="{_LEFT}" y="{y0}" width="{width}" height="{_PANEL}" fill="none" stroke="#ccc"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y0 + _PANEL / 2 + 4}" text-anchor="end" font-size="11">'
                     f'{_esc(label)}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y0 + 9}" text-anchor="end" font-size="8" fill="#888">'
                     f'{hi:.3g}</text><text x="{_LEFT - 6}" y="{y0 + _PANEL}" text-anchor="end" '
                     f'font-size="8" fill="#888">{lo:.3g}</text>')
        if values.size:
            parts.append(f'<polyline fill="none" stroke="#333" stroke-width="1.2" '
                         f'points="{_polyline(times, values, duration, y0, lo, hi)}"/>')
    axis_y = len(curves) * (_PANEL + _GAP)
    for k, tick in enumerate(np.linspace(0, duration, 6)):
        x = _LEFT + tick / duration * width
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"  # the end labels stay inside
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="{anchor}" font-size="10" '
                     f'fill="#555">{tick:.1f} s</text>')
    parts.append(f'<line class="playhead" x1="{_LEFT}" x2="{_LEFT}" y1="0" y2="{axis_y}" '
                 f'stroke="#000" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def _video_source(video_path: Path, page_dir: Path, embed_limit_mb: float) -> tuple[str, str | None]:
    """(src attribute, note or None): a data URI, or a path relative to the page."""
    size = video_path.stat().st_size
    if size <= embed_limit_mb * 1e6:
        data = base64.b64encode(video_path.read_bytes()).decode("ascii")
        return f"data:video/mp4;base64,{data}", None
    relative = os.path.relpath(video_path.resolve(), page_dir.resolve())
    return (Path(relative).as_posix(),
            f"the video ({size / 1e6:.0f} MB) is linked, not embedded: keep it at {relative} "
            f"relative to this page")


def _clip_html(record: Mapping, outputs: Mapping[str, np.ndarray], page_dir: Path, index: int,
               embed_limit_mb: float, page_note: str | None = None) -> str:
    path = Path(record["file"])
    src, video_note = _video_source(path, page_dir, embed_limit_mb)
    label = record["label"]
    probs = "".join(
        f'<tr><td>{_esc(name)}</td><td><div class="bar"><div style="width:{100 * p:.1f}%"></div></div>'
        f'</td><td>{p:.3f}</td></tr>' for name, p in ((n, record["class_probs"][n]) for n in LABELS))
    notes = [record.get("audio_note"), record.get("note") if record.get("note") != page_note else None,
             video_note]
    notes_html = "".join(f'<div class="note">{_esc(n)}</div>' for n in notes if n)
    rows = [f'<tr class="seek" data-start="{s["start"]:.4f}" title="play from {s["start"]:.2f} s">'
            f'<td>{rank}</td><td>{s["start"]:.2f}</td><td>{s["end"]:.2f}</td><td>{s["end"] - s["start"]:.2f}</td>'
            f'<td>{s["score"]:.3f}</td><td><span class="swatch" style="background:'
            f'{MODALITY_COLOURS.get(s.get("modality"), "#ff7f0e")}"></span>{_esc(s.get("modality"))}</td></tr>'
            for rank, s in enumerate(record["segments"], 1)]
    header = ('<tr><th>#</th><th>start (s)</th><th>end (s)</th><th>length (s)</th><th>score</th>'
              '<th>branch</th></tr>')
    table = f'<table class="segments">{header}{"".join(rows[:MAX_ROWS])}</table>' if rows else \
        '<p>No segment proposed.</p>'
    if len(rows) > MAX_ROWS:
        table += (f'<details><summary>{len(rows) - MAX_ROWS} more segment(s)</summary>'
                  f'<table class="segments">{header}{"".join(rows[MAX_ROWS:])}</table></details>')
    verdict = "real" if label == "real" else "fake"
    # soft routing takes segments from several branches; say which ones the table holds
    branches = ", ".join(sorted({str(seg.get("modality")) for seg in record["segments"]})) \
        or str(record["routed_branch"])
    weights = record.get("modality_probs")  # soft routing: what weighed each branch's segments
    if weights:
        branches += " (weighed by P(modified) " + ", ".join(f"{m} {p:.2f}" for m, p in weights.items()) + ")"
    return (f'<section class="clip" id="clip-{index}"><h2>{_esc(path.name)}</h2>'
            f'<div class="top"><video controls preload="auto" src="{src}"></video><div>'
            f'<div class="label {verdict}">{_esc(label)}</div>'
            f'<div class="meta">segments from the {_esc(branches)} branch{"es" if "," in branches else ""}; '
            f'{record["duration"]:.2f} s, {record["fps"]:g} fps, {record["n_frames"]} frames'
            f'{"" if record["has_audio"] else ", no audio stream"}</div>'
            f'<table class="probs">{probs}</table>{notes_html}</div></div>'
            f'{timeline_svg(outputs, record["segments"], float(record["fps"]), float(record["duration"]))}'
            f'{table}</section>')


def write_report(output: Mapping, frame_outputs: Mapping[str, Mapping[str, np.ndarray]],
                 report_dir: str | Path, *, embed_limit_mb: float = EMBED_LIMIT_MB) -> Path:
    """Write report_dir/report.html for a `localize_videos` output and each video's frame
    outputs ({file: predict_arrays outputs}); returns the page's path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    clips = "".join(_clip_html(record, frame_outputs[record["file"]], report_dir, index, embed_limit_mb,
                               output.get("note"))
                    for index, record in enumerate(output["videos"]))
    settings = output.get("proposal_config")
    settings_html = (f'<details><summary>proposal settings: {_esc(output.get("proposal_source", ""))}'
                     f'</summary><pre>{_esc(json.dumps(settings, indent=1))}</pre></details>'
                     if settings else "")
    note = f'<div class="note">{_esc(output["note"])}</div>' if output.get("note") else ""
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>rtdl localize: {len(output["videos"])} clip(s)</title><style>{_STYLE}</style></head><body>'
            f'<h1>Forged segments, {len(output["videos"])} clip(s)</h1>'
            f'<div class="meta">checkpoint {_esc(output.get("checkpoint"))}; '
            f'{_esc(output.get("extractors", {}).get("summary", ""))}; rtdl {_esc(output.get("rtdl_version"))}. '
            f'Click a segment row or the timeline to play from there; shading: '
            + "".join(f'<span class="swatch" style="background:{c}"></span>{m} ' for m, c in MODALITY_COLOURS.items())
            + f'branch, darker = higher score.</div>{note}{settings_html}{clips}'
            f'<script>{_SCRIPT}</script></body></html>')
    return write_atomic(report_dir / REPORT_NAME, page)
