"""A synthetic speaker: a voice (pitch, vocal tract, timbre) and a look (face, background).

Every video draws its own speaker, so no two clips share an identity; forgeries that need
"somebody else" (re-voicing, face swap, splices) draw a donor speaker the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Voice:
    f0_hz: float  # mean pitch of voiced syllables
    formant_scale: float  # vocal-tract length factor applied to every vowel formant
    tilt: float  # harmonic amplitude falls as k**-tilt (higher = darker voice)
    breathiness: float  # share of aspiration noise mixed into voiced sound
    pitch_range: float  # relative size of the pitch accents


@dataclass(frozen=True, eq=False)
class Look:
    skin_rgb: np.ndarray  # float32 [3], 0-255
    lip_rgb: np.ndarray  # float32 [3]
    iris_rgb: np.ndarray  # float32 [3]
    hair_rgb: np.ndarray  # float32 [3]
    face_rx: float  # face ellipse half-width, fraction of the frame size
    face_ry: float  # face ellipse half-height, fraction of the frame size
    eye_dx: float  # horizontal eye offset from the face centre, fraction of face_rx
    mouth_w: float  # mouth half-width, fraction of face_rx
    skin_texture: np.ndarray  # float32 [size, size], zero-mean relative skin modulation
    background: np.ndarray  # float32 [2*size, 2*size, 3], tiles; the camera pans over it


@dataclass(frozen=True, eq=False)
class Speaker:
    voice: Voice
    look: Look


def random_voice(rng: np.random.Generator) -> Voice:
    # half low (80-150 Hz), half high (160-260 Hz) voices, with matching tract lengths
    high = rng.random() < 0.5
    f0 = rng.uniform(160, 260) if high else rng.uniform(80, 150)
    return Voice(
        f0_hz=float(f0),
        formant_scale=float(rng.uniform(1.05, 1.25) if high else rng.uniform(0.85, 1.05)),
        tilt=float(rng.uniform(0.8, 1.6)),
        breathiness=float(rng.uniform(0.02, 0.15)),
        pitch_range=float(rng.uniform(0.05, 0.2)),
    )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Value noise: a coarse random grid upsampled bilinearly, float32 [shape], about N(0,1)."""
    h, w = shape
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def random_look(rng: np.random.Generator, size: int) -> Look:
    skin = rng.uniform([90, 60, 45], [235, 190, 160]).astype(np.float32)
    # background: two colours mixed by multi-scale value noise plus a stripe pattern, so the
    # pan and camera jitter give visible texture motion
    bg_size = 2 * size
    mix = (0.6 * smooth_noise(rng, (bg_size, bg_size), max(2, size // 6))
           + 0.4 * smooth_noise(rng, (bg_size, bg_size), max(2, size // 24)))
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:bg_size, 0:bg_size].astype(np.float32)
    # an integer number of stripe periods over the tile keeps the tiling seamless
    periods = rng.integers(3, 9)
    stripes = np.sin(2 * np.pi * periods * (np.cos(angle) * xx + np.sin(angle) * yy) / bg_size)
    weight = 1 / (1 + np.exp(-(mix + 0.5 * stripes)))  # [2s, 2s] in (0, 1)
    colour_a = rng.uniform(20, 235, 3).astype(np.float32)
    colour_b = rng.uniform(20, 235, 3).astype(np.float32)
    background = colour_a * weight[..., None] + colour_b * (1 - weight[..., None])
    texture = 0.05 * smooth_noise(rng, (size, size), 2) + 0.03 * rng.standard_normal((size, size))
    return Look(
        skin_rgb=skin,
        lip_rgb=np.clip(skin * [1.0, 0.55, 0.55] + [30, 0, 0], 0, 255).astype(np.float32),
        iris_rgb=rng.uniform([20, 20, 20], [110, 140, 160]).astype(np.float32),
        hair_rgb=rng.uniform(10, 140, 3).astype(np.float32),
        face_rx=float(rng.uniform(0.22, 0.30)),
        face_ry=float(rng.uniform(0.30, 0.38)),
        eye_dx=float(rng.uniform(0.35, 0.48)),
        mouth_w=float(rng.uniform(0.30, 0.45)),
        skin_texture=texture.astype(np.float32),
        background=background.astype(np.float32),
    )


def random_speaker(rng: np.random.Generator, size: int) -> Speaker:
    return Speaker(voice=random_voice(rng), look=random_look(rng, size))
