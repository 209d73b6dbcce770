"""`rtdl demo`: the whole chain on a synthetic forged-video set, in minutes on a laptop.

synth -> extract -> train -> tune proposals on dev -> predict -> evaluate (seen and unseen
forgery types) -> localize one test video with a plot.

Choices:
- Extractors: pretrained TSN (ImageNet ResNet-50) and wav2vec 2.0 when both are on disk
  (torch hub cache, Hugging Face cache); otherwise the weight-free `lowlevel` + `logmel`
  extractors, and the output says so. Random-initialised backbones are never used here:
  their features carry no signal, so a demo on them would show nothing.
- Training: the RunConfig preset pipeline/presets/demo.yaml (`rtdl train --config demo`
  trains the same way), which says why it departs from the paper's defaults; `DemoConfig`
  holds only what the demo adds (the synthetic set, and overrides of the preset), and the
  run prints the settings it trains with. 530 clips, 282 / 102 / 73 / 73 for train / dev /
  test / test_unseen: with 240 clips the demo printed test / held-out avg AP 30.1 / 27.0,
  with 480 (same seed) 40.8 / 35.0 (BENCHMARKS.md, "The demo"), more speakers to generalise
  from. The 480-clip demo chose its localizer on 50 dev clips; on the 2,100-clip benchmark
  settings chosen on 50 dev clips fell 4.9 avg-AP points below the whole dev split's choice
  on the other dev clips, 3.1 on 100 (BENCHMARKS.md, "How many dev videos it takes to
  choose"), and with running medians in the learned deviation that demo chose a cue that
  fails on held-out types. So the 50 extra clips all go to dev, which is now as large as
  each test split. Synthesis, training and tuning grow with it; the preset's 6 epochs and
  tuning on every core keep the whole run within a few minutes on 2 cores.
- Proposal settings are those `rtdl train` chose on the dev split at its end (never on
  test), saved next to the run and used for both test splits.
- Metrics printed are those `rtdl evaluate` computes on the written predictions: the demo
  calls the same function and writes the same files, so re-running `rtdl evaluate` on
  them prints the same table.
- Reruns: each stage stamps the settings that made its outputs (`<workdir>/.demo/`, see
  pipeline/demo_stages.py). A rerun in the same folder reuses every stage that finished
  with the same settings, resumes an interrupted extraction or training, and redoes the
  rest; a reused stage reads back what it wrote, so the closing summary is the same.
  `fresh` starts over. A folder holding anything else, or made with other settings, is
  refused before any work, so a rerun never fails after minutes of work on that account.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.demo_stages import Stage

log = logging.getLogger(__name__)


DEMO_PRESET = "demo"  # pipeline/presets/demo.yaml: the training recipe


@dataclass(frozen=True)
class DemoConfig:
    num_videos: int = 530  # synthetic clips over train/dev/test/test_unseen
    # train / dev / test / test_unseen: 282 / 102 / 73 / 73 of 530 clips; a dev split as large
    # as the test splits, since dev chooses the localizer (module docstring)
    split_fractions: tuple[float, ...] = (0.54, 0.19, 0.135, 0.135)
    seed: int = 0  # synth, training and masking all derive from it
    size: int = 96  # frame height = width of the synthetic clips
    fps: float = 25.0  # frame rate of the synthetic clips
    duration_s: tuple[float, float] = (4.0, 6.0)  # clip length range, seconds
    speech: str = "formant"  # who speaks in the clips: "formant" (bit-exact) or "espeak" (real words)
    epochs: int | None = None  # training passes over the train split; None: the preset's
    overrides: tuple[str, ...] = ()  # `--set`-style changes of the preset, e.g. "model.d_model=16"
    workers: int = 2  # processes rendering synthetic clips
    device: str = "auto"  # auto | cpu | cuda


def scorer_note(run_config) -> str:
    """", learned deviation scorers at Nx lr" when the recipe has them (model/deviation_scorer.py)."""
    if run_config.model.deviation_scorer_weight <= 0:
        return ""
    return (f", learned deviation scorers beside the network at "
            f"{run_config.train.deviation_scorer_lr_scale:g}x lr")


def demo_run_config(cfg: DemoConfig):
    """The RunConfig the demo trains with: the preset, `cfg.overrides`, then the demo's
    epochs, seed and device."""
    from pipeline.train_config import load_run_config

    return load_run_config(DEMO_PRESET, cfg.overrides, epochs=cfg.epochs, seed=cfg.seed,
                           device=cfg.device)


def choose_extractors() -> tuple[dict, str]:
    """Extraction options for the demo and a sentence saying what was chosen and why."""
    from extractors.build import pretrained_weights_on_disk

    has_visual, has_audio = pretrained_weights_on_disk()
    if has_visual and has_audio:
        return ({"visual_model": "tsn", "visual_weights": "imagenet",
                 "audio_model": "facebook/wav2vec2-base-960h"},
                "pretrained TSN ResNet-50 (ImageNet) and wav2vec 2.0 base found on disk: using them")
    missing = [name for name, ok in (("TSN ImageNet weights", has_visual),
                                     ("wav2vec 2.0 (facebook/wav2vec2-base-960h)", has_audio)) if not ok]
    return ({"visual_model": "lowlevel", "audio_model": "logmel"},
            f"no pretrained weights on disk ({', '.join(missing)} missing): using the weight-free "
            "extractors (lowlevel visual descriptor + log-mel audio). Results on real video need "
            "the pretrained backbones; see README 'Real data'.")


SPLITS = ("test", "test_unseen")  # the splits the demo predicts and evaluates


def synth_options(cfg: DemoConfig) -> dict:
    """The `rtdl synth` settings of the demo's clips (SynthConfig fields)."""
    return {"num_videos": cfg.num_videos, "seed": cfg.seed, "size": cfg.size, "fps": cfg.fps,
            "duration_s": cfg.duration_s, "speech": cfg.speech, "split_fractions": cfg.split_fractions}


def demo_stages(workdir: Path, cfg: DemoConfig, extraction: dict) -> list[Stage]:
    """The demo's stages in order, each with its outputs and the settings that make them.

    The synth stage's settings are the full synth config; the training stage and everything
    after it depend on the whole DemoConfig (less `workers`, which only changes the speed)
    and the RunConfig made from it, so a change of the recipe makes them differ.
    """
    from data.config import from_dict, to_dict
    from pipeline.demo_stages import Stage
    from pipeline.synth import SynthConfig

    media = workdir / "media"
    synth = to_dict(from_dict(SynthConfig, synth_options(cfg), "synth options"))
    recipe = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"}
    predictions = tuple(name for split in SPLITS for name in (
        f"preds_{split}.json", f"preds_{split}_probs.json", f"preds_{split}_proposals.yaml",
        f"metrics_{split}.json"))

    def synth_complete() -> bool:
        meta = media / "metadata.json"
        return meta.is_file() and all((media / r["file"]).is_file()
                                      for r in json.loads(meta.read_text()))

    def features_complete() -> bool:
        from data.cache import FeatureCache

        cache_path = workdir / "features.h5"
        if not cache_path.is_file():
            return False
        with FeatureCache(cache_path) as cache:
            done = set(cache.keys())
        return all(r["file"] in done for r in json.loads((media / "metadata.json").read_text()))

    def all_there(*names: str):
        return lambda: all((workdir / name).exists() for name in names)

    return [
        Stage("synth", ("media",), {"synth": synth}, synth_complete),
        Stage("features", ("features.h5",), {"extraction": extraction, "device": cfg.device},
              features_complete, resumable=True),
        Stage("train", ("run",), {"demo": recipe, "run_config": to_dict(demo_run_config(cfg))},
              all_there("run/best.pt", "run/last.pt"), resumable=True),
        Stage("proposals", ("run/proposals.yaml",), {"demo": recipe},
              all_there("run/proposals.yaml")),
        Stage("predictions", predictions, {"demo": recipe}, all_there(*predictions)),
        Stage("localize", ("localize.json", "plots", "report"), {"demo": recipe},
              all_there("localize.json", "plots", "report/report.html")),
    ]


def run_demo(workdir: str | Path = "rtdl_demo", cfg: DemoConfig = DemoConfig(),
             echo=print, fresh: bool = False) -> dict:
    """Run the demo in `workdir`; return {"metrics": {split: metrics}, "outputs": {...},
    "config": ..., "stages": {stage: "reused" | "resumed" | "ran"}}.

    A rerun in the same folder reuses every stage that finished with the same settings and
    redoes the rest (pipeline/demo_stages.py); `fresh` first removes what an earlier demo
    wrote there. A folder holding something else, or made with other settings, raises
    DemoFolderError before any work starts.
    """
    from data.config import to_dict
    from data.metadata import load_metadata, records_for_split
    from pipeline.checkpoint import load_checkpoint, read_checkpoint_payload
    from pipeline.demo_stages import RESUMED, REUSED, DemoFolder
    from pipeline.evaluate import evaluate_files, format_table
    from pipeline.extract import run_extraction
    from pipeline.localize import localize_to_file
    from pipeline.options import ExtractionOptions
    from pipeline.predict import predict_split
    from pipeline.proposal_settings import load_proposal_config, resolve_proposal_config, \
        write_proposals_yaml
    from pipeline.proposal_tuning import small_split_note
    from pipeline.proposals import NETWORK_FREE_NOTE, reads_network
    from pipeline.synth import synth_dataset
    from pipeline.train import train

    workdir = Path(workdir)
    media, cache_path, run_dir = workdir / "media", workdir / "features.h5", workdir / "run"
    options, why = choose_extractors()
    folder = DemoFolder.open(workdir, demo_stages(workdir, cfg, options), fresh=fresh)
    if folder.removed:
        echo(f"--fresh: removed {', '.join(folder.removed)} (written by an earlier demo) from {workdir}")
    started = time.perf_counter()

    def step(text: str) -> None:
        echo(f"\n[{time.perf_counter() - started:6.1f} s] {text}")

    def begin(name: str, text: str) -> bool:
        """Announce stage `name`; True when it has work to do (it is then stamped as started)."""
        status = folder.decide(name)
        number, what = text.split(" ", 1)
        if status == REUSED:
            step(f"{number} [reused: finished earlier with the same settings] {what}")
            return False
        step(f"{number} [resuming an interrupted run] {what}" if status == RESUMED else text)
        folder.start(name)
        return True

    if begin("synth", f"1/6 synthesising {cfg.num_videos} clips with planted forgeries into {media}"):
        synth_dataset(media, workers=cfg.workers, **synth_options(cfg))
        folder.finish("synth")
    metadata = media / "metadata.json"

    if begin("features", f"2/6 extracting features: {why}"):
        summary = run_extraction(cache_path, metadata=metadata, root=media,
                                 options=ExtractionOptions(device=cfg.device, **options))
        echo(summary.describe())
        if summary.n_failed:
            raise RuntimeError(f"feature extraction failed for {summary.n_failed} clip(s); "
                               f"see {summary.failures_path}")
        folder.finish("features")

    best = run_dir / "best.pt"
    run_config = demo_run_config(cfg)
    train_cfg, model_cfg = run_config.train, run_config.model
    if begin("train", f"3/6 training RT-DeepLoc for {train_cfg.epochs} epochs into {run_dir} "
             f"(video-level labels only; preset {DEMO_PRESET!r}: lr {train_cfg.lr}, weight decay "
             f"{train_cfg.weight_decay}, batch {train_cfg.batch_size}, d_model {model_cfg.d_model}, "
             f"dropout {model_cfg.dropout}, input contrast {model_cfg.input_contrast!r}, inputs "
             f"standardised with training-split statistics{scorer_note(run_config)})"):
        resume = folder.decisions["train"] == RESUMED
        if resume:
            try:  # killed before the first epoch ended, or while writing a checkpoint
                read_checkpoint_payload(run_dir / "last.pt")["train_state"]
            except Exception as err:  # noqa: BLE001 - any unreadable last.pt means start over
                echo(f"cannot resume from {run_dir / 'last.pt'} ({type(err).__name__}: {err}); "
                     f"training from the start")
                folder.restart("train")
                resume = False
        train(run_config, cache_path, metadata, run_dir, resume=resume)
        folder.finish("train")

    records = load_metadata(metadata)
    proposals_yaml = run_dir / "proposals.yaml"
    if begin("proposals", "4/6 proposal settings chosen on the dev split (evidence, routing, "
                          "thresholds; by rtdl train at the end of training)"):
        proposal_config, source = resolve_proposal_config(load_checkpoint(best), str(best))
        write_proposals_yaml(proposal_config, proposals_yaml, [f"the demo's proposal settings: {source}"])
        folder.finish("proposals")
    proposal_config = load_proposal_config(str(proposals_yaml))
    echo(f"chosen: {json.dumps(to_dict(proposal_config))}")
    if not reads_network(proposal_config):
        echo(NETWORK_FREE_NOTE)
    for line in small_split_note(read_checkpoint_payload(best).get("proposal_tuning") or {}):
        echo(line)

    predict = begin("predictions", "5/6 predicting and evaluating (paper protocol: "
                                   "AP@0.1:0.7, AR@20,10,5,2)")
    all_metrics, outputs = {}, {"metadata": metadata, "cache": cache_path, "checkpoint": best,
                                "proposals": proposals_yaml}
    for split in SPLITS:
        preds = workdir / f"preds_{split}.json"
        probs = preds.with_name(f"{preds.stem}_probs.json")
        metrics_path = workdir / f"metrics_{split}.json"
        if predict:
            predict_split(cache_path, best, metadata, split, out_path=preds,
                          proposal_config=proposal_config, device=cfg.device)
            metrics = evaluate_files(preds, metadata, split=split, probs_path=probs,
                                     out_path=metrics_path)
        else:
            metrics = json.loads(metrics_path.read_text())
        label = "seen forgery types" if split == "test" else "forgery types never seen in training"
        echo(f"\n{split} ({label}):\n{format_table(metrics)}")
        all_metrics[split] = metrics
        outputs[f"predictions_{split}"] = preds
        outputs[f"metrics_{split}"] = metrics_path
    if predict:
        folder.finish("predictions")

    test_fakes = [r for r in records_for_split(records, "test") if r.is_fake]
    example = media / test_fakes[0].file
    segments_path, plot_dir = workdir / "localize.json", workdir / "plots"
    report_dir = workdir / "report"
    if begin("localize", "6/6 localizing one test video from its raw mp4"):
        result = localize_to_file([example], best, segments_path, plot_dir=plot_dir,
                                  proposal_config=proposal_config, device=cfg.device,
                                  report_dir=report_dir)
        folder.finish("localize")
    else:
        result = json.loads(segments_path.read_text())
    video = result["videos"][0] if "videos" in result else result
    echo(f"{example.name}: ground truth {list(test_fakes[0].fake_segments)}")
    echo(f"predicted: {json.dumps(video, default=str)[:600]}")
    outputs.update({"segments": segments_path, "plots": plot_dir,
                    "report": report_dir / "report.html"})

    step("done. Outputs:")
    for name, path in outputs.items():
        echo(f"  {name:<22} {path}")
    echo("Stages: " + ", ".join(f"{name} {status}" for name, status in folder.decisions.items())
         + f" (a rerun in {workdir} reuses finished stages; --fresh starts over).")
    from pipeline.machine import describe_machine

    echo(f"How far to trust these numbers: one seed on {cfg.num_videos} synthetic clips, made on "
         f"{describe_machine().removeprefix('machine: ')}; other machines give other numbers for the same seed (floating "
         f"point), and the same recipe varies by several avg-AP points from seed to seed "
         f"(BENCHMARKS.md, 'The demo').")
    echo(f"Open the analyst report: {report_dir / 'report.html'}")
    echo(f"Re-check the metrics with: rtdl evaluate --predictions {outputs['predictions_test']} "
         f"--metadata {metadata} --split test --probs "
         f"{Path(outputs['predictions_test']).with_name('preds_test_probs.json')}")
    return {"metrics": all_metrics, "outputs": {k: str(v) for k, v in outputs.items()},
            "config": dataclasses.asdict(cfg), "stages": dict(folder.decisions)}
