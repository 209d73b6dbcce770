"""Every command of README's 'Real data' walkthrough runs, on a synthetic dataset.

The commands are read from README.md itself, so the walkthrough cannot drift from what
works. They are adapted to a CPU test in a few stated ways only: `$LAVDF` is a tiny
`rtdl synth` set, `--device cuda` becomes `--device cpu`, process and shard counts become 2,
extraction uses the weight-free extractors (no pretrained weights can be downloaded here),
training is shortened and narrowed, and `suspect.mp4` is a synthetic test clip.
This is also the CLI test of the whole chain: synth, extract (single, torchrun shards,
array shards, merge), train (plain, resume, DDP, ablation), tune, predict, evaluate, localize.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.cache import FeatureCache

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent  # the environment's rtdl and torchrun


def bash_blocks(heading: str) -> list[list[str]]:
    """The bash blocks of README's section `heading`, one command per entry."""
    text = README.read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()  # drop trailing comments
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
        blocks.append(commands)
    return blocks


def adapt(command: str, dataset: Path, clip: Path) -> list[str]:
    """The README command as this CPU test runs it (see the module docstring)."""
    command = command.replace("$LAVDF", str(dataset)).replace("--device cuda", "--device cpu")
    command = re.sub(r"--nproc-per-node \d+", "--nproc-per-node 2", command)
    command = re.sub(r"--num-shards \d+", "--num-shards 2", command)
    command = re.sub(r"shard-\*-of-\d+", "shard-*-of-2", command)
    command = command.replace("suspect.mp4", str(clip))
    words = shlex.split(command)
    if "extract" in words:
        words += ["--visual-model", "lowlevel", "--audio-model", "logmel"]
    if "train" in words:
        if "--epochs" in words:
            words[words.index("--epochs") + 1] = "2"
        else:
            words += ["--epochs", "1"]
        words += ["--set", "model.d_model=16", "--set", "train.batch_size=8", "--set", "train.lr=1e-3"]
    return words


def run(words: list[str], cwd: Path, extra_env: dict | None = None) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           **(extra_env or {})}
    done = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(words)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """README's own `rtdl synth` command, made smaller (16 short clips)."""
    root = tmp_path_factory.mktemp("lavdf")
    [command] = bash_blocks("Synthetic benchmark")[0]
    command = re.sub(r"--num-videos \d+", "--num-videos 16", command).replace("--out synth", f"--out {root}")
    run(shlex.split(command) + ["--duration", "2,3", "--seed", "3"], root)
    return root


def test_walkthrough_commands_run(dataset, tmp_path):
    blocks = bash_blocks("Real data")
    assert len(blocks) == 8, "the walkthrough's blocks changed: update this test"
    clip = next(dataset.glob("test/*.mp4"))
    single, torchrun_dir, array_dir = tmp_path / "single", tmp_path / "torchrun", tmp_path / "array"
    for folder in (single, torchrun_dir, array_dir):
        folder.mkdir()

    # extraction, three ways, each in its own folder; they must give the same cache
    for words in map(lambda c: adapt(c, dataset, clip), blocks[0]):
        run(words, single)
    for words in map(lambda c: adapt(c, dataset, clip), blocks[1]):
        run(words, torchrun_dir)
    for command in blocks[2]:
        words = adapt(command, dataset, clip)
        if "$SLURM_ARRAY_TASK_ID" in words:
            for task in ("0", "1"):
                run([task if w == "$SLURM_ARRAY_TASK_ID" else w for w in words], array_dir)
        else:
            run(words, array_dir)
    reference = FeatureCache(single / "lavdf.h5")
    assert len(reference) == 16
    for other in (FeatureCache(torchrun_dir / "lavdf.h5"), FeatureCache(array_dir / "lavdf.h5")):
        assert sorted(other.keys()) == sorted(reference.keys())
        for key in reference.keys():
            for mine, theirs in zip(reference.read(key), other.read(key)):
                np.testing.assert_array_equal(mine, theirs)

    # training, prediction, evaluation and localization in the single-extraction folder
    for block in blocks[3:]:
        for command in block:
            run(adapt(command, dataset, clip), single)
    for run_dir in ("runs/lavdf", "runs/lavdf-ddp", "runs/no-aicl"):
        assert (single / run_dir / "best.pt").is_file()
    epochs = [json.loads(line)["epoch"] for line in (single / "runs/lavdf/metrics.jsonl").read_text().splitlines()]
    assert epochs[-1] == 2  # the --resume line extended the first run
    predictions = json.loads((single / "preds.json").read_text())
    test_files = {r["file"] for r in json.loads((dataset / "metadata.json").read_text()) if r["split"] == "test"}
    assert set(predictions) == test_files
    metrics = json.loads((single / "metrics.json").read_text())
    assert set(metrics["ap"]) == {"0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"}
    assert set(metrics["ar"]) == {"20", "10", "5", "2"}
    tuned = single / "runs/lavdf/proposals-lavdf.yaml"
    assert "objective: 0.5 * mean AP + 0.5 * mean AR (lavdf protocol" in tuned.read_text()
    localized = json.loads((single / "segments.json").read_text())
    assert localized["videos"][0]["file"].endswith(clip.name)
    assert list((single / "plots").glob("*.png"))
    assert "<video" in (single / "report" / "report.html").read_text()


def test_localization_benchmark_command_runs(dataset, tmp_path):
    """README's frame-level diagnostics command on a briefly trained model of the dataset."""
    [command] = bash_blocks("Synthetic benchmark")[1]
    meta, cache, run_dir = dataset / "metadata.json", tmp_path / "synth.h5", tmp_path / "runs" / "synth"
    run(["rtdl", "extract", "--metadata", str(meta), "--root", str(dataset), "--out", str(cache),
         "--visual-model", "lowlevel", "--audio-model", "logmel", "--device", "cpu"], tmp_path)
    run(["rtdl", "train", "--cache", str(cache), "--metadata", str(meta), "--out", str(run_dir),
         "--device", "cpu", "--epochs", "1", "--set", "model.d_model=16", "--set", "train.batch_size=8"],
        tmp_path)
    command = (command.replace("synth/metadata.json", str(meta)).replace("synth.h5", str(cache))
               .replace("runs/synth", str(run_dir)))
    words = shlex.split(command)
    words[0] = sys.executable
    words[1] = str(README.parent / words[1])
    out = run(words, tmp_path)
    report = json.loads((tmp_path / "localization.json").read_text())
    assert "median deviation reference" in out and "frame AUC" in out
    [run_report] = report["runs"]
    # the trainer fitted the audio-visual desynchrony, so it is scored alone too
    assert set(run_report["localizers"]) == {"heads (paper)", "heads + error", "recon error only",
                                             "sync only"}
    for split in ("test", "test_unseen"):
        for table in run_report["frame_auc"][split].values():
            for by_type in table.values():
                assert all(0.0 <= cell["auc"] <= 1.0 for cell in by_type.values())
