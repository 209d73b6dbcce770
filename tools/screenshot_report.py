"""Render an `rtdl localize --report` page in headless Chromium and save a PNG screenshot.

This is the check that the page works in a real browser from disk (no server, no network);
README's docs/report.png was made with it, from a report on an `rtdl synth` clip:

    rtdl synth --out /tmp/rs --num-videos 24 --duration 3,4 --seed 1 --workers 1
    rtdl extract --metadata /tmp/rs/metadata.json --out /tmp/rs/f.h5 \
        --visual-model lowlevel --audio-model logmel
    rtdl train --cache /tmp/rs/f.h5 --metadata /tmp/rs/metadata.json --out /tmp/rs/run \
        --epochs 6 --set model.d_model=32 --set train.batch_size=8 --set train.lr=1e-3 \
        --set model.input_contrast=replace
    rtdl localize /tmp/rs/test/000015.mp4 --checkpoint /tmp/rs/run/best.pt \
        --out /tmp/rs/seg.json --report /tmp/rs/report
    python tools/screenshot_report.py /tmp/rs/report/report.html docs/report.png --height 1200

Chromium runs with networking, component updates and sync off, so a page that tried to
fetch anything would render without it. Needs `chromium` (Debian) or `chromium-browser` /
`google-chrome` on PATH.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: str | Path, png: str | Path, *, width: int = 1150, height: int = 1000,
               wait_ms: int = 3000, browser: str | None = None, timeout_s: float = 120.0) -> Path:
    """Render `page` (an HTML file) at width x height pixels into `png`; returns its path."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no headless browser found (looked for {', '.join(BROWSERS)} on PATH); "
                                f"on Debian: apt-get install chromium")
    page, png = Path(page).resolve(), Path(png).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: report page not found")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtdl-chromium-") as profile:  # no state kept between runs
        command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", page.as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"{browser} failed to render {page} (exit {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", help="report.html written by rtdl localize --report")
    parser.add_argument("png", help="screenshot to write")
    parser.add_argument("--width", type=int, default=1150)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    path = screenshot(args.page, args.png, width=args.width, height=args.height)
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
