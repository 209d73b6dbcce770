"""Write frames and a waveform to an H.264 (yuv420p) + AAC mp4 with ffmpeg.

Frames go to ffmpeg as raw RGB over a pipe; the audio goes through a 16-bit wav in a
`tempfile` directory (two pipes into one ffmpeg process would need named pipes and
threads). Encoding is made reproducible: one thread for x264 and for the whole process,
`bitexact` flags and no metadata, so the same input gives the same file bytes on the same
ffmpeg build. Every frame is kept as is (`-fps_mode passthrough`, constant frame rate in,
no drops or duplicates), so frame i of the file is frame i of the array.
"""
from __future__ import annotations

import subprocess
import tempfile
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from data.ffmpeg_bin import ffmpeg_exe


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono 16-bit PCM wav from float samples in [-1, 1] (clipped)."""
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None,
              sample_rate: int, *, crf: int = 23, preset: str = "veryfast") -> None:
    """Encode frames uint8 [T, H, W, 3] (RGB, H and W even) and mono audio float32 [S]."""
    path = Path(path)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} "
                         f"{frames.shape}")
    n, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"{path}: yuv420p needs even frame sizes, got {width}x{height}")
    rate = Fraction(fps).limit_denominator(1001)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtdl_synth_") as tmp:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0"]
        if audio is not None:
            wav_path = Path(tmp) / "audio.wav"
            write_wav(wav_path, audio, sample_rate)
            cmd += ["-i", str(wav_path), "-map", "0:v:0", "-map", "1:a:0",
                    "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", str(sample_rate),
                    "-flags:a", "+bitexact"]
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-threads", "1", "-x264-params", "threads=1:lookahead-threads=1:sliced-threads=0",
                "-flags:v", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1",
                "-fps_mode", "passthrough", "-movflags", "+faststart", str(path)]
        proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(),
                              capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{path}: ffmpeg failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
