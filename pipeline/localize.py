"""`rtdl localize`: raw videos in, forged segments out, with the feature extractors the
checkpoint was trained on (rebuilt from its `feature_settings`).

Output JSON (one object):

    {"rtdl_version": ..., "checkpoint": path, "extractors": {...},
     "proposal_config": {settings used}, "proposal_source": where they came from, "videos": [
      {"file", "duration", "fps", "n_frames", "has_audio",
       "label", "class_probs": {name: p}, "routed_branch": "visual" | "audio" | "joint",
       "modality_probs": {"visual": p, "audio": p},   # soft routing only: what each
                     # modality's segments were weighed by (the class head's P(modality
                     # modified), mixed with the curve's peak by routing_evidence_weight)
       "segments": [{"start", "end", "score", "modality"}, ...],   # best first
       "extractors": {"visual": {"name", "pretrained", "id"}, "audio": {...}, "summary": text},
       "note": present when a backbone is random-initialised or weight-free,
       "audio_note": present when the clip has no audio stream (its audio segments are left
                     out: the audio branch saw substituted silence),
       "plot": PNG path or null}, ...],
     "report": path of the HTML report (with --report)}

Choices
- `modality` of a segment is the branch whose frame scores produced it (Sec. 3.1 routing):
  "visual", "audio" or "joint" (both modalities, or a video predicted real).
- The extractors are identified from their own `.settings` (`pretrained`, `weights_id` or
  `name`), so a random-initialised backbone is visible in every output record and plot.
- Extractors are built once and reused for every video; a video that fails to decode
  stops the run with an error naming it (a partial output would look complete).
- The plot shows first the curve(s) the segments were cut from (with the settings the
  checkpoint's dev split chose, often the desynchrony and the learned deviation rather than
  a head score), then the routed branch's head score and both reconstruction errors, as the
  paper's Figure 4 does, and the picture's change when segment ends were snapped to it;
  `pipeline.plots.plot_evidence` draws it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from data.atomic import write_atomic
from data.config import to_dict
from data.feature_settings import FeatureSettings, backbone_source
from data.version import __version__
from pipeline.checkpoint import load_checkpoint
from pipeline.devices import resolve_device
from pipeline.inference import DEFAULT_MAX_FRAMES, localize_features
from pipeline.proposal_settings import resolve_proposal_config
from pipeline.proposals import ProposalConfig
from pipeline.video_features import extract_video_features

log = logging.getLogger(__name__)


def describe_extractor(extractor) -> dict:
    """{"name", "pretrained", "id"} of an extractor, from its settings."""
    settings = dict(extractor.settings)
    name = str(extractor.name)
    pretrained = backbone_source(settings) == "pretrained"
    ident = settings.get("weights_id") or settings.get("revision") or settings.get("name") or name
    return {"name": name, "pretrained": pretrained, "id": str(ident)}


def extractor_note(descriptions: dict[str, dict]) -> str | None:
    """A warning when any backbone is not pretrained (random-initialised or weight-free)."""
    unpretrained = [f"{modality}={descriptions[modality]['name']} ({descriptions[modality]['id']})"
                    for modality in ("visual", "audio") if not descriptions[modality]["pretrained"]]
    if not unpretrained:
        return None
    return ("features from backbones without pretrained weights (random-initialised or "
            "weight-free): " + ", ".join(unpretrained) + "; not the paper's TSN / wav2vec 2.0 features")


def build_checkpoint_extractors(feature_settings: dict, device, checkpoint_label: str,
                                visual_weights: str | None = None):
    """(visual, audio) extractors rebuilt from a checkpoint's feature settings.

    visual_weights: where the TSN weight file is now, when it moved since extraction (its
    sha256 must match the recorded one). Missing weights raise FileNotFoundError naming
    them and how to supply them.
    """
    from extractors.build import build_extractors_from_settings
    from extractors.weights import WeightsUnavailableError

    try:
        return build_extractors_from_settings(feature_settings, str(device), visual_weights=visual_weights)
    except (WeightsUnavailableError, OSError) as err:
        raise FileNotFoundError(
            f"{checkpoint_label}: the checkpoint's features were extracted with weights that are not "
            f"available on this machine ({err}). `rtdl localize` must use the same extractors as "
            f"training (field 'feature_settings' of the checkpoint: {feature_settings}); supply "
            f"those weights as the message above says (a moved TSN weight file: --visual-weights PATH), "
            f"then run again") from err


def segment_source(result: dict, proposal_config: ProposalConfig | None) -> str:
    """Which curve(s) a video's segments were cut from, in words (for titles)."""
    routing = (proposal_config or ProposalConfig()).routing
    if routing == "joint":
        return "the joint curve (joint routing)"
    if routing == "soft":
        return "the visual and audio curves (soft routing)"
    return f"the {result['routed_branch']} branch (argmax routing: the predicted class)"


def plot_video(outputs: dict, result: dict, fps: float, title: str, path: Path,
               proposal_config: ProposalConfig | None = None) -> Path:
    """Figure-4-style PNG: the curve(s) the segments were cut from, the routed branch's head
    score, both reconstruction errors, and the picture's change when ends were snapped."""
    from pipeline.plots import plot_evidence

    branch = result["routed_branch"]
    n = outputs["visual_scores"].shape[0]
    times = (np.arange(n) + 0.5) / fps  # [T] frame centres, seconds
    # "... score" labels get the fixed [0, 1] axis (pipeline/plots.py)
    curves = {f"{name} localizer score": outputs[key]
              for key, name in ((f"localizer_curve_{b}", b) for b in ("visual", "audio", "joint"))
              if key in outputs}
    curves.update({
        f"{branch} head frame score": outputs[f"{branch}_scores"],
        "visual recon. error": outputs["visual_recon_error"],
        "audio recon. error": outputs["audio_recon_error"],
    })
    if proposal_config is not None and proposal_config.snap_frames and "visual_change" in outputs:
        curves["visual change (ends snap to it)"] = outputs["visual_change"]
    return plot_evidence(times, curves, result["segments"], None, title, path)


def _plot_name(path: Path, index: int) -> str:
    # the index keeps names unique when two inputs share a file name in different folders
    return f"{index:03d}_{path.stem}.png"


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def expand_video_inputs(items: Sequence[str | Path]) -> list[Path]:
    """Video paths from files, folders (their video files, sorted, not recursive) and glob
    patterns, in the order given; duplicates kept once. Names what matched nothing."""
    import glob

    videos: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text)) if Path(m).is_file()]
            if not matches:
                raise FileNotFoundError(f"{text}: no file matches this pattern")
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).iterdir()
                             if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not matches:
                raise FileNotFoundError(f"{text}: the folder holds no video file "
                                        f"({', '.join(VIDEO_SUFFIXES)})")
        elif Path(text).is_file():
            matches = [Path(text)]
        else:
            raise FileNotFoundError(f"{text}: video not found")
        videos += [m for m in matches if m not in videos]
    return videos


def localize_videos(video_paths: Sequence[str | Path], checkpoint, *, checkpoint_label: str = "checkpoint",
                    plot_dir: str | Path | None = None, proposal_config: ProposalConfig | None = None,
                    device: str = "auto", max_frames: int = DEFAULT_MAX_FRAMES, extractors=None,
                    visual_weights: str | None = None, frame_outputs: dict | None = None) -> dict:
    """Localize forgeries in raw videos with a loaded checkpoint (`LoadedCheckpoint`).

    extractors: an already built (visual, audio) pair; None rebuilds them from the
    checkpoint's feature settings. frame_outputs: a dict to fill with each video's frame
    curves ({file: predict_arrays outputs}, for the report). Returns the output object
    described in the module doc.
    """
    torch_device = resolve_device(device)
    if extractors is None:
        extractors = build_checkpoint_extractors(checkpoint.feature_settings, torch_device, checkpoint_label,
                                                 visual_weights)
    visual_extractor, audio_extractor = extractors
    described = {"visual": describe_extractor(visual_extractor), "audio": describe_extractor(audio_extractor)}
    note = extractor_note(described)
    if note:
        log.warning("%s", note)
    extracted = FeatureSettings.of_extractors(visual_extractor, audio_extractor)
    # the one feature check (data/feature_settings.py): rebuilt extractors must make the
    # features the model was trained on
    FeatureSettings(checkpoint.feature_settings).check_compatible(
        extracted, label=checkpoint_label, other_label="the extractors built for these videos")
    summary = extracted.describe()
    described["summary"] = summary
    videos = []
    from tqdm import tqdm

    for index, raw_path in enumerate(tqdm(video_paths, desc="localizing", unit="video",
                                          disable=len(video_paths) < 2)):
        path = Path(raw_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: video not found")
        visual, audio, info = extract_video_features(path, visual_extractor, audio_extractor)
        result, outputs = localize_features(checkpoint.model, visual, audio, float(info["fps"]),
                                            float(info["duration"]), proposal_config=proposal_config,
                                            device=torch_device, max_frames=max_frames)
        record = {"file": str(path), "duration": float(info["duration"]), "fps": float(info["fps"]),
                  "n_frames": int(info["n_frames"]), "has_audio": bool(info["has_audio"]), **result,
                  "extractors": described, "plot": None}
        if not info["has_audio"]:
            _drop_silent_audio_evidence(record)
        if note:
            record["note"] = note
        if plot_dir is not None:
            top = result["class_probs"][result["label"]]
            title = (f"{path.name}: predicted {result['label']} (p={top:.2f}), segments from "
                     f"{segment_source(result, proposal_config)}\n{summary}")
            png = plot_video(outputs, result, float(info["fps"]), title,
                             Path(plot_dir) / _plot_name(path, index), proposal_config)
            record["plot"] = str(png)
        if frame_outputs is not None:
            frame_outputs[record["file"]] = outputs
        log.info("%s: %s, %d segment(s)", path, result["label"], len(result["segments"]))
        videos.append(record)
    return {"rtdl_version": __version__, "checkpoint": checkpoint_label, "extractors": described,
            **({"note": note} if note else {}), "videos": videos}


def _drop_silent_audio_evidence(record: dict) -> None:
    """A clip without an audio stream was scored on substituted silence: its audio branch
    found nothing real, so audio segments are left out and the record says so."""
    audio = [s for s in record["segments"] if s["modality"] == "audio"]
    record["segments"] = [s for s in record["segments"] if s["modality"] != "audio"]
    label = (f"; its label {record['label']!r} rests on silence"
             if record["label"] in ("audio_only", "both") else "")
    record["audio_note"] = (f"no audio stream: audio features are of substituted silence, "
                            f"{len(audio)} audio segment(s) left out{label}")
    log.warning("%s: %s", record["file"], record["audio_note"])


def localize_to_file(video_paths: Sequence[str | Path], checkpoint_path: str | Path, out_path: str | Path, *,
                     plot_dir: str | Path | None = None, proposal_config: ProposalConfig | None = None,
                     device: str = "auto", max_frames: int = DEFAULT_MAX_FRAMES,
                     visual_weights: str | None = None, proposals_path: str | Path | None = None,
                     proposal_overrides: Sequence[str] = (), report_dir: str | Path | None = None) -> dict:
    """Load the checkpoint, localize every video, write `out_path` (JSON) and, with
    `report_dir`, the HTML report (pipeline/report.py). Returns the object.

    proposal_config None chooses the settings as `rtdl localize` does (pipeline/proposal_settings.py:
    `proposals_path`, else the checkpoint's tuned settings, else the defaults).
    """
    if not video_paths:
        raise ValueError("no videos given")
    checkpoint = load_checkpoint(checkpoint_path, map_location=resolve_device(device))
    if proposal_config is None:
        proposal_config, source = resolve_proposal_config(checkpoint, str(checkpoint_path),
                                                          proposals_path, proposal_overrides)
    else:
        source = "given by the caller"
    frames: dict = {}
    output = localize_videos(video_paths, checkpoint, checkpoint_label=str(checkpoint_path),
                             plot_dir=plot_dir, proposal_config=proposal_config, device=device,
                             max_frames=max_frames, visual_weights=visual_weights,
                             frame_outputs=frames)
    output = {**{k: v for k, v in output.items() if k != "videos"},
              "proposal_config": to_dict(proposal_config), "proposal_source": source,
              "videos": output["videos"]}
    if report_dir is not None:
        from pipeline.report import write_report

        output["report"] = str(write_report(output, frames, report_dir))
    write_atomic(out_path, json.dumps(output, indent=1))
    return output
