"""Talking-head frames rendered in numpy: a textured, panning background and a face with
blinking eyes and a mouth that opens with the speech.

Rendering is a pure function of a `Look` (who) and a `Track` (per-frame pose, mouth and
eyes), drawn for all frames at once with broadcasting over [T, H, W]. Forgeries that
re-render part of a face call `render_frames` again on a slice of the track with a changed
look or mouth, so untouched frames stay bit-identical. Sensor noise is added by the caller
(`clip.py`), once, so re-rendered spans get the same noise as the frames they replace.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synth.speaker import Look

SKIN_EDGE = 0.08  # soft-edge width of shapes, in units of the normalised ellipse radius


@dataclass(frozen=True, eq=False)
class Track:
    """Per-frame scene state, arrays of length T."""
    mouth_open: np.ndarray  # float32 [T] in [0, 1]
    eye_open: np.ndarray  # float32 [T] in [0, 1]; blinks dip to 0
    head_xy: np.ndarray  # float32 [T, 2] face centre in pixels (x, y), sway and jitter included
    bg_offset: np.ndarray  # int64 [T, 2] background crop offset (x, y): pan and jitter

    def __len__(self) -> int:
        return len(self.mouth_open)

    def slice(self, start: int, stop: int) -> "Track":
        return Track(self.mouth_open[start:stop], self.eye_open[start:stop],
                     self.head_xy[start:stop], self.bg_offset[start:stop])

    def with_mouth(self, mouth_open: np.ndarray) -> "Track":
        return Track(mouth_open.astype(np.float32), self.eye_open, self.head_xy, self.bg_offset)


def blink_profile(n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eye openness per frame, float32 [T]: open, with a blink every 2-6 seconds."""
    eye = np.ones(n_frames, dtype=np.float32)
    closing = np.array([0.6, 0.15, 0.0, 0.3, 0.75], dtype=np.float32)  # ~200 ms at 25 fps
    steps = max(1, int(round(len(closing) * fps / 25)))
    profile = np.interp(np.linspace(0, len(closing) - 1, steps), np.arange(len(closing)), closing)
    t = rng.uniform(0.2, 3.0) * fps
    while t < n_frames:
        start = int(t)
        stop = min(n_frames, start + steps)
        eye[start:stop] = profile[:stop - start]
        t += rng.uniform(2.0, 6.0) * fps
    return eye


def random_track(mouth_open: np.ndarray, fps: float, size: int, rng: np.random.Generator
                 ) -> Track:
    """Head sway, camera jitter and background pan for T frames around the frame centre."""
    n = len(mouth_open)
    t = np.arange(n, dtype=np.float32) / fps
    sway = np.stack([
        0.03 * size * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3)),
        0.02 * size * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3)),
    ], -1)  # [T, 2]
    # camera shake: a jittery random walk pulled back to the centre
    shake = np.cumsum(rng.normal(0, 0.4, (n, 2)), 0) * 0.6
    shake -= np.linspace(0, 1, n)[:, None] * shake[-1:]
    camera = shake + rng.normal(0, 0.3, (n, 2))  # [T, 2]
    pan = np.outer(t, rng.uniform(-0.06, 0.06, 2) * size)  # slow drift of the background, px
    centre = np.array([size / 2, size * 0.52], dtype=np.float32)
    head_xy = (centre + sway + camera).astype(np.float32)
    bg_offset = np.round(pan + camera * 1.5).astype(np.int64)  # farther plane, larger parallax
    return Track(mouth_open=mouth_open.astype(np.float32),
                 eye_open=blink_profile(n, fps, rng), head_xy=head_xy, bg_offset=bg_offset)


def _soft_inside(dist2: np.ndarray) -> np.ndarray:
    """1 inside a unit ellipse (normalised squared distance < 1), 0 outside, soft edge."""
    return np.clip((1 + SKIN_EDGE - dist2) / (2 * SKIN_EDGE), 0, 1)


def face_mask(look: Look, track: Track, size: int) -> np.ndarray:
    """Soft mask of the face ellipse, float32 [T, H, W] in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx = track.head_xy[:, 0, None, None]
    cy = track.head_xy[:, 1, None, None]
    rx, ry = look.face_rx * size, look.face_ry * size
    return _soft_inside(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2).astype(np.float32)


def render_frames(look: Look, track: Track, size: int) -> np.ndarray:
    """Noise-free RGB frames, float32 [T, H, W, 3] in 0-255."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [H, W]
    cx = track.head_xy[:, 0, None, None]  # [T, 1, 1]
    cy = track.head_xy[:, 1, None, None]
    rx, ry = look.face_rx * size, look.face_ry * size
    dx, dy = xx - cx, yy - cy  # [T, H, W] face-relative coordinates

    # background: crop of the (tiling) background picture at the frame's offset
    bg_h, bg_w = look.background.shape[:2]
    rows = (track.bg_offset[:, 1, None] + np.arange(size)[None]) % bg_h  # [T, H]
    cols = (track.bg_offset[:, 0, None] + np.arange(size)[None]) % bg_w  # [T, W]
    frames = look.background[rows[:, :, None], cols[:, None, :]]  # [T, H, W, 3]

    # hair: a larger ellipse behind the upper face
    hair = _soft_inside((dx / (1.12 * rx)) ** 2 + ((dy + 0.12 * ry) / (1.05 * ry)) ** 2)
    hair *= dy < 0.1 * ry
    frames = frames + (look.hair_rgb - frames) * hair[..., None]

    # skin: colour x side-lit shading x texture that moves with the head
    face = _soft_inside((dx / rx) ** 2 + (dy / ry) ** 2)  # [T, H, W]
    tex_h, tex_w = look.skin_texture.shape
    tex = look.skin_texture[np.round(dy).astype(np.int64) % tex_h,
                            np.round(dx).astype(np.int64) % tex_w]  # [T, H, W]
    shade = 1.0 - 0.18 * (dx / rx) - 0.1 * (dy / ry) ** 2 + tex
    skin = look.skin_rgb * shade[..., None]  # [T, H, W, 3]
    frames = frames + (skin - frames) * face[..., None]

    # eyes: white ellipses whose height follows eye_open, dark irises, brows above;
    # drawn only on the band of rows they can reach in any frame (a fraction of the frame)
    eye_rx, eye_ry = 0.2 * rx, 0.1 * ry
    eye_y = -0.18 * ry
    rows = _row_band(track, eye_y - 2.6 * eye_ry, eye_y + eye_ry, size)
    open_ry = (eye_ry * np.maximum(track.eye_open, 0.05))[:, None, None]
    whole = frames
    frames, dx, dy = whole[:, rows], dx[:, rows], dy[:, rows]
    for side in (-1.0, 1.0):
        ex = dx - side * look.eye_dx * rx
        ey = dy - eye_y
        sclera = _soft_inside((ex / eye_rx) ** 2 + (ey / open_ry) ** 2)
        frames = frames + (np.float32(235.0) - frames) * sclera[..., None]
        iris = _soft_inside((ex / (0.55 * eye_rx)) ** 2 + (ey / (0.9 * eye_ry)) ** 2) * sclera
        frames = frames + (look.iris_rgb - frames) * iris[..., None]
        brow = _soft_inside((ex / (1.2 * eye_rx)) ** 2 + ((ey + 2.2 * eye_ry) / (0.35 * eye_ry)) ** 2)
        frames = frames + (look.hair_rgb * 0.7 - frames) * brow[..., None]

    whole[:, rows] = frames

    # mouth: lips (outer ellipse) around a dark opening whose height follows the speech
    mouth_rx = look.mouth_w * rx
    mouth_y = 0.45 * ry
    rows = _row_band(track, mouth_y - 0.32 * ry, mouth_y + 0.32 * ry, size)
    frames, dx, dy = whole[:, rows], (xx - cx)[:, rows], (yy - cy)[:, rows]
    opening = track.mouth_open[:, None, None]  # [T, 1, 1]
    lips_ry = 0.07 * ry + 0.22 * ry * opening
    my = dy - mouth_y
    lips = _soft_inside((dx / mouth_rx) ** 2 + (my / lips_ry) ** 2)
    frames = frames + (look.lip_rgb - frames) * lips[..., None]
    inner_ry = np.maximum(0.2 * ry * opening, 0.01)
    cavity = _soft_inside((dx / (0.8 * mouth_rx)) ** 2 + (my / inner_ry) ** 2) * (opening > 0.03)
    frames = frames + (np.array([45, 15, 20], np.float32) - frames) * cavity[..., None]
    teeth = cavity * (my < -0.4 * inner_ry)
    frames = frames + (np.float32(220.0) - frames) * teeth[..., None]
    whole[:, rows] = frames
    return whole.astype(np.float32)


def _row_band(track: Track, top: float, bottom: float, size: int) -> slice:
    """Rows covering face-relative heights [top, bottom] in every frame (1 px of margin)."""
    first = int(np.floor(track.head_xy[:, 1].min() + top)) - 1
    last = int(np.ceil(track.head_xy[:, 1].max() + bottom)) + 2
    return slice(max(first, 0), max(min(last, size), max(first, 0)))
