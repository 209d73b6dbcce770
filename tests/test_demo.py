"""rtdl demo: the whole chain runs, and the metrics it prints are what `rtdl evaluate` prints
on the files it wrote (tiny settings; the real demo's size is DemoConfig's default)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli import main
from pipeline.demo import DemoConfig, run_demo


def test_demo_metrics_are_those_rtdl_evaluate_prints(tmp_path):
    printed: list[str] = []
    cfg = DemoConfig(num_videos=16, epochs=1, batch_size=4, d_model=16, duration_s=(2.0, 3.0),
                     workers=1, device="cpu")
    result = run_demo(tmp_path / "demo", cfg, echo=printed.append)
    text = "\n".join(printed)
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
