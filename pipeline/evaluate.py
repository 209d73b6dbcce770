"""`rtdl evaluate`: read predictions, probabilities and metadata, compute the metrics of a
protocol (pipeline/metrics.py), write them as JSON and print them as the paper's Table 1.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from data.atomic import write_atomic
from pipeline.metrics import PROTOCOLS, evaluate_predictions

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- files and table

def load_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: {what} file does not exist")
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: {what} file is not valid JSON: {err}") from err


def parse_list(text: str | None, cast: type, option: str) -> tuple | None:
    """'0.5,0.75' -> (0.5, 0.75); None stays None."""
    if text is None:
        return None
    try:
        values = tuple(cast(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated {cast.__name__} values, "
                         f"got {text!r}") from None
    if not values:
        raise ValueError(f"{option}: empty list")
    return values


def evaluate_files(predictions_path: str | Path, metadata_path: str | Path, *,
                   split: str | None = None, protocol: str = "rtdeeploc",
                   ap_iou: Sequence[float] | None = None, ar_n: Sequence[int] | None = None,
                   ar_iou: Sequence[float] | None = None, probs_path: str | Path | None = None,
                   out_path: str | Path | None = None) -> dict:
    """`rtdl evaluate`: read predictions (+ probabilities) and metadata, compute the metrics
    of `protocol` (each list overridable), write them to `out_path` when given."""
    from data.metadata import load_metadata, records_for_split

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    chosen = PROTOCOLS[protocol]
    records = load_metadata(metadata_path)
    if split is not None:
        records = records_for_split(records, split)
    predictions = load_json(predictions_path, "predictions")
    probs = load_json(probs_path, "probabilities") if probs_path is not None else None
    metrics = evaluate_predictions(
        predictions, records,
        ap_iou=ap_iou or chosen.ap_iou, ar_n=ar_n or chosen.ar_n,
        ar_iou=ar_iou or chosen.ar_iou, video_probs=probs, source=str(predictions_path),
        probs_source=str(probs_path))
    metrics["protocol"] = protocol
    metrics["thresholds"] = {
        "ap_iou": list(ap_iou or chosen.ap_iou), "ar_n": list(ar_n or chosen.ar_n),
        "ar_iou": list(ar_iou or chosen.ar_iou),
        "overridden": [name for name, given in (("ap_iou", ap_iou), ("ar_n", ar_n), ("ar_iou", ar_iou))
                       if given]}
    metrics["split"] = split
    metrics["videos"] = len(records)
    if out_path is not None:
        out_path = write_atomic(out_path, json.dumps(metrics, indent=2) + "\n")
        log.info("wrote %s", out_path)
    return metrics


def format_table(metrics: Mapping[str, Any]) -> str:
    """Metrics as a text table laid out like the paper's Table 1: AP at each IoU, Avg., AR at
    each N, Avg., AUC, in percent with two decimals ('-' where a value is missing)."""
    def pct(value: Any) -> str:
        return "-" if value is None else f"{100.0 * float(value):.2f}"

    ap = metrics.get("ap", {})
    ar = metrics.get("ar", {})
    groups = [("AP@IoU", [(k, ap[k]) for k in ap] + [("Avg.", metrics.get("ap_avg"))]),
              ("AR@N", [(k, ar[k]) for k in ar] + [("Avg.", metrics.get("ar_avg"))]),
              ("", [("AUC", metrics.get("auc"))])]
    header, values, spans = [], [], []
    for title, cells in groups:
        width = 0
        for name, value in cells:
            cell_width = max(len(name), len(pct(value)), 5)
            header.append(name.rjust(cell_width))
            values.append(pct(value).rjust(cell_width))
            width += cell_width + 1
        spans.append(title.center(width - 1))
    sep = " | "
    lines = [sep.join(spans)]
    # split header/value cells back into their groups for aligned separators
    out_header, out_values, i = [], [], 0
    for _, cells in groups:
        n = len(cells)
        out_header.append(" ".join(header[i:i + n]))
        out_values.append(" ".join(values[i:i + n]))
        i += n
    lines.append(sep.join(out_header))
    lines.append("-" * len(lines[-1]))
    lines.append(sep.join(out_values))
    return "\n".join(lines)


PROTOCOL_SOURCES = {"rtdeeploc": "RT-DeepLoc paper, Table 1", "lavdf": "LAV-DF paper",
                    "avdeepfake1m": "AV-Deepfake1M benchmark"}


def describe_protocol(metrics: Mapping[str, Any]) -> list[str]:
    """Lines saying which protocol and thresholds produced `metrics` (from `evaluate_files`)."""
    thresholds = metrics.get("thresholds", {})
    overridden = set(thresholds.get("overridden", ()))

    def listed(name: str) -> str:
        values = ",".join(f"{v:g}" for v in thresholds.get(name, ()))
        return values + (" (overridden)" if name in overridden else "")

    protocol = metrics.get("protocol", "?")
    split = metrics.get("split")
    scope = f"split {split!r}" if split else "all records"
    lines = [f"protocol: {protocol} ({PROTOCOL_SOURCES.get(protocol, 'custom')}); {scope}, "
             f"{metrics.get('videos', '?')} videos",
             f"AP at IoU {listed('ap_iou')}; AR@N for N = {listed('ar_n')}, averaged over IoU "
             f"{listed('ar_iou')}"]
    if metrics.get("auc") is None:
        lines.append("AUC: - (no --probs given)")
    return lines


def format_markdown(metrics: Mapping[str, Any]) -> str:
    """Metrics as a Markdown table (percent, two decimals), for reports and issues."""
    def pct(value: Any) -> str:
        return "-" if value is None else f"{100.0 * float(value):.2f}"

    cells = ([(f"AP@{k}", v) for k, v in metrics.get("ap", {}).items()] + [("AP avg.", metrics.get("ap_avg"))]
             + [(f"AR@{k}", v) for k, v in metrics.get("ar", {}).items()] + [("AR avg.", metrics.get("ar_avg"))]
             + [("AUC", metrics.get("auc"))])
    return "\n".join(["| " + " | ".join(name for name, _ in cells) + " |",
                      "|" + "|".join("---:" for _ in cells) + "|",
                      "| " + " | ".join(pct(value) for _, value in cells) + " |"])
