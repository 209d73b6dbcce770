"""Decoding: video frames in bounded chunks, audio as 16 kHz mono float32, both over no temp file.

Video
- decord first (`VideoReader`, read in consecutive `get_batch` chunks, so at most
  `chunk_frames` decoded frames exist at a time: a 10-minute video never sits whole in
  memory). Frame count, per-frame timestamps, fps and duration come from the container
  index that decord builds when it opens the file; the frame size from the first chunk.
  No `ffmpeg -i` runs on this path: spawning ffmpeg to read the stream list cost ~15-30 ms
  per clip, the largest fixed cost of extracting many short clips (issue 13), and decord
  already knows everything but the audio stream, which `decode_audio` finds out itself
  (`MediaInfo.has_audio` is None until then).
- When decord cannot open a file, ffmpeg (the binary from `ffmpeg_exe()`) decodes it to raw
  rgb24 frames over a pipe, `-fps_mode passthrough` so no frame is duplicated or dropped.
  Stream facts then come from parsing `ffmpeg -i` (no ffprobe ships with imageio-ffmpeg);
  the frame count is known only once the stream ends, and the fallback assumes constant
  frame rate (it has no per-frame timestamps).
- Variable frame rate: `fps` is the average (n_frames / duration); when a frame's start
  time deviates from `i / fps` by more than half a frame, `MediaInfo.frame_starts` holds the
  real start times, and alignment uses them instead of the uniform grid.
- Time zero is the container's zero; frame and audio timestamps are not re-based on the
  first packet (a small encoder delay of a few ms is below a frame at 25 fps).

Audio
- ffmpeg decodes the first audio stream to mono float32 at 16 kHz over stdout
  (`-f f32le pipe:1`); ffmpeg's own resampler does the rate conversion during decoding, so
  no in-memory resampling is needed (`resample_wave` uses torchaudio where a caller does
  need one).
- Audio presence: the decoding ffmpeg maps the audio stream as optional (`-map 0:a:0?`)
  and says so when there is none, so the same process that decodes the audio tells whether
  it exists (no separate `ffmpeg -i`). No audio stream is not an error: a zero waveform as
  long as the video, `has_audio=False`, and a warning.
"""
from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from data.ffmpeg_bin import ffmpeg_exe

log = logging.getLogger(__name__)

AUDIO_SAMPLE_RATE = 16000


class DecodeError(RuntimeError):
    """A file that cannot be decoded (the message names the file and the reason)."""


@dataclass(frozen=True)
class MediaInfo:
    path: str  # the file decoded
    fps: float  # average frames per second of the video stream
    n_frames: int  # number of video frames (-1 until an ffmpeg-fallback stream has ended)
    duration: float  # seconds of video: end time of the last frame
    width: int  # frame width, pixels
    height: int  # frame height, pixels
    has_audio: bool | None  # the container holds an audio stream (None: not looked up; decord)
    backend: str  # "decord" or "ffmpeg"
    frame_starts: np.ndarray | None = None  # [n_frames] start times (s), only for VFR video


# ----------------------------------------------------------------------------- ffmpeg -i

_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\S+.*?: Video: (.*)")
_SIZE_RE = re.compile(r"(?<![\w])(\d{2,5})x(\d{2,5})(?![\w])")
_FPS_RE = re.compile(r"([\d.]+)(k?) (fps|tbr)")


def probe(path: str | Path) -> dict:
    """Stream facts from `ffmpeg -i` stderr: duration, width, height, fps, has_video, has_audio."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"{path}: no such file")
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, errors="replace")
    text = result.stderr
    facts = {"duration": None, "width": None, "height": None, "fps": None,
             "has_video": False, "has_audio": False}
    if match := _DURATION_RE.search(text):
        h, m, s = match.groups()
        facts["duration"] = int(h) * 3600 + int(m) * 60 + float(s)
    for line in text.splitlines():
        if ": Audio:" in line and "Stream #" in line:
            facts["has_audio"] = True
        video = _VIDEO_RE.search(line)
        if video and not facts["has_video"] and "attached pic" not in line:
            facts["has_video"] = True
            if size := _SIZE_RE.search(video.group(1)):
                facts["width"], facts["height"] = int(size.group(1)), int(size.group(2))
            rates = {kind: float(v) * (1000 if k else 1) for v, k, kind in _FPS_RE.findall(line)}
            facts["fps"] = rates.get("fps") or rates.get("tbr")
    if not facts["has_video"] and not facts["has_audio"]:
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        raise DecodeError(f"{path}: ffmpeg finds no audio or video stream ({last})")
    return facts


# ----------------------------------------------------------------------------- video

class VideoStream:
    """Iterate over a video's frames as uint8 RGB chunks [n <= chunk_frames, H, W, 3].

    `info` is known on construction; for the ffmpeg fallback `n_frames` (and `duration`,
    if the container gives none) are updated once iteration has finished.
    """

    def __init__(self, path: str | Path, chunk_frames: int = 32, *, decode_threads: int = 1,
                 backend: str = "auto"):
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if backend not in ("auto", "decord", "ffmpeg"):
            raise ValueError(f"backend must be auto, decord or ffmpeg, got {backend!r}")
        self.path = Path(path)
        self.chunk_frames = chunk_frames  # decoded frames held at once
        self.decode_threads = decode_threads  # decord's decoder threads (0 = its default)
        if not self.path.is_file():
            raise DecodeError(f"{self.path}: no such file")
        self._reader = None
        if backend in ("auto", "decord"):
            try:
                self.info = self._open_decord()
                return
            except Exception as err:  # noqa: BLE001 - decord raises bare RuntimeErrors/DECORDErrors
                if backend == "decord":
                    raise DecodeError(f"{self.path}: decord cannot open it ({_first_line(err)})") from err
                log.info("%s: decord cannot open it (%s); decoding with ffmpeg", self.path, _first_line(err))
        facts = probe(self.path)  # the fallback needs ffmpeg's stream list (size, rate, audio)
        if not facts["has_video"]:
            raise DecodeError(f"{self.path}: no video stream")
        self.info = self._ffmpeg_info(facts)

    # -- decord
    def _open_decord(self) -> MediaInfo:
        import decord

        reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=self.decode_threads)
        n_frames = len(reader)
        if n_frames == 0:
            raise DecodeError(f"{self.path}: the video stream has no frames")
        stamps = np.asarray(reader.get_frame_timestamp(range(n_frames)), dtype=np.float64)  # [T, 2]
        # decord keeps timestamps in float32: trust the container's rate for constant-rate
        # video (25.0, not 24.9999990), and the timestamps only when the rate varies
        fps = float(reader.get_avg_fps())
        starts = stamps[:, 0]
        uniform = np.arange(n_frames) / fps
        frame_starts = None
        if fps <= 0 or np.abs(starts - uniform).max() > 0.5 / fps:
            frame_starts = starts.copy()
            duration = float(stamps[-1, 1])
            fps = n_frames / duration
            log.info("%s: variable frame rate (average %.3f fps); aligning audio by frame "
                     "timestamps", self.path, fps)
        else:
            duration = n_frames / fps
        self._reader = reader
        # frame size: asking decord would decode a frame, so it is filled in from the first
        # chunk; audio presence is left to decode_audio (module doc)
        return MediaInfo(str(self.path), fps, n_frames, duration, 0, 0, None, "decord", frame_starts)

    def _iter_decord(self) -> Iterator[np.ndarray]:
        n = self.info.n_frames
        for start in range(0, n, self.chunk_frames):
            indices = list(range(start, min(n, start + self.chunk_frames)))
            try:
                chunk = self._reader.get_batch(indices).asnumpy()  # [n, H, W, 3] uint8
            except Exception as err:  # noqa: BLE001
                raise DecodeError(f"{self.path}: decord failed at frame {start} ({_first_line(err)})") from err
            if start == 0:
                self.info = replace(self.info, height=int(chunk.shape[1]), width=int(chunk.shape[2]))
            yield chunk

    # -- ffmpeg fallback
    def _ffmpeg_info(self, facts: dict) -> MediaInfo:
        if not facts["width"] or not facts["height"] or not facts["fps"]:
            raise DecodeError(f"{self.path}: cannot read the frame size and rate from ffmpeg's stream list")
        duration = facts["duration"] or -1.0
        n_frames = int(round(duration * facts["fps"])) if duration > 0 else -1
        return MediaInfo(str(self.path), float(facts["fps"]), n_frames, duration, int(facts["width"]),
                         int(facts["height"]), bool(facts["has_audio"]), "ffmpeg", None)

    def _iter_ffmpeg(self) -> Iterator[np.ndarray]:
        w, h = self.info.width, self.info.height
        frame_bytes = w * h * 3
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(self.path), "-map", "0:v:0",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        count = 0
        try:
            while True:
                data = proc.stdout.read(frame_bytes * self.chunk_frames)
                n = len(data) // frame_bytes
                if n:
                    count += n
                    yield np.frombuffer(data[: n * frame_bytes], np.uint8).reshape(n, h, w, 3)
                if len(data) < frame_bytes * self.chunk_frames:
                    break
            stderr = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0 or count == 0:
                raise DecodeError(f"{self.path}: ffmpeg could not decode the video "
                                  f"({stderr.strip().splitlines()[-1] if stderr.strip() else 'no frames'})")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        duration = count / self.info.fps
        self.info = replace(self.info, n_frames=count, duration=duration)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._iter_decord() if self._reader is not None else self._iter_ffmpeg()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    # decord appends a C++ stack trace; keep the message
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


# ----------------------------------------------------------------------------- audio

def decode_audio(path: str | Path, *, has_audio: bool | None = None, duration: float | None = None,
                 sample_rate: int = AUDIO_SAMPLE_RATE) -> tuple[np.ndarray, bool]:
    """Mono float32 waveform [S] at `sample_rate` of the first audio stream, and has_audio.

    Without an audio stream: zeros of round(duration * sample_rate) samples and False.
    `has_audio`/`duration` may be passed when already known (saves one `ffmpeg -i`).
    """
    path = Path(path)
    if has_audio is not False:
        # the audio stream mapped as optional: without one, ffmpeg says so and exits non-zero
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0?", "-vn",
               "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
        result = subprocess.run(cmd, capture_output=True)
        stderr = result.stderr.decode(errors="replace").strip()
        if result.returncode == 0:
            return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32), True  # [S]
        if "does not contain any stream" not in stderr:
            if not path.is_file():
                raise DecodeError(f"{path}: no such file")
            raise DecodeError(f"{path}: ffmpeg could not decode the audio "
                              f"({stderr.splitlines()[-1] if stderr else 'exit code %d' % result.returncode})")
    if duration is None:
        duration = probe(path)["duration"]
    log.warning("%s: no audio stream; using silence (has_audio=False)", path)
    return np.zeros(int(round((duration or 0.0) * sample_rate)), np.float32), False


def resample_wave(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a mono waveform [S] in memory with torchaudio (band-limited sinc)."""
    if orig_rate == new_rate:
        return np.asarray(wave, np.float32)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.as_tensor(np.asarray(wave, np.float32)), orig_rate, new_rate)
    return out.numpy()
