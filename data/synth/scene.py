"""Talking-head frames rendered in numpy: a photographic background under a moving camera,
objects passing behind the speaker, and a face with blinking eyes and a mouth that opens
with the speech.

Rendering is a pure function of a `Look` (who) and a `Track` (per-frame camera, pose, mouth
and eyes), drawn for all frames at once with broadcasting over [T, H, W]. The camera pans
(sub-pixel, bilinear), zooms about the frame centre (the face and the background scale
together), shakes, and changes its exposure slowly; objects (photo crops) cross the
background. Forgeries that re-render part of a face call `render_frames` again on a slice
of the track with a changed look or mouth, so untouched frames stay bit-identical. Sensor
noise is added by the caller (`clip.py`), once, so re-rendered spans get the same noise as
the frames they replace.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from data.synth.speaker import Look

SKIN_EDGE = 0.08  # soft-edge width of shapes, in units of the normalised ellipse radius


@dataclass(frozen=True, eq=False)
class Track:
    """Per-frame scene state, arrays of length T."""
    mouth_open: np.ndarray  # float32 [T] in [0, 1]
    eye_open: np.ndarray  # float32 [T] in [0, 1]; blinks dip to 0
    head_xy: np.ndarray  # float32 [T, 2] face centre in pixels (x, y) before the zoom
    bg_offset: np.ndarray  # float32 [T, 2] background position under the frame centre (x, y)
    zoom: np.ndarray  # float32 [T] camera zoom about the frame centre (1 = none)
    gain: np.ndarray  # float32 [T] exposure: the rendered frame is multiplied by it
    sprite_xy: np.ndarray  # float32 [T, K, 2] top-left corner of each moving object (x, y)

    def __len__(self) -> int:
        return len(self.mouth_open)

    def slice(self, start: int, stop: int) -> "Track":
        return Track(*(getattr(self, f.name)[start:stop] for f in dataclasses.fields(self)))

    def with_mouth(self, mouth_open: np.ndarray) -> "Track":
        return dataclasses.replace(self, mouth_open=mouth_open.astype(np.float32))


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


def random_track(mouth_open: np.ndarray, fps: float, size: int, rng: np.random.Generator,
                 n_sprites: int = 0) -> Track:
    """Camera (pan, zoom, shake, exposure), head sway and moving objects for T frames."""
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
    # the camera follows the speaker while panning over the scene behind: up to 0.15 frame
    # widths per second, with a slow sway; zoom drifts and breathes by up to ~15 %
    pan = np.outer(t, rng.uniform(-0.15, 0.15, 2) * size)
    pan += 0.05 * size * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6.3))[:, None]
    zoom = np.exp(rng.uniform(-0.03, 0.03) * t
                  + rng.uniform(0, 0.08) * np.sin(2 * np.pi * rng.uniform(0.05, 0.25) * t
                                                  + rng.uniform(0, 6.3)))
    gain = (1 + rng.uniform(0, 0.08) * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t
                                              + rng.uniform(0, 6.3))
            + rng.normal(0, 0.004, n))  # auto exposure and a little flicker
    centre = np.array([size / 2, size * 0.52], dtype=np.float32)
    head_xy = (centre + sway + camera).astype(np.float32)
    bg_offset = (size + pan + camera * 1.5).astype(np.float32)  # farther plane, more parallax
    # objects cross the frame on straight lines, entering and leaving anywhere
    ends = rng.uniform(-0.3 * size, size, (n_sprites, 2, 2))  # [K, from/to, (x, y)]
    share = (t / max(t[-1], 1e-6))[:, None, None]  # [T, 1, 1]
    sprite_xy = ends[None, :, 0] + (ends[None, :, 1] - ends[None, :, 0]) * share  # [T, K, 2]
    return Track(mouth_open=mouth_open.astype(np.float32),
                 eye_open=blink_profile(n, fps, rng), head_xy=head_xy, bg_offset=bg_offset,
                 zoom=zoom.astype(np.float32), gain=gain.astype(np.float32),
                 sprite_xy=sprite_xy.astype(np.float32))


def _soft_inside(dist2: np.ndarray) -> np.ndarray:
    """1 inside a unit ellipse (normalised squared distance < 1), 0 outside, soft edge."""
    return np.clip((1 + SKIN_EDGE - dist2) / (2 * SKIN_EDGE), 0, 1)


def face_geometry(look: Look, track: Track, size: int):
    """Face centre and radii in frame pixels after the zoom, each float32 [T, 1, 1]."""
    zoom = track.zoom[:, None, None]
    half = size / 2
    cx = half + (track.head_xy[:, 0, None, None] - half) * zoom
    cy = half + (track.head_xy[:, 1, None, None] - half) * zoom
    return cx, cy, look.face_rx * size * zoom, look.face_ry * size * zoom


def face_mask(look: Look, track: Track, size: int) -> np.ndarray:
    """Soft mask of the face ellipse, float32 [T, H, W] in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy, rx, ry = face_geometry(look, track, size)
    return _soft_inside(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2).astype(np.float32)


def _mirror(coords: np.ndarray, n: int) -> np.ndarray:
    """Integer coordinates reflected into [0, n) (no seam where the camera leaves the photo)."""
    period = 2 * (n - 1)
    coords = np.mod(coords, period)
    return np.where(coords >= n, period - coords, coords)


def render_background(look: Look, track: Track, size: int) -> np.ndarray:
    """The photo under the camera, bilinear, float32 [T, H, W, 3]. Pan and zoom are
    separable in x and y, so every frame reads two rows and two columns per pixel. The
    four corners are read by `take` on the flattened photo (row x width + column), half
    the time of indexing with two broadcast index arrays, same values
    (benchmarks/bench_synth_background.py)."""
    bg_h, bg_w = look.background.shape[:2]
    pixel = np.arange(size, dtype=np.float32) + 0.5 - size / 2  # [S] from the frame centre
    inv = (1 / track.zoom)[:, None]  # [T, 1]
    ys = track.bg_offset[:, 1, None] + pixel[None] * inv - 0.5  # [T, H] photo coordinates
    xs = track.bg_offset[:, 0, None] + pixel[None] * inv - 0.5  # [T, W]
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    r0 = _mirror(y0, bg_h)[:, :, None] * bg_w  # [T, H, 1] offsets of photo rows
    r1 = _mirror(y0 + 1, bg_h)[:, :, None] * bg_w
    c0, c1 = _mirror(x0, bg_w)[:, None, :], _mirror(x0 + 1, bg_w)[:, None, :]  # [T, 1, W]
    pixels = look.background.reshape(-1, 3)

    def read(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return pixels.take((rows + columns).ravel(), axis=0).reshape(len(ys), size, size, 3)

    top = read(r0, c0) * (1 - fx) + read(r0, c1) * fx
    bottom = read(r1, c0) * (1 - fx) + read(r1, c1) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _paste_sprites(frames: np.ndarray, look: Look, track: Track) -> None:
    """Blend each moving object into every frame at its (rounded) position, in place."""
    size = frames.shape[1]
    for k, sprite in enumerate(look.sprites):
        h, w = sprite.shape[:2]
        for t in range(len(frames)):
            x, y = np.round(track.sprite_xy[t, k]).astype(int)
            top, left = max(y, 0), max(x, 0)
            bottom, right = min(y + h, size), min(x + w, size)
            if top >= bottom or left >= right:
                continue
            patch = sprite[top - y:bottom - y, left - x:right - x]
            region = frames[t, top:bottom, left:right]
            region += (patch[..., :3] - region) * patch[..., 3:]


def render_frames(look: Look, track: Track, size: int) -> np.ndarray:
    """Noise-free RGB frames, float32 [T, H, W, 3] in 0-255."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [H, W]
    cx, cy, rx, ry = face_geometry(look, track, size)  # [T, 1, 1] each
    dx, dy = xx - cx, yy - cy  # [T, H, W] face-relative coordinates

    frames = render_background(look, track, size)  # [T, H, W, 3]
    _paste_sprites(frames, look, track)

    # hair: a larger ellipse behind the upper face
    hair = _soft_inside((dx / (1.12 * rx)) ** 2 + ((dy + 0.12 * ry) / (1.05 * ry)) ** 2)
    hair *= dy < 0.1 * ry
    frames = frames + (look.hair_rgb - frames) * hair[..., None]

    # skin: colour x side-lit shading x texture that moves (and scales) with the head
    face = _soft_inside((dx / rx) ** 2 + (dy / ry) ** 2)  # [T, H, W]
    tex_h, tex_w = look.skin_texture.shape
    zoom = track.zoom[:, None, None]
    tex = look.skin_texture[np.round(dy / zoom).astype(np.int64) % tex_h,
                            np.round(dx / zoom).astype(np.int64) % tex_w]  # [T, H, W]
    shade = 1.0 - 0.18 * (dx / rx) - 0.1 * (dy / ry) ** 2 + tex
    skin = look.skin_rgb * shade[..., None]  # [T, H, W, 3]
    frames = frames + (skin - frames) * face[..., None]

    # eyes: white ellipses whose height follows eye_open, dark irises, brows above;
    # drawn only on the band of rows they can reach in any frame (a fraction of the frame)
    eye_rx, eye_ry = 0.2 * rx, 0.1 * ry
    eye_y = -0.18 * ry
    rows = _row_band(cy, ry, -0.18 - 0.26, -0.18 + 0.1, size)
    open_ry = eye_ry * np.maximum(track.eye_open, 0.05)[:, None, None]
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
    rows = _row_band(cy, ry, 0.45 - 0.32, 0.45 + 0.32, size)
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
    return (whole * track.gain[:, None, None, None]).astype(np.float32)


def _row_band(cy: np.ndarray, ry: np.ndarray, top: float, bottom: float, size: int) -> slice:
    """Rows covering face-relative heights [top, bottom] (fractions of ry) in every frame,
    with 1 px of margin; cy, ry [T, 1, 1]."""
    first = int(np.floor((cy + top * ry).min())) - 1
    last = int(np.ceil((cy + bottom * ry).max())) + 2
    return slice(max(first, 0), max(min(last, size), max(first, 0)))
