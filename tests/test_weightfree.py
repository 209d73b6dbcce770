"""Weight-free extractors: log-mel audio and the low-level visual descriptor."""
import math

import numpy as np
import pytest
import torch

from extractors.logmel import LogMelAudioExtractor
from extractors.voice import VOICE_DIM
from extractors.lowlevel_visual import STATS_PER_REGION, LowLevelVisualExtractor

# statistic indices inside a region's 16 values (see extractors/lowlevel_visual.py)
MEAN_R, STD_R, EDGE, LAPLACE, FINE, MOTION, COLOUR_CHANGE, DCT_FIRST = 0, 3, 6, 7, 8, 9, 10, 11
REL_LAPLACE, REL_FINE, REL_MOTION, GLOBAL_MOTION = 16, 17, 18, 19


def _textured_frames(n: int, seed: int = 0, size: int = 128) -> np.ndarray:
    """Moving random texture: every frame differs from the previous one."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size + n, size + n, 3), dtype=np.uint8)
    return np.stack([base[i:i + size, i:i + size] for i in range(n)])


def _stats(features: np.ndarray) -> np.ndarray:
    return features.reshape(features.shape[0], -1, STATS_PER_REGION)  # [N,regions,16]


def test_logmel_shapes_and_centre_times():
    extractor = LogMelAudioExtractor(voice=True)
    features, centres = extractor(np.zeros(16000, dtype=np.float32))
    assert features.shape == (98, 64 + VOICE_DIM) and features.dtype == np.float32  # (16000-400)//160+1
    assert centres[0] == pytest.approx(0.0125) and np.allclose(np.diff(centres), 0.01)
    assert np.allclose(features[:, :64], math.log(1e-6))  # silence sits at the log floor
    assert np.all(features[:, 64:66] == 0)  # and has no pitch and no voicing
    assert extractor.settings["pretrained"] is False and extractor.settings["dim"] == 64 + VOICE_DIM
    assert extractor.settings["n_mels"] == 64 and extractor.settings["voice"] is True
    plain = LogMelAudioExtractor(voice=False)
    assert plain.settings["dim"] == 64
    assert np.array_equal(plain(np.zeros(16000, np.float32))[0], features[:, :64])


def _harmonic(f0: float, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 25))).astype(np.float32)


def test_voice_descriptors_read_the_pitch_and_its_change():
    """Two voices one after the other (120 Hz, then 210 Hz) with silence around them: the
    pitch descriptor reads each voice's pitch where it sounds and 0 in silence."""
    wave = np.concatenate([np.zeros(4000, np.float32), _harmonic(120, 0.5), _harmonic(210, 0.5),
                           np.zeros(4000, np.float32)])
    features, centres = LogMelAudioExtractor(voice=True)(wave)
    pitch, voicing = features[:, 64], features[:, 65]
    first = (centres > 0.3) & (centres < 0.7)
    second = (centres > 0.8) & (centres < 1.2)
    silent = (centres < 0.2) | (centres > 1.3)
    assert np.allclose(pitch[first], math.log2(1.2), atol=0.03)
    assert np.allclose(pitch[second], math.log2(2.1), atol=0.03)
    assert np.all(voicing[first] == 1) and np.all(voicing[silent] == 0) and np.all(pitch[silent] == 0)
    # the spectral envelope differs between the two voices more than within one
    envelope = features[:, 66:]
    within = np.abs(envelope[first] - envelope[first].mean(0)).mean()
    between = np.abs(envelope[first].mean(0) - envelope[second].mean(0)).mean()
    assert between > 2 * within


def test_logmel_peak_band_is_the_one_holding_the_tone():
    sr, f0 = 16000, 440.0
    wave = np.sin(2 * np.pi * f0 * np.arange(sr) / sr).astype(np.float32)
    features, _ = LogMelAudioExtractor(voice=False)(wave)
    # HTK mel: band k of 64 peaks at the (k+1)-th of 66 points evenly spaced in mel(0..8000)
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    centres = np.linspace(mel(0), mel(8000), 66)[1:-1]
    expected = int(np.argmin(np.abs(centres - mel(f0))))
    assert (features.argmax(1) == expected).all()


def test_logmel_marks_a_spliced_noise_burst():
    rng = np.random.default_rng(0)
    wave = np.zeros(16000, dtype=np.float32)
    wave[8000:9600] = 0.3 * rng.standard_normal(1600)  # burst in [0.5, 0.6) s
    features, centres = LogMelAudioExtractor(voice=False)(wave)
    inside = (centres - 0.0125 >= 0.5) & (centres + 0.0125 < 0.6)  # windows fully in the burst
    outside = (centres + 0.0125 < 0.5) | (centres - 0.0125 >= 0.6)
    assert features[inside].mean(1).min() > features[outside].mean(1).max() + 5


def test_lowlevel_uniform_frame_statistics():
    frame = np.zeros((1, 64, 96, 3), dtype=np.uint8)
    frame[..., :] = (10, 200, 30)
    extractor = LowLevelVisualExtractor()
    features = extractor(frame)
    assert features.shape == (1, 320) and extractor.dim == 320
    s = _stats(features)[0]
    np.testing.assert_allclose(s[:, MEAN_R:MEAN_R + 3], np.tile([10 / 255, 200 / 255, 30 / 255],
                                                                (16, 1)), atol=1e-5)
    # std = sqrt(E[x^2] - mean^2) cancels: each region mean of 32x32 pixels carries a rounding
    # error of up to n * eps * mean^2 in the worst summation order, so the std of a flat
    # region is only zero to within mean * sqrt(2 n eps) (~9e-3 here; measured 6e-4)
    bound = (200 / 255) * math.sqrt(2 * 32 * 32 * np.finfo(np.float32).eps)
    assert np.abs(s[:, STD_R:STD_R + 3]).max() <= bound
    np.testing.assert_allclose(s[:, [EDGE, LAPLACE, FINE]], math.log(1e-6), atol=1e-3)
    np.testing.assert_allclose(s[:, MOTION], 0)  # first frame of a video
    np.testing.assert_allclose(s[:, DCT_FIRST:DCT_FIRST + 5], 0, atol=1e-5)  # flat: no AC energy
    np.testing.assert_allclose(s[:, REL_LAPLACE:REL_MOTION + 1], 0, atol=1e-5)  # all alike
    np.testing.assert_allclose(s[:, GLOBAL_MOTION], math.log(1e-4), rtol=1e-6)  # no motion


def test_lowlevel_frozen_frame_has_zero_motion_and_state_crosses_chunks():
    frames = _textured_frames(8)
    frames[5] = frames[4]  # frozen frame
    extractor = LowLevelVisualExtractor()
    whole = extractor(frames)
    s = _stats(whole)
    assert np.all(s[5, :, MOTION] == 0) and np.all(s[5, :, COLOUR_CHANGE] == 0)
    assert np.all(s[1:5, :, MOTION] > 0.01) and np.all(s[6:, :, MOTION] > 0.01)
    extractor.start_video()
    chunked = np.concatenate([extractor(frames[:3]), extractor(frames[3:6]), extractor(frames[6:])])
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    extractor.start_video()  # a new video: its first frame compares with itself
    assert np.all(_stats(extractor(frames[4:5]))[0, :, MOTION] == 0)


def test_lowlevel_blur_lowers_detail_statistics_only_where_blurred():
    frames = _textured_frames(4)
    blurred = frames.copy()
    # box-blur the top-left quarter (regions 0, 1, 4, 5 of the 4x4 grid) of frame 2
    patch = torch.from_numpy(frames[2, :64, :64]).permute(2, 0, 1).float()[None]
    smooth = torch.nn.functional.avg_pool2d(patch, 5, stride=1, padding=2, count_include_pad=False)
    blurred[2, :64, :64] = smooth[0].permute(1, 2, 0).round().byte().numpy()
    extractor = LowLevelVisualExtractor()
    clean = _stats(extractor(frames))
    extractor.start_video()
    dirty = _stats(extractor(blurred))
    quarter = [0, 1, 4, 5]
    for stat in (EDGE, LAPLACE, FINE):
        assert np.all(dirty[2, quarter, stat] < clean[2, quarter, stat] - 1.0)
    # colour statistics are per region: only the blurred regions change
    others = [r for r in range(16) if r not in quarter]
    np.testing.assert_allclose(dirty[2, others, :EDGE], clean[2, others, :EDGE], atol=1e-5)
    # 3x3 filters reach one pixel across region borders: regions not touching the quarter
    # keep even their detail statistics
    far = [3, 7, 11, 12, 13, 14, 15]
    np.testing.assert_allclose(dirty[2, far, :MOTION], clean[2, far, :MOTION], atol=1e-5)
    np.testing.assert_allclose(dirty[:2], clean[:2], atol=1e-6)


def test_lowlevel_colour_swap_moves_region_colour_and_chroma_change():
    # a still, skin-coloured scene with mild noise: colour barely changes between frames
    rng = np.random.default_rng(3)
    scene = np.empty((128, 128, 3))
    scene[...] = (200, 130, 100)
    frames = np.clip(scene + rng.normal(0, 4, size=(3, 128, 128, 3)), 0, 255).astype(np.uint8)
    swapped = frames.copy()
    swapped[1, 32:96, 32:96] = swapped[1, 32:96, 32:96][..., ::-1]  # RGB -> BGR in the centre
    extractor = LowLevelVisualExtractor()
    clean = _stats(extractor(frames))
    extractor.start_video()
    dirty = _stats(extractor(swapped))
    centre = [5, 6, 9, 10]
    # swapping R and B swaps their region means
    np.testing.assert_allclose(dirty[1, centre, 0], clean[1, centre, 2], atol=1e-5)
    assert np.all(dirty[1, centre, COLOUR_CHANGE] > clean[1, centre, COLOUR_CHANGE])


def test_lowlevel_rejects_bad_input_and_geometry():
    with pytest.raises(ValueError, match="uint8"):
        LowLevelVisualExtractor()(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="multiple of grid"):
        LowLevelVisualExtractor(size=100, grid=3)


def test_lowlevel_relative_statistics_ignore_exposure_and_mark_local_blur():
    frames = _textured_frames(4)
    extractor = LowLevelVisualExtractor()
    clean = _stats(extractor(frames))
    # a darker exposure scales every region's energy alike: relative detail stays put
    extractor.start_video()
    darker = _stats(extractor((frames * 0.7).round().astype(np.uint8)))
    assert np.all(darker[:, :, LAPLACE] < clean[:, :, LAPLACE] - 0.5)
    np.testing.assert_allclose(darker[:, :, REL_LAPLACE:REL_FINE + 1],
                               clean[:, :, REL_LAPLACE:REL_FINE + 1], atol=0.05)
    # blurring the top-left quarter of frame 2 leaves its regions below the frame's median
    blurred = frames.copy()
    patch = torch.from_numpy(frames[2, :64, :64]).permute(2, 0, 1).float()[None]
    smooth = torch.nn.functional.avg_pool2d(patch, 5, stride=1, padding=2, count_include_pad=False)
    blurred[2, :64, :64] = smooth[0].permute(1, 2, 0).round().byte().numpy()
    extractor.start_video()
    dirty = _stats(extractor(blurred))
    quarter = [0, 1, 4, 5]
    assert np.all(dirty[2, quarter, REL_FINE] < -1.0)
    assert np.all(np.abs(clean[2, :, REL_FINE]) < 0.5)


def test_lowlevel_local_motion_is_relative_to_the_camera():
    # a smooth texture pans by one pixel per frame (the camera); in frame 2 a patch in
    # the top-left region also changes on its own (a local edit)
    rough = torch.from_numpy(_textured_frames(4)).permute(0, 3, 1, 2).float()
    smooth = torch.nn.functional.avg_pool2d(rough, 9, stride=1, padding=4, count_include_pad=False)
    frames = smooth.permute(0, 2, 3, 1).round().byte().numpy()
    edited = frames.copy()
    edited[2, 4:28, 4:28] = 255 - edited[2, 4:28, 4:28]
    extractor = LowLevelVisualExtractor()
    s = _stats(extractor(edited))
    assert s[2, 0, REL_MOTION] > 0.3  # the edited region moves more than the frame
    assert np.all(np.abs(s[1, :, REL_MOTION]) < 0.3)  # camera motion alone: all alike
    np.testing.assert_allclose(s[:, :, GLOBAL_MOTION], s[:, :1, GLOBAL_MOTION].repeat(16, 1))
    frozen = frames.copy()
    frozen[3] = frozen[2]
    extractor.start_video()
    f = _stats(extractor(frozen))
    assert np.all(f[3, :, GLOBAL_MOTION] < f[2, :, GLOBAL_MOTION] - 3)
