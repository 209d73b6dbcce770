"""The `rtdl` command line. Thin: each command parses options and calls one function in
`pipeline/`; heavy imports happen inside the commands so `rtdl --help` stays fast."""
from __future__ import annotations

import contextlib
import errno
import logging

import click

from data.version import __version__
from pipeline.demo import DemoConfig
from pipeline.options import ExtractionOptions, InferenceOptions, TuningOptions


def error_line(err: BaseException) -> str:
    """One line saying what went wrong and where, for any error a command lets through.

    An OSError names its file and the system's reason (`<path>: Permission denied`); a full
    disk is named even when it only appears as the cause of another error (HDF5 reports it
    as "unexpected pos"). Other errors are raised with the file in their message already.
    """
    cause: BaseException | None = err
    while cause is not None:  # the disk-full error may sit anywhere in the chain
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            err = cause
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(err, OSError) and err.strerror:
        reason = err.strerror
        if err.errno == errno.ENOSPC and "free" not in reason:
            reason += " (free some space and rerun: finished work is kept)"
        return f"{err.filename}: {reason}" if err.filename else reason
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split())  # one line, also for messages that wrap


@contextlib.contextmanager
def usage_errors(*kinds: type[BaseException]):
    """Report `kinds` (default ValueError) raised inside as a usage error: the user's options
    were wrong, so click prints the usage line and exits with 2."""
    try:
        yield
    except kinds or (ValueError,) as err:
        raise click.UsageError(str(err)) from err


class RtdlGroup(click.Group):
    """The command group; turns errors a command does not handle into one `Error:` line and
    exit code 1 instead of a traceback (`-vv` logs the traceback for debugging). The one place
    that does it: commands let errors through instead of catching them each."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own control flow (`--help`, Ctrl-C), RuntimeErrors too
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            logging.getLogger("rtdl").debug("command failed", exc_info=True)
            raise click.ClickException(error_line(err)) from err


@click.group(cls=RtdlGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rtdl")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """rtdl: weakly-supervised multimodal deepfake temporal localization (RT-DeepLoc)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def check_proposal_options(proposals_path, overrides) -> None:
    """A bad --proposals file or --set key is a usage error, found before any model runs."""
    from pipeline.proposal_settings import load_proposal_config

    with usage_errors():
        load_proposal_config(proposals_path, overrides)


def inference_options(command):
    """Options shared by the commands that run a trained model (predict, localize)."""
    options = [
        click.option("--proposals", "proposals_path", type=click.Path(exists=True, dir_okay=False),
                     help="YAML of ProposalConfig fields (thresholds, nms, ...), e.g. from `rtdl "
                          "tune`. Default: the checkpoint's tuned settings, else the defaults."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a proposal setting, e.g. --set nms=hard --set min_frames=3."),
        click.option("--device", default=InferenceOptions.device, show_default=True,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--max-frames", default=InferenceOptions.max_frames, show_default=True,
                     type=click.IntRange(min=0),
                     help="Longer videos are processed in windows of this many frames (0: whole)."),
    ]
    for option in reversed(options):  # click applies decorators bottom-up
        command = option(command)
    return command


# Commands are added below, one block each.


# ----------------------------------------------------------------------------- rtdl train
@main.command("train")
@click.option("--cache", "cache_paths", multiple=True, required=True,
              help="Feature cache: an .h5 file, shard files or a glob (repeatable).")
@click.option("--metadata", required=True, type=click.Path(exists=True),
              help="Dataset metadata (LAV-DF metadata.json or AV-Deepfake1M *_metadata.json).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: last.pt, best.pt, metrics.jsonl, curves.png, proposals.yaml, "
                   "run_config.yaml.")
@click.option("--config", "config_path",
              help="YAML with `model:` and `train:` sections (unknown keys rejected), or the name "
                   "of a preset shipped with rtdl (`demo`: the demo's recipe).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.lr=1e-4 --set model.mask_ratio=0.5.")
@click.option("--epochs", type=click.IntRange(min=1), help="Number of epochs (train.epochs).")
@click.option("--seed", type=int, help="Seed for init, data order, crops and masking (train.seed).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="train.device.")
@click.option("--in-memory", is_flag=True, default=None, help="Hold the whole cache in RAM.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--tensorboard", is_flag=True, default=None,
              help="Also log each epoch to OUT/tensorboard (needs the tensorboard extra).")
def train_command(cache_paths, metadata, out_dir, config_path, overrides, epochs, seed, device,
                  in_memory, resume, tensorboard):
    """Train RT-DeepLoc on cached features with video-level labels."""
    from pipeline.train import describe_outcome, train_run
    from pipeline.train_config import load_run_config

    with usage_errors():
        run_config = load_run_config(config_path, overrides, epochs=epochs, seed=seed,
                                     device=device, in_memory=in_memory, tensorboard=tensorboard)
    cache = cache_paths[0] if len(cache_paths) == 1 else list(cache_paths)
    outcome = train_run(run_config, cache, metadata, out_dir, resume=resume)
    import os
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        for line in describe_outcome(outcome):
            click.echo(line)


# ----------------------------------------------------------------------------- rtdl tune
@main.command("tune")
@click.option("--cache", "cache_paths", multiple=True, required=True,
              help="Feature cache: an .h5 file, shard files or a glob (repeatable).")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint written by `rtdl train` (best.pt / last.pt).")
@click.option("--metadata", required=True, type=click.Path(exists=True),
              help="Dataset metadata with ground-truth segments.")
@click.option("--split", default="dev", show_default=True,
              help="Validation split to tune on (dev / val; never test).")
@click.option("--grid", "grid_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML with `signal:` and / or `proposals:` sections of candidate values "
                   "(default: the built-in two-stage grid).")
@click.option("--protocol", default="rtdeeploc", show_default=True,
              type=click.Choice(["rtdeeploc", "lavdf", "avdeepfake1m"]),
              help="Thresholds the objective (0.5 * mean AP + 0.5 * mean AR) is computed with.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="YAML of the chosen settings [default: proposals.yaml beside the checkpoint].")
@click.option("--write-checkpoint", is_flag=True,
              help="Also store the chosen settings in the checkpoint (atomic rewrite, same weights).")
@click.option("--max-videos", default=TuningOptions.max_videos, show_default=True, type=click.IntRange(min=0),
              help="Tune on at most this many videos of the split: a fixed sample stratified by "
                   "label (0: all; the cost grows linearly with it).")
@click.option("--workers", default=TuningOptions.workers, show_default=True, type=click.IntRange(min=0),
              help="Processes scoring the candidates (0: one per CPU core, at most 16, when the "
                   "search is large enough to gain; the chosen settings are the same).")
@click.option("--passes", default=TuningOptions.passes, show_default=True, type=click.IntRange(min=1),
              help="Search the evidence and then the proposal settings, again from the best "
                   "so far while that finds better, at most this many times (1: once; each "
                   "pass costs about as much as the first).")
@click.option("--device", default=InferenceOptions.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
def tune_command(cache_paths, checkpoint, metadata, split, grid_path, protocol, out_path,
                 write_checkpoint, max_videos, workers, passes, device):
    """Choose proposal settings for a checkpoint on a validation split."""
    from pipeline.proposal_tuning import describe_tuning
    from pipeline.tune import tune_checkpoint

    cache = cache_paths[0] if len(cache_paths) == 1 else list(cache_paths)
    result = tune_checkpoint(cache, checkpoint, metadata, split, grid_path=grid_path,
                             protocol=protocol, out_path=out_path,
                             write_checkpoint=write_checkpoint, device=device, max_videos=max_videos,
                             workers=workers or None, passes=passes)
    for line in describe_tuning(result["tuning"]):
        click.echo(line)
    from data.config import to_dict

    click.echo(f"chosen: {to_dict(result['config'])}")
    stored = f"; stored in {checkpoint}" if result["checkpoint_updated"] else ""
    click.echo(f"wrote {result['yaml']}{stored}")


# ----------------------------------------------------------------------------- rtdl predict
@main.command("predict")
@click.option("--cache", "cache_paths", multiple=True, required=True,
              help="Feature cache: an .h5 file, shard files or a glob (repeatable).")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint written by `rtdl train` (best.pt / last.pt).")
@click.option("--metadata", type=click.Path(exists=True),
              help="Dataset metadata; without it every video in the cache is predicted.")
@click.option("--split", help="Only this metadata split (e.g. test); needs --metadata.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Predictions JSON {file: [[score, start, end], ...]}; probabilities go to "
                   "<stem>_probs.json beside it.")
@inference_options
@click.option("--batch-size", default=InferenceOptions.batch_size, show_default=True,
              type=click.IntRange(min=1),
              help="Videos (or windows) per forward pass.")
@click.option("--allow-missing", is_flag=True,
              help="Write empty lists for metadata videos missing from the cache instead of failing.")
def predict_command(cache_paths, checkpoint, metadata, split, out_path, proposals_path, overrides,
                    device, batch_size, max_frames, allow_missing):
    """Predict scored forgery segments for every video of a feature cache (or split)."""
    from pipeline.predict import predict_split

    check_proposal_options(proposals_path, overrides)
    cache = cache_paths[0] if len(cache_paths) == 1 else list(cache_paths)
    summary = predict_split(cache, checkpoint, metadata, split, out_path=out_path,
                            proposals_path=proposals_path, proposal_overrides=overrides,
                            device=device, batch_size=batch_size, max_frames=max_frames,
                            allow_missing=allow_missing)
    click.echo(f"proposal settings: {summary['proposal_source']} (saved to {summary['proposal_settings']})")
    click.echo(f"{summary['videos']} videos, {summary['proposals']} proposals -> "
               f"{summary['predictions']} (probabilities: {summary['probabilities']})")


# ----------------------------------------------------------------------------- rtdl localize
@main.command("localize")
@click.argument("videos", nargs=-1, required=True)
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint written by `rtdl train`; its feature settings pick the extractors.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Segments JSON: per video its label, class probabilities and scored segments.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False),
              help="Folder for one PNG per video: the curves the segments came from, frame "
                   "scores and reconstruction errors.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Folder for report.html: players, labels, timelines and segment tables of "
                   "every video, one self-contained page that opens from disk.")
@inference_options
@click.option("--visual-weights", type=click.Path(exists=True, dir_okay=False),
              help="The TSN weight file the checkpoint's features used, if it moved since extraction.")
def localize_command(videos, checkpoint, out_path, plot_dir, report_dir, proposals_path, overrides,
                     device, max_frames, visual_weights):
    """Localize forged segments in raw videos (files, folders or quoted globs) with a
    trained checkpoint; one JSON for all of them."""
    from pipeline.localize import expand_video_inputs, localize_to_file

    check_proposal_options(proposals_path, overrides)
    with usage_errors(FileNotFoundError):
        paths = expand_video_inputs(videos)
    output = localize_to_file(paths, checkpoint, out_path, plot_dir=plot_dir,
                              proposals_path=proposals_path, proposal_overrides=overrides,
                              device=device, max_frames=max_frames,
                              visual_weights=visual_weights, report_dir=report_dir)
    for video in output["videos"]:
        best = video["segments"][0] if video["segments"] else None
        where = f", best segment {best['start']:.2f}-{best['end']:.2f} s" if best else ""
        click.echo(f"{video['file']}: {video['label']} (p={video['class_probs'][video['label']]:.2f}){where}")
        if "audio_note" in video:
            click.echo(f"  note: {video['audio_note']}")
    if "note" in output:
        click.echo(f"note: {output['note']}", err=True)
    click.echo(f"proposal settings: {output['proposal_source']}")
    if "report" in output:
        click.echo(f"report: {output['report']} (open it in a browser)")
    click.echo(f"wrote {out_path}")


# ----------------------------------------------------------------------------- rtdl evaluate
@main.command("evaluate")
@click.option("--predictions", "predictions_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Predictions JSON {file: [[score, start, end], ...]} (official layout).")
@click.option("--metadata", required=True, type=click.Path(exists=True),
              help="LAV-DF metadata.json / AV-Deepfake1M *_metadata.json, or the dataset folder.")
@click.option("--split", help="Evaluate only this metadata split (e.g. test); default: all records.")
@click.option("--protocol", default="rtdeeploc", show_default=True,
              type=click.Choice(["rtdeeploc", "lavdf", "avdeepfake1m"]),
              help="Thresholds of the RT-DeepLoc paper, the LAV-DF paper or AV-Deepfake1M.")
@click.option("--ap-iou", help="Override the AP IoU thresholds, e.g. 0.5,0.75,0.95.")
@click.option("--ar-n", help="Override the AR@N proposal counts, e.g. 20,10,5,2.")
@click.option("--ar-iou", help="Override the IoU thresholds AR is averaged over.")
@click.option("--probs", "probs_path", type=click.Path(exists=True, dir_okay=False),
              help="Video probabilities {file: [p_real, p_visual_only, p_audio_only, p_both]} "
                   "(rtdl predict's <stem>_probs.json) for the video-level AUC.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Write metrics JSON {ap, ar, ap_avg, ar_avg, auc, ...} (fractions 0-1).")
@click.option("--format", "output_format", default="table", show_default=True,
              type=click.Choice(["table", "markdown", "json"]),
              help="How to print the metrics: a text table, a Markdown table, or JSON only.")
def evaluate_command(predictions_path, metadata, split, protocol, ap_iou, ar_n, ar_iou,
                     probs_path, out_path, output_format):
    """Score predictions against metadata with the official AP@IoU / AR@N protocol (and AUC)."""
    import json

    from pipeline.evaluate import (describe_protocol, evaluate_files, format_markdown,
                                   format_table, parse_list)

    try:
        lists = dict(ap_iou=parse_list(ap_iou, float, "--ap-iou"),
                     ar_n=parse_list(ar_n, int, "--ar-n"),
                     ar_iou=parse_list(ar_iou, float, "--ar-iou"))
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    metrics = evaluate_files(predictions_path, metadata, split=split, protocol=protocol,
                             probs_path=probs_path, out_path=out_path, **lists)
    if output_format == "json":  # stdout holds the JSON alone, for scripts
        click.echo(json.dumps(metrics, indent=1))
    else:
        for line in describe_protocol(metrics):
            click.echo(line)
        click.echo("")
        click.echo(format_table(metrics) if output_format == "table" else format_markdown(metrics))
    if out_path:
        click.echo(f"metrics -> {out_path}", err=output_format == "json")


# ---------------------------------------------------------------- rtdl synth


def _parse_range(text: str, option: str) -> tuple[float, float]:
    """'5' -> (5, 5); '4,6' -> (4, 6)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected SECONDS or MIN,MAX, got {text!r}", param_hint=option)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise click.BadParameter(f"expected SECONDS or MIN,MAX with 0 < MIN <= MAX, got {text!r}",
                                 param_hint=option)
    return values[0], values[1]


def _parse_names(text: str) -> tuple[str, ...]:
    """'a, b,' -> ('a', 'b'): a comma-separated list of names, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@main.command("synth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the mp4 files and metadata.json into.")
@click.option("--num-videos", default=100, show_default=True, type=int,
              help="Clips over all splits (train/dev/test/test_unseen); at least 16.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Same seed, same files.")
@click.option("--duration", default="4,6", show_default=True,
              help="Clip length in seconds: SECONDS or MIN,MAX.")
@click.option("--fps", default=25.0, show_default=True, type=float, help="Video frame rate.")
@click.option("--size", default=96, show_default=True, type=int,
              help="Frame width = height in pixels (even).")
@click.option("--unseen", default="face_blur,time_stretch", show_default=True,
              help="Comma-separated forgery types held out of train/dev/test (only in "
                   "test_unseen); at least one visual and one audio type. Visual: "
                   "mouth_resync, face_swap, face_blur, frozen_frames, face_recolour; audio: "
                   "revoice, splice, time_stretch, spectral_smooth, pitch_shift "
                   "(face_recolour and pitch_shift appear only where named here or in "
                   "--validation-types).")
@click.option("--validation-types", default="",
              help="Comma-separated forgery types held out of train/test/test_unseen and "
                   "used only in part of dev (see --validation-share), so that choices made "
                   "on dev (best epoch, proposal settings) value generalisation to unseen "
                   "forgeries without touching test_unseen; e.g. face_recolour,pitch_shift. "
                   "None by default.")
@click.option("--validation-share", default=0.5, show_default=True, type=float,
              help="Chance that a fake dev clip takes its forgery types from "
                   "--validation-types (each forged modality that has some); the other dev "
                   "fakes use the seen types.")
@click.option("--segment", default="0.2,2", show_default=True,
              help="Forged span length in seconds: SECONDS or MIN,MAX.")
@click.option("--crf", default=28, show_default=True, type=int,
              help="x264 quality (0 = lossless, higher = more compression).")
@click.option("--speech", default="formant", show_default=True,
              type=click.Choice(["formant", "espeak"]),
              help="Who speaks: the built-in formant syllables (bit-exact for a seed) or "
                   "eSpeak NG text-to-speech (real words; samples vary slightly between runs).")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes rendering clips in parallel (same output as 1).")
def synth(out_dir: str, num_videos: int, seed: int, duration: str, fps: float, size: int,
          unseen: str, validation_types: str, validation_share: float, segment: str, crf: int,
          speech: str, workers: int) -> None:
    """Write a synthetic forged-video benchmark (mp4 + LAV-DF metadata) with exact ground truth."""
    import time

    from pipeline.synth import synth_dataset

    unseen_types = _parse_names(unseen)
    held_for_dev = _parse_names(validation_types)
    started = time.perf_counter()
    with usage_errors():
        meta_path = synth_dataset(out_dir, num_videos, seed, workers=workers,
                                  duration_s=_parse_range(duration, "--duration"), fps=fps,
                                  size=size, unseen_types=unseen_types,
                                  validation_types=held_for_dev,
                                  validation_share=validation_share,
                                  segment_s=_parse_range(segment, "--segment"), crf=crf,
                                  speech=speech)
    elapsed = time.perf_counter() - started
    dev_note = (f"; held out for dev validation: {', '.join(held_for_dev)}"
                if held_for_dev else "")
    click.echo(f"wrote {num_videos} clips and {meta_path} in {elapsed:.1f} s "
               f"({elapsed / num_videos:.2f} s per clip); held out for test_unseen: "
               f"{', '.join(unseen_types)}{dev_note}")


# ---------------------------------------------------------------- rtdl extract / rtdl merge
@main.command("extract")
@click.argument("videos", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Feature cache to write (.h5); shards write OUT with a .shard-I-of-N tag.")
@click.option("--metadata", type=click.Path(exists=True),
              help="LAV-DF metadata.json or AV-Deepfake1M *_metadata.json (instead of VIDEOS).")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="Dataset root: videos are ROOT/<file>; default: the metadata's folder.")
@click.option("--visual-model", default=ExtractionOptions.visual_model, show_default=True,
              type=click.Choice(["tsn", "lowlevel"]), help="Visual extractor.")
@click.option("--visual-weights", default=ExtractionOptions.visual_weights, show_default=True,
              help="TSN weights: imagenet, random, or a torchvision / mmaction2 file.")
@click.option("--audio-model", default=ExtractionOptions.audio_model, show_default=True,
              help="wav2vec 2.0 Hugging Face id or local folder, random, logmel, or logmel_voice "
                   "(log-mel plus pitch, voicing and cepstral envelope).")
@click.option("--audio-layer", default=ExtractionOptions.audio_layer, show_default=True, type=int,
              help="wav2vec 2.0 hidden layer (-1 = last).")
@click.option("--device", default=ExtractionOptions.device, show_default=True,
              help="auto, cpu, cuda or cuda:N (under torchrun, cuda means cuda:LOCAL_RANK).")
@click.option("--precision", default=ExtractionOptions.precision, show_default=True,
              type=click.Choice(["auto", "fp32", "bf16", "fp16", "int8"]),
              help="Backbone precision; auto = bf16/fp16 where the hardware runs it natively, "
                   "else fp32; int8 = quantised TSN (opt-in, OpenVINO + NNCF).")
@click.option("--backend", default=ExtractionOptions.backend, show_default=True,
              type=click.Choice(["auto", "torch", "openvino", "onnxruntime"]),
              help="Backbone runtime; auto = on the CPU the TSN on ONNX Runtime for fp32 "
                   "(when installed: rtdl[onnxruntime]), else on OpenVINO, int8 on OpenVINO, "
                   "wav2vec 2.0 on torch; openvino = both on OpenVINO; onnxruntime = the "
                   "TSN on ONNX Runtime (fp32, CPU).")
@click.option("--num-shards", type=click.IntRange(min=1), help="Default: $WORLD_SIZE or 1.")
@click.option("--shard-index", type=click.IntRange(min=0), help="Default: $RANK or 0.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N videos (by key).")
@click.option("--chunk-frames", default=ExtractionOptions.chunk_frames, show_default=True,
              type=click.IntRange(min=1),
              help="Frames decoded and embedded at a time (bounds memory).")
@click.option("--cache-dtype", default=ExtractionOptions.cache_dtype, show_default=True,
              type=click.Choice(["float16", "float32"]), help="Storage dtype of the features.")
@click.option("--decode-workers", default=ExtractionOptions.decode_workers, show_default=True,
              type=click.IntRange(min=0),
              help="Videos decoded in parallel threads (0 = 1 on CPU, 4 on a GPU).")
def extract_command(videos, out, metadata, root, visual_model, visual_weights, audio_model,
                    audio_layer, device, precision, backend, num_shards, shard_index, limit,
                    chunk_frames, cache_dtype, decode_workers):
    """Extract TSN visual + wav2vec 2.0 audio features of videos into an HDF5 cache."""
    from data.feature_settings import FeatureSettings
    from pipeline.extract import run_extraction

    if bool(videos) == bool(metadata):
        raise click.UsageError("give either VIDEO paths or --metadata (one of the two)")
    options = ExtractionOptions(visual_model=visual_model, visual_weights=visual_weights,
                                audio_model=audio_model, audio_layer=audio_layer, device=device,
                                precision=precision, backend=backend, chunk_frames=chunk_frames,
                                cache_dtype=cache_dtype, decode_workers=decode_workers)
    with usage_errors(ValueError, FileNotFoundError):
        summary = run_extraction(out, videos, metadata=metadata, root=root, options=options,
                                 num_shards=num_shards, shard_index=shard_index, limit=limit)
    click.echo(f"features from {FeatureSettings(summary.settings).describe()}")
    if summary.n_failed:
        raise click.ClickException(summary.describe())
    click.echo(summary.describe())


@main.command("merge")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Merged cache file to write.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def merge_command(sources, out, force):
    """Merge feature cache shards / files (paths or globs) into one HDF5 cache."""
    from data.cache import FeatureCache, merge_caches

    with usage_errors(ValueError, FileNotFoundError, FileExistsError):
        merged = merge_caches(list(sources), out, overwrite=force)
    click.echo(f"{merged}: {len(FeatureCache(merged))} videos")


@main.command("demo")
@click.option("--workdir", default="rtdl_demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for every output of the demo (media, features, run, predictions, plots). "
                   "A rerun there reuses every stage that finished with the same settings.")
@click.option("--fresh", is_flag=True,
              help="Start over in --workdir, removing what an earlier demo wrote there first.")
@click.option("--num-videos", default=None, type=int,
              help=f"Synthetic clips (default {DemoConfig.num_videos}).")
@click.option("--epochs", default=None, type=int,
              help="Training epochs (default: the `demo` preset's, see `rtdl train --config`).")
@click.option("--seed", default=None, type=int,
              help=f"Seed for synthesis and training (default {DemoConfig.seed}).")
@click.option("--device", default=None, type=click.Choice(["auto", "cpu", "cuda"]),
              help=f"Where extraction and training run (default {DemoConfig.device}).")
@click.option("--speech", default=None, type=click.Choice(["espeak", "formant"]),
              help=f"Who speaks in the clips (default {DemoConfig.speech}; see `rtdl synth`).")
def demo_command(workdir, fresh, num_videos, epochs, seed, device, speech):
    """End-to-end demo: synth, extract, train, predict, evaluate, localize (minutes on a CPU)."""
    import dataclasses

    from pipeline.demo import run_demo

    given = {"num_videos": num_videos, "epochs": epochs, "seed": seed, "device": device,
             "speech": speech}
    cfg = dataclasses.replace(DemoConfig(), **{k: v for k, v in given.items() if v is not None})
    run_demo(workdir, cfg, echo=click.echo, fresh=fresh)


# ----------------------------------------------------------------------------- rtdl info
@main.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of text.")
def info_command(path, as_json):
    """Describe a file rtdl wrote: feature cache (file, shard glob, unmerged parts), checkpoint,
    run folder, predictions / probabilities / localize output, failures report."""
    import json

    from pipeline.info import describe, format_info

    described = describe(path)
    click.echo(json.dumps(described, indent=1, default=str) if as_json else format_info(described))
