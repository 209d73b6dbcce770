"""rtdl demo: the whole chain runs, the metrics it prints are what `rtdl evaluate` prints on
the files it wrote, and a second run in the same folder reuses, resumes or refuses as it
should (tiny settings; the real demo's size is DemoConfig's default).

One demo run (`first_run`) is shared; tests that change its folder work on a copy.
"""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

import pipeline.cli
import pipeline.train
from pipeline.cli import main
from pipeline.demo import DemoConfig, run_demo

TINY = DemoConfig(num_videos=16, epochs=2, overrides=("train.batch_size=4", "model.d_model=16"),
                  duration_s=(2.0, 3.0), workers=1, device="cpu")
STAGES = ("synth", "features", "train", "proposals", "predictions", "localize")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    printed: list[str] = []
    result = run_demo(workdir, TINY, echo=printed.append)
    return workdir, result, "\n".join(printed)


def closing_summary(text: str) -> list[str]:
    """The printed lines from the chosen proposal settings on, less the stage headers (they
    carry the elapsed time and say "reused") and the list of stage statuses."""
    lines = text.split("\nchosen: ", 1)[1].splitlines()
    return [line for line in lines if not line.startswith(("[", "Stages:"))]


def demo_cli(workdir, *args: str, epochs: int | None = None):
    """`rtdl demo` on the tiny config (the CLI starts from DemoConfig(), patched here)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.cli, "DemoConfig", lambda: TINY)
        words = ["demo", "--workdir", str(workdir), *args]
        return CliRunner().invoke(main, words + (["--epochs", str(epochs)] if epochs else []))


def listing(folder) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def test_demo_metrics_are_those_rtdl_evaluate_prints(first_run):
    _, result, text = first_run
    assert result["stages"] == {name: "ran" for name in STAGES}
    assert "weight-free" in text  # no pretrained weights here, and the demo says so
    outputs = result["outputs"]
    for split in ("test", "test_unseen"):
        preds = outputs[f"predictions_{split}"]
        probs = preds.replace(".json", "_probs.json")
        cli = CliRunner().invoke(main, ["evaluate", "--predictions", preds, "--metadata",
                                        outputs["metadata"], "--split", split, "--probs", probs])
        assert cli.exit_code == 0, cli.output
        table = cli.output.strip().split("\n\n", 1)[-1]  # below the protocol lines
        assert "AP@IoU" in table and table in text  # the very table the demo printed
        written = json.loads(open(outputs[f"metrics_{split}"]).read())
        assert written["ap_avg"] == result["metrics"][split]["ap_avg"]
    localized = json.loads(open(outputs["segments"]).read())
    assert localized["videos"][0]["plot"].endswith(".png")


def test_the_demo_says_its_localizer_was_chosen_on_a_small_dev_split(first_run):
    # the tiny demo's dev split holds 4 videos: the choice among the candidates is noisy
    assert "chosen on only 4 videos, a noisy choice" in first_run[2]


def test_a_second_run_reuses_every_stage_and_prints_the_same_summary(first_run):
    workdir, first, first_text = first_run
    before = listing(workdir)
    printed: list[str] = []
    second = run_demo(workdir, TINY, echo=printed.append)
    assert second["stages"] == {name: "reused" for name in STAGES}
    assert second["metrics"] == first["metrics"]
    assert closing_summary("\n".join(printed)) == closing_summary(first_text)
    assert listing(workdir) == before  # nothing rewritten


def test_fresh_starts_over_and_an_interrupted_training_resumes(first_run, tmp_path, monkeypatch):
    workdir = tmp_path / "demo"
    shutil.copytree(first_run[0], workdir)
    train_epoch = pipeline.train._train_epoch
    epochs_run: list[int] = []

    def killed_in_second_epoch(*args, **kwargs):
        epochs_run.append(args[7])  # the epoch index
        if args[7] == 1:
            raise KeyboardInterrupt  # Ctrl-C after epoch 1's checkpoint was written
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(pipeline.train, "_train_epoch", killed_in_second_epoch)
    cli = demo_cli(workdir, "--fresh")
    assert cli.exit_code == 1 and "Aborted" in cli.output, cli.output
    assert "removed features.h5, localize.json, media" in cli.output
    assert "reused" not in cli.output  # everything was made again
    assert epochs_run == [0, 1]
    assert (workdir / "run" / "last.pt").is_file()
    assert not (workdir / "preds_test.json").exists()  # removed by --fresh, not yet redone

    def counted(*args, **kwargs):
        epochs_run.append(args[7])
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(pipeline.train, "_train_epoch", counted)
    epochs_run.clear()
    printed: list[str] = []
    resumed = run_demo(workdir, TINY, echo=printed.append)
    assert resumed["stages"] == {"synth": "reused", "features": "reused", "train": "resumed",
                                 "proposals": "ran", "predictions": "ran", "localize": "ran"}
    assert epochs_run == [1]  # only the epoch that was interrupted
    # training repeats exactly what an uninterrupted run does, so the results are the same
    assert resumed["metrics"] == first_run[1]["metrics"]


def test_a_lost_output_is_redone_with_the_same_result(first_run, tmp_path):
    workdir = tmp_path / "demo"
    shutil.copytree(first_run[0], workdir)
    (workdir / "preds_test_unseen.json").unlink()
    printed: list[str] = []
    result = run_demo(workdir, TINY, echo=printed.append)
    assert result["stages"] == {**{name: "reused" for name in STAGES[:4]},
                                "predictions": "ran", "localize": "ran"}
    assert result["metrics"] == first_run[1]["metrics"]

    def moved(lines: list[str]) -> list[str]:  # the printed "predicted:" JSON is cut by length
        return [line.replace(str(first_run[0]), str(workdir)) for line in lines
                if not line.startswith("predicted: ")]

    assert moved(closing_summary("\n".join(printed))) == moved(closing_summary(first_run[2]))
    segments = [json.loads((folder / "localize.json").read_text())["videos"][0]["segments"]
                for folder in (first_run[0], workdir)]
    assert segments[0] == segments[1]


def test_a_foreign_file_is_refused_before_any_work(first_run):
    workdir = first_run[0]
    foreign = workdir / "notes.txt"
    foreign.write_text("not the demo's")
    try:
        before = listing(workdir)
        for args in ((), ("--fresh",)):
            cli = demo_cli(workdir, *args)
            assert cli.exit_code == 1
            assert cli.output.splitlines() == [
                f"Error: {workdir} holds notes.txt, which the demo did not write (its record "
                f"{workdir / '.demo' / 'manifest.json'} does not list them); move them out or "
                f"pick another --workdir"]
            assert listing(workdir) == before
    finally:
        foreign.unlink()


def test_other_settings_than_the_stamps_are_refused_before_any_work(first_run):
    workdir = first_run[0]
    before = listing(workdir)
    cli = demo_cli(workdir, epochs=3)
    assert cli.exit_code == 1
    [line] = cli.output.splitlines()
    assert line.startswith(f"Error: {workdir} was made with other settings (")
    assert "demo.epochs 2 -> 3 (train, proposals, predictions, localize)" in line
    assert "synth" not in line and "features" not in line  # the clips and features still fit
    assert line.endswith("rerun with --fresh to start over there with these settings, or "
                         "pick another --workdir")
    assert listing(workdir) == before
