"""rtdl localize --report: one self-contained HTML page; checked as markup here and, when
Chromium is installed, rendered in a real headless browser."""
import base64
import re
import sys
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipeline.report import _LEFT, _PANEL, _WIDTH, CURVES, timeline_svg, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from screenshot_report import find_browser, screenshot  # noqa: E402


def _record(path: Path, **changes) -> dict:
    record = {"file": str(path), "duration": 2.0, "fps": 4.0, "n_frames": 8, "has_audio": True,
              "label": "audio_only", "class_probs": {"real": 0.1, "visual_only": 0.1, "audio_only": 0.7,
                                                     "both": 0.1},
              "routed_branch": "audio", "segments": [
                  {"start": 1.0, "end": 1.5, "score": 0.9, "modality": "audio"},
                  {"start": 0.25, "end": 0.5, "score": 0.3, "modality": "audio"}]}
    record.update(changes)
    return record


def _outputs(n: int = 8) -> dict:
    ramp = np.linspace(0.0, 1.0, n)
    # one localizer curve, as joint routing leaves (inference.localize_features)
    return {"localizer_curve_joint": ramp, "visual_scores": ramp, "audio_scores": 1 - ramp,
            "joint_scores": np.full(n, 0.5), "visual_recon_error": ramp * 10,
            "audio_recon_error": np.ones(n)}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


def test_page_embeds_the_video_and_needs_no_network(tmp_path):
    clip = tmp_path / "clip <1>.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 stand-in bytes")
    output = {"rtdl_version": "t", "checkpoint": "best.pt", "extractors": {"summary": "weight-free"},
              "proposal_config": {"nms": "soft"}, "proposal_source": "checkpoint best.pt",
              "videos": [_record(clip)]}
    page = write_report(output, {str(clip): _outputs()}, tmp_path / "report")
    text = page.read_text()
    parsed = _Collector()
    parsed.feed(text)
    src = [v for tag, k, v in parsed.attrs if tag == "video" and k == "src"]
    assert src == ["data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()]
    # nothing is fetched: no external URL in any attribute, no script file, no stylesheet link
    assert not [v for _, k, v in parsed.attrs if k in ("src", "href") and v and "://" in v]
    assert "link" not in parsed.tags and all(k != "src" for tag, k, _ in parsed.attrs if tag == "script")
    assert "clip &lt;1&gt;.mp4" in text and "clip <1>" not in text  # names are escaped
    # the segments table: one seeking row per segment, best first
    assert re.findall(r'<tr class="seek" data-start="([0-9.]+)"', text) == ["1.0000", "0.2500"]
    assert "audio_only" in text and "0.700" in text and "checkpoint best.pt" in text
    assert "segments from the audio branch;" in text and "weighed by" not in text
    # soft routing: the page says what weighed each modality's segments
    soft = write_report({**output, "videos": [_record(clip, modality_probs={"visual": 0.25, "audio": 0.8})]},
                        {str(clip): _outputs()}, tmp_path / "soft").read_text()
    assert "weighed by P(modified) visual 0.25, audio 0.80" in soft


def test_a_large_video_is_linked_relative_to_the_page(tmp_path):
    clip = tmp_path / "media" / "big.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x" * 2000)
    output = {"videos": [_record(clip, segments=[], label="real")], "checkpoint": "c.pt"}
    page = write_report(output, {str(clip): _outputs()}, tmp_path / "out", embed_limit_mb=0.001)
    text = page.read_text()
    assert 'src="../media/big.mp4"' in text and "linked, not embedded" in text
    assert "No segment proposed." in text


def test_timeline_is_well_formed_svg_with_curves_at_the_right_height():
    svg = timeline_svg(_outputs(), _record(Path("c.mp4"))["segments"], fps=4.0, duration=2.0)
    root = ElementTree.fromstring(svg)  # raises on malformed markup
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    # a panel for each curve the outputs hold, the curve the segments came from on top
    assert len(lines) == len([key for key, _, _ in CURVES if key in _outputs()]) == 6
    labels = [t.text for t in root.findall(f"{ns}text")]
    assert labels.index("joint localizer curve") < labels.index("visual frame score")
    shaded = [r for r in root.findall(f"{ns}rect") if r.get("fill-opacity")]
    assert len(shaded) == 2
    # the first panel is the localizer curve, a ramp 0 -> 1 on a fixed [0, 1] axis: the first
    # frame (t = 0.125 s) sits at the bottom of the panel, the last (1.875 s) at the top
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    width = _WIDTH - _LEFT - 10
    assert points[0] == pytest.approx((_LEFT + 0.125 / 2.0 * width, _PANEL), abs=0.06)
    assert points[-1] == pytest.approx((_LEFT + 1.875 / 2.0 * width, 0.0), abs=0.06)
    # the best segment (1.0-1.5 s) is the darkest and is drawn last
    assert float(shaded[-1].get("x")) == pytest.approx(_LEFT + 0.5 * width, abs=0.06)
    assert float(shaded[-1].get("fill-opacity")) > float(shaded[0].get("fill-opacity"))


@pytest.mark.skipif(find_browser() is None, reason="no headless Chromium on this machine")
def test_chromium_renders_the_page_from_disk(tmp_path):
    from media import make_clip

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, fps=10, audio="noise")
    output = {"checkpoint": "c.pt", "videos": [_record(clip, duration=1.0, fps=10.0, n_frames=10)]}
    page = write_report(output, {str(clip): _outputs(10)}, tmp_path / "report")
    png = screenshot(page, tmp_path / "shot.png", width=800, height=600)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[:2] == (600, 800)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, curves and shading drew
