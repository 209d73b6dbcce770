"""`rtdl localize` of one 10 s clip: cold start (imports, checkpoint, backbones) apart from
the rest (decode + backbones + model + proposals + JSON), against the backbones' own forward
time on the same, already decoded clip.

Each measurement runs in a fresh Python process, as a user's `rtdl localize` does, and
replays `localize_to_file`'s steps with a timer between them (`load_checkpoint`,
`build_checkpoint_extractors`, `localize_videos`, the JSON write). It runs twice: once with
an empty export cache (the first `rtdl localize` on a machine: the OpenVINO export of
ResNet-50 is part of the cold start), once with it filled (every later run).

The checkpoint is the default RT-DeepLoc model (random weights) with the feature settings
of TSN ResNet-50 and wav2vec 2.0 base at real size, random-initialised (speed does not
depend on weights; nothing can be downloaded here).

    python benchmarks/bench_localize.py [--seconds 10] [--size 320] [--json out]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def child(clip: str, ckpt: str, out: str) -> None:
    """One `rtdl localize` run, timed by phase; prints JSON."""
    t = {"python_start_s": None}
    mark = time.perf_counter()
    import numpy as np
    import torch  # noqa: F401

    from pipeline.checkpoint import load_checkpoint
    from pipeline.localize import build_checkpoint_extractors, localize_videos
    from pipeline.proposal_settings import resolve_proposal_config

    now = time.perf_counter()
    t["imports_s"], mark = now - mark, now
    checkpoint = load_checkpoint(ckpt)
    config, _ = resolve_proposal_config(checkpoint, ckpt, None, ())
    now = time.perf_counter()
    t["checkpoint_s"], mark = now - mark, now
    extractors = build_checkpoint_extractors(checkpoint.feature_settings, "cpu", ckpt)
    now = time.perf_counter()
    t["backbones_build_s"], mark = now - mark, now
    output = localize_videos([clip], checkpoint, proposal_config=config, device="cpu",
                             extractors=extractors)
    Path(out).write_text(json.dumps(output))
    now = time.perf_counter()
    t["rest_s"] = now - mark
    # the backbones alone on the decoded clip, warm (a second pass over the same input)
    from extractors.decode import VideoStream, decode_audio

    visual, audio = extractors
    frames = np.concatenate(list(VideoStream(clip, 64)))
    wave, _ = decode_audio(clip)
    with torch.inference_mode():
        mark = time.perf_counter()
        for start in range(0, len(frames), 64):
            visual(frames[start:start + 64])
        t["visual_forward_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        audio(wave)
        t["audio_forward_s"] = time.perf_counter() - mark
    t["backbones_forward_s"] = t["visual_forward_s"] + t["audio_forward_s"]
    t["cold_start_s"] = t["imports_s"] + t["checkpoint_s"] + t["backbones_build_s"]
    t["rest_vs_backbones"] = t["rest_s"] / t["backbones_forward_s"]
    t["backend"] = getattr(visual, "backend", "torch")
    t["frames"] = len(frames)
    t["python_start_s"] = STARTED  # replaced by the parent with the interpreter start-up
    print(json.dumps(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--runs", default="cold-cache,warm-cache")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from extractors.build import build_audio_extractor, build_visual_extractor, extractor_settings
    from media import make_clip
    from model.rtdeeploc import build_model
    from pipeline.checkpoint import save_checkpoint
    from pipeline.machine import machine_info
    from pipeline.train_config import RunConfig

    work = Path(tempfile.mkdtemp(prefix="rtdl-bench-localize-"))
    clip = make_clip(work / "clip.mp4", args.seconds, size=(args.size, args.size), audio="noise")
    visual = build_visual_extractor("tsn", weights="random", backend="torch")  # settings only
    audio = build_audio_extractor("random")
    run_config = RunConfig()
    model = build_model(run_config.model, visual.dim, audio.dim)
    ckpt = save_checkpoint(work / "ckpt.pt", model, run_config, epoch=1, metrics={},
                           feature_settings=extractor_settings(visual, audio),
                           visual_dim=visual.dim, audio_dim=audio.dim)
    del visual, audio, model
    results = {"machine": machine_info(), "clip": f"{args.seconds:g} s, {args.size}x{args.size}, 25 fps",
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "runs": {}}
    print(results, flush=True)
    cache = work / "export-cache"
    for run in args.runs.split(","):
        env = {**os.environ, "RTDL_CACHE_DIR": str(cache)}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", str(clip), str(ckpt),
                               str(work / "out.json")], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        # interpreter start-up before the child's first line: wall minus what it timed itself
        timed_in_child = row["cold_start_s"] + row["rest_s"] + row["backbones_forward_s"]
        row["python_start_s"] = max(0.0, wall - timed_in_child - (time.perf_counter() - started - wall))
        row["wall_s"] = wall
        row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        results["runs"][run] = row
        print(f"{run}: cold start {row['cold_start_s']:.1f} s (imports {row['imports_s']:.1f}, "
              f"checkpoint {row['checkpoint_s']:.1f}, backbones {row['backbones_build_s']:.1f}; "
              f"backend {row['backend']}), rest {row['rest_s']:.1f} s vs backbones' own forward "
              f"{row['backbones_forward_s']:.1f} s (visual {row['visual_forward_s']:.1f}, audio "
              f"{row['audio_forward_s']:.1f}) = {row['rest_vs_backbones']:.2f}x", flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
