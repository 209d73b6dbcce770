"""A synthetic speaker: a voice (pitch, vocal tract, timbre) and a look (face, background).

Every video draws its own speaker, so no two clips share an identity; forgeries that need
"somebody else" (re-voicing, face swap, splices) draw a donor speaker the same way.

Backgrounds and the objects that move across them are crops of real photographs (the ones
that ship inside scikit-image's wheel, so nothing is downloaded and a pinned version gives
the same pixels), with random crop, flip and colour gain: real footage has photographic
texture at every scale, which the former value-noise backgrounds lacked.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

# colour photographs inside the scikit-image wheel (skimage.data), no download needed
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina")


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
    background: np.ndarray  # float32 [2*size, 2*size, 3] photo crop; the camera moves over it
    sprites: tuple[np.ndarray, ...] = ()  # float32 [h, w, 4] RGB + soft alpha: moving objects


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


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """One of `PHOTOS` as uint8 [H, W, 3] (read once per process)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.ascontiguousarray(image[..., :3])


def photo_crop(rng: np.random.Generator, out_h: int, out_w: int) -> np.ndarray:
    """A random crop of a random photo, flipped at random, resized to float32 [out_h, out_w, 3]
    with a random per-channel gain (white balance)."""
    image = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    h, w = image.shape[:2]
    scale = rng.uniform(0.4, 0.9)  # crop side as a fraction of what fits
    ch = max(8, int(min(h, w * out_h / out_w) * scale))
    cw = max(8, int(ch * out_w / out_h))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize((out_w, out_h),
                                                                   Image.Resampling.BILINEAR)
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    return np.clip(np.asarray(resized, np.float32) * gain, 0, 255)


def random_sprite(rng: np.random.Generator, size: int) -> np.ndarray:
    """A moving object: a photo crop in a soft-edged ellipse, float32 [h, w, 4] (alpha last)."""
    h = int(size * rng.uniform(0.2, 0.4))
    w = int(size * rng.uniform(0.2, 0.4))
    rgb = photo_crop(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist2 = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2
    alpha = np.clip((1.0 - dist2) / 0.2, 0, 1)[..., None]
    return np.concatenate([rgb, alpha], -1).astype(np.float32)


def random_look(rng: np.random.Generator, size: int) -> Look:
    skin = rng.uniform([90, 60, 45], [235, 190, 160]).astype(np.float32)
    background = photo_crop(rng, 2 * size, 2 * size)  # the camera moves over it
    sprites = tuple(random_sprite(rng, size) for _ in range(int(rng.integers(0, 3))))
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
        sprites=sprites,
    )


def random_speaker(rng: np.random.Generator, size: int) -> Speaker:
    return Speaker(voice=random_voice(rng), look=random_look(rng, size))
