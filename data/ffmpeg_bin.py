"""Which ffmpeg binary rtdl runs.

Order: the `RTDL_FFMPEG` environment variable, then `ffmpeg` on PATH, then the binary
that the imageio-ffmpeg wheel ships (a fresh machine has no system ffmpeg). That wheel
ships no ffprobe, so rtdl never calls ffprobe: stream facts come from decord or from
parsing `ffmpeg -i` output.
"""
from __future__ import annotations

import functools
import os
import shutil


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    override = os.environ.get("RTDL_FFMPEG")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise FileNotFoundError(f"RTDL_FFMPEG={override!r} is not an executable file")
        return override
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg  # ships a static ffmpeg in its wheel

    return imageio_ffmpeg.get_ffmpeg_exe()
