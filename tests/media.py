"""Generated test media: tiny mp4 clips written with ffmpeg's lavfi test sources.

Reusable by any test: `make_clip(tmp_path / "a.mp4", seconds=1.0)` writes a testsrc video
with a sine tone (or noise, or no audio). Everything is generated, nothing is downloaded.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from data.ffmpeg_bin import ffmpeg_exe


_RAMP = "aevalsrc=0.3*t*sin(2*PI*440*t):s={rate}:d={seconds}"


def make_clip(path: str | Path, seconds: float = 1.0, *, fps: int = 25, size: tuple[int, int] = (64, 48),
              audio: str | None = "sine", sample_rate: int = 16000, audio_seconds: float | None = None,
              codec: str = "libx264") -> Path:
    """Write an mp4 of `seconds` of testsrc at `fps`, `size` = (width, height).

    audio: "sine" (440 Hz tone), "noise" (white noise), "ramp" (440 Hz tone whose amplitude is
    0.3 * t, so the RMS at time t is 0.3 t / sqrt(2): audio timing is visible), or None.
    audio_seconds: audio length when it should differ from the video's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error",
           "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"]
    a_seconds = seconds if audio_seconds is None else audio_seconds
    if audio == "sine":
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}:duration={a_seconds}"]
    elif audio == "noise":
        cmd += ["-f", "lavfi", "-i", f"anoisesrc=color=white:sample_rate={sample_rate}:duration={a_seconds}:seed=1"]
    elif audio == "ramp":
        cmd += ["-f", "lavfi", "-i", _RAMP.format(rate=sample_rate, seconds=a_seconds)]
    elif audio is not None:
        raise ValueError(f"audio must be 'sine', 'noise' or None, got {audio!r}")
    cmd += ["-c:v", codec, "-pix_fmt", "yuv420p"]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast"]
    if audio is not None:
        cmd += ["-c:a", "aac"]
    cmd += [str(path)]
    subprocess.run(cmd, check=True)
    return path


def make_vfr_clip(path: str | Path, *, slow_from: int = 10, n_frames: int = 20,
                  size: tuple[int, int] = (64, 48), ramp_audio: bool = False) -> Path:
    """Variable frame rate clip: frames 0..slow_from-1 every 40 ms, the rest every 100 ms.

    ramp_audio: add the "ramp" tone of `make_clip` (2 s) to see audio timing per frame.
    """
    path = Path(path)
    width, height = size
    pts = f"if(lt(N,{slow_from}),N*0.04,{slow_from}*0.04+(N-{slow_from})*0.1)/TB"
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
           "-i", f"testsrc=size={width}x{height}:rate=25"]
    if ramp_audio:
        cmd += ["-f", "lavfi", "-i", _RAMP.format(rate=16000, seconds=2.0), "-c:a", "aac"]
    cmd += ["-frames:v", str(n_frames), "-vf", f"setpts='{pts}'", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


def make_corrupt(path: str | Path, size: int = 4096) -> Path:
    """A file named like a video that holds no decodable media."""
    path = Path(path)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * (size // 256))
    return path


def speechlike_wave(seconds: float, seed: int = 0) -> np.ndarray:
    """16 kHz float32 noise plus a tone whose loudness changes every 0.1 s: audio content
    that varies in time, for audio backbones' tests."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    envelope = np.repeat(rng.random(n // 1600 + 1), 1600)[:n]
    tone = np.sin(2 * np.pi * 220 * np.arange(n) / 16000) * envelope
    return (tone + 0.1 * rng.standard_normal(n)).astype(np.float32)
