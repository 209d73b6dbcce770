"""Predictions of a fixed checkpoint on a fixed cache must not change when code is moved.

The checkpoint (a tiny RT-DeepLoc built from seed 0, with input statistics and error
calibration set, and tuned proposal settings stored in it) and the cache (generated from
seed 0, float32) are made here; `rtdl predict` and `localize_features` run on them, and
their outputs are compared with the files in tests/golden/.

Why two levels of comparison: float32 sums are ordered differently by other CPU kernels
(AVX2 / AVX-512) and library versions, which moves model outputs by ~1e-7 and so the 6th
decimal that preds.json keeps. On the machine that wrote the golden files (its fingerprint
is stored with them) the outputs must be byte-identical; on any other machine the
structure (files, videos, proposal counts and order, routed branches) must be identical
and every number within 1e-5.

A change that is meant to alter predictions rewrites the golden files with
`RTDL_WRITE_GOLDEN=1 pytest tests/test_predict_golden.py` and says so in its commit; a
refactor must leave them as they are.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipeline.machine import machine_info

GOLDEN = Path(__file__).parent / "golden"
FPS = 25.0
VISUAL_DIM, AUDIO_DIM = 6, 4
SETTINGS = {"visual": {"kind": "test", "name": "golden-visual", "dim": VISUAL_DIM},
            "audio": {"kind": "test", "name": "golden-audio", "dim": AUDIO_DIM}}
# tuned settings stored in the checkpoint: soft routing and error evidence exercise every
# branch curve; `--set` below switches back to the paper's argmax routing for a second run
TUNED = {"routing": "soft", "error_weight": 0.5, "smooth_frames": 3, "merge_gap_frames": 2,
         "snap_frames": 2}
# (file, visual frames, audio frames): window boundaries (max_frames 32), very short and
# longer clips (the cache stores equal lengths)
VIDEOS = [("a/short.mp4", 5, 5), ("a/medium.mp4", 24, 24), ("b/long.mp4", 70, 70),
          ("b/thirty.mp4", 30, 30), ("c/forged.mp4", 40, 40), ("c/edge.mp4", 32, 32)]


def machine_fingerprint() -> dict:
    """What decides the last bits of the outputs: the CPU model and the vector flags that pick
    other float kernels (one model name, "AMD EPYC", covers machines with and without
    AVX-512, whose sums differ), torch's kernel level and the library versions."""
    info = machine_info()
    return {"cpu": info["cpu"], "cpu_flags": info["flags"],
            "torch_cpu_capability": info["torch_cpu_capability"],
            "machine": platform.machine(), "torch": torch.__version__, "numpy": np.__version__}


def make_inputs(tmp_path: Path) -> tuple[Path, Path, dict]:
    """(checkpoint, cache, {file: (visual, audio)}) made from seed 0."""
    from data.cache import CacheWriter
    from model.config import ModelConfig
    from model.rtdeeploc import build_model
    from pipeline.checkpoint import save_checkpoint
    from pipeline.train_config import RunConfig, TrainConfig

    rng = np.random.default_rng(0)
    arrays = {}
    for file, n_visual, n_audio in VIDEOS:
        visual = rng.normal(size=(n_visual, VISUAL_DIM)).astype(np.float32)
        audio = rng.normal(size=(n_audio, AUDIO_DIM)).astype(np.float32)
        if file == "c/forged.mp4":  # a planted span so the curves have structure
            visual[10:22] += 2.5
            audio[25:33] -= 2.5
        arrays[file] = (visual, audio)
    cache = tmp_path / "features.h5"
    with CacheWriter(cache, SETTINGS, dtype="float32") as writer:
        for file, (visual, audio) in arrays.items():
            writer.write(file, visual, audio, fps=FPS, duration=len(visual) / FPS, has_audio=True)

    model_config = ModelConfig(d_model=8, fusion_heads=2, mae_encoder_layers=1, mae_decoder_layers=1,
                               mae_decoder_dim=8, mae_heads=2, ff_mult=1, aicl_k=2, head_hidden=8,
                               dropout=0.0)
    run_config = RunConfig(model=model_config, train=TrainConfig(epochs=1, seed=0, device="cpu"))
    torch.manual_seed(0)
    model = build_model(model_config, VISUAL_DIM, AUDIO_DIM)
    model.set_input_statistics(np.full(VISUAL_DIM, 0.1), np.full(VISUAL_DIM, 1.2),
                               np.full(AUDIO_DIM, -0.1), np.full(AUDIO_DIM, 0.9))
    errors = np.random.default_rng(1).gamma(2.0, 0.5, size=500)
    model.visual_error_calibration.set_reference(errors)
    model.audio_error_calibration.set_reference(errors * 1.5)
    from data.config import from_dict, to_dict
    from pipeline.proposals import ProposalConfig

    tuned = to_dict(from_dict(ProposalConfig, TUNED))
    checkpoint = save_checkpoint(tmp_path / "best.pt", model, run_config, epoch=1, metrics={},
                                 feature_settings=SETTINGS, visual_dim=VISUAL_DIM,
                                 audio_dim=AUDIO_DIM, proposal_config=tuned,
                                 proposal_tuning={"split": "dev", "protocol": "rtdeeploc"})
    return checkpoint, cache, arrays


def produce(tmp_path: Path) -> dict[str, str]:
    """{golden file name: text} of this code's outputs on the fixed inputs."""
    from pipeline.checkpoint import load_checkpoint
    from pipeline.cli import main
    from pipeline.inference import localize_features
    from pipeline.proposals import ProposalConfig

    checkpoint, cache, arrays = make_inputs(tmp_path)
    texts = {}
    runs = {"tuned": [], "argmax": ["--set", "routing=argmax", "--set", "error_weight=0.0"]}
    for name, extra in runs.items():
        out = tmp_path / name / "preds.json"
        result = CliRunner().invoke(main, ["predict", "--cache", str(cache), "--checkpoint",
                                           str(checkpoint), "--out", str(out), "--device", "cpu",
                                           "--batch-size", "3", "--max-frames", "32", *extra])
        assert result.exit_code == 0, result.output
        texts[f"{name}_preds.json"] = out.read_text()
        texts[f"{name}_preds_probs.json"] = out.with_name("preds_probs.json").read_text()
        yaml_text = out.with_name("preds_proposals.yaml").read_text()
        # the first comment line names the temporary checkpoint path
        texts[f"{name}_preds_proposals.yaml"] = "".join(yaml_text.splitlines(True)[1:])
    model = load_checkpoint(checkpoint).model
    joint = ProposalConfig(routing="joint", error_weight=0.25)
    localized = {}
    for file, (visual, audio) in arrays.items():
        n = min(len(visual), len(audio))
        result, outputs = localize_features(model, visual[:n], audio[:n], FPS, n / FPS,
                                            proposal_config=joint, device="cpu", max_frames=32)
        localized[file] = {"result": result,
                           "frames": {k: np.round(np.asarray(v, np.float64), 6).tolist()
                                      for k, v in sorted(outputs.items())}}
    texts["localize_features.json"] = json.dumps(localized, indent=1, sort_keys=True) + "\n"
    return texts


def _numbers_close(a, b, path: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{path}: keys differ"
        for key in a:
            _numbers_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _numbers_close(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and not isinstance(a, bool):
        assert isinstance(b, (int, float)) and abs(a - b) <= 1e-5, f"{path}: {a} vs {b}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def test_predictions_of_a_fixed_checkpoint_on_a_fixed_cache_are_unchanged(tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order on this machine
    try:
        texts = produce(tmp_path)
    finally:
        torch.set_num_threads(previous)
    fingerprint = machine_fingerprint()
    if os.environ.get("RTDL_WRITE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for name, text in texts.items():
            (GOLDEN / name).write_text(text)
        (GOLDEN / "machine.json").write_text(json.dumps(fingerprint, indent=1) + "\n")
        pytest.skip("golden files written")
    stored = {name: (GOLDEN / name).read_text() for name in texts}
    if json.loads((GOLDEN / "machine.json").read_text()) == fingerprint:
        for name, text in texts.items():
            assert text == stored[name], f"{name}: not byte-identical to tests/golden/{name}"
        return
    for name, text in texts.items():  # another machine: see the module docstring
        if name.endswith(".yaml"):
            assert text == stored[name], name
        else:
            _numbers_close(json.loads(text), json.loads(stored[name]), name)
