"""The spectral detail (model/spectral_detail.py) and how the model and the trainer carry it."""
import numpy as np
import pytest
import torch
from scipy.fft import dct

from model.rtdeeploc import build_model
from model.spectral_detail import SpectralDetail, applies_to, dct_matrix
from model_fixtures import one_thread, tiny_config  # noqa: F401 (one_thread: fixture)
from pipeline.metrics import rank_auc

MELS, CV = 64, 6


def log_mel_clip(rng: np.random.Generator, frames: int, ripple_scale: dict | None = None) -> np.ndarray:
    """[frames, MELS] log-mel-like frames: a smooth envelope (a loud hump in voiced frames,
    a flat floor in silent ones) plus, in voiced frames only, a harmonic ripple across the
    bands (period 4 bands, its phase drifting with the pitch). `ripple_scale`: {(start,
    stop): factor} multiplies the ripple in those frames (0: smoothed; 3: too rough)."""
    voiced = (np.convolve(rng.normal(size=frames + 6), np.ones(7) / 7, mode="valid") > -0.1)[:frames]
    bands = np.arange(MELS)
    hump = 3.0 * np.exp(-((bands - 20) / 12.0) ** 2)
    clip = np.empty((frames, MELS))
    for t in range(frames):
        level = rng.normal(-6.0, 0.3) + 0.01 * rng.normal() * bands
        if voiced[t]:
            ripple = np.cos(2 * np.pi * bands / 4 + rng.uniform(0, 2 * np.pi))
            for (start, stop), factor in (ripple_scale or {}).items():
                if start <= t < stop:
                    ripple = ripple * factor
            clip[t] = level + 4.0 + hump + 0.8 * ripple
        else:
            clip[t] = level
        clip[t] += 0.05 * rng.normal(size=MELS)
    return clip.astype(np.float32)


def fitted_detail(seed: int = 0) -> SpectralDetail:
    rng = np.random.default_rng(seed)
    clips = [torch.tensor(log_mel_clip(rng, 80)) for _ in range(20)]
    detail = SpectralDetail()
    detail.fit(lambda: iter(clips), MELS)
    return detail


def test_dct_matrix_is_scipys_orthonormal_dct_ii():
    x = np.random.default_rng(0).normal(size=(5, MELS))
    expected = dct(x, type=2, norm="ortho", axis=1)[:, :12]
    np.testing.assert_allclose(torch.tensor(x) @ dct_matrix(MELS, 12), expected, atol=1e-10)


@pytest.mark.parametrize("factor", [0.0, 3.0], ids=["smoothed", "too_rough"])
def test_detail_marks_a_span_with_less_or_more_ripple_than_its_envelope_predicts(factor):
    """Both directions count: a one-sided (signed) detail would rank one of them inverted."""
    detail = fitted_detail()
    rng = np.random.default_rng(7)
    aucs = []
    for _ in range(5):
        clip = log_mel_clip(rng, 90, {(30, 60): factor})
        scores = detail(torch.tensor(clip)[None], torch.ones(1, 90, dtype=torch.bool))[0]
        forged = np.zeros(90, bool)
        forged[30:60] = True
        aucs.append(rank_auc(forged, scores.numpy()))
    assert np.mean(aucs) > 0.9, aucs


def test_unfitted_detail_is_zero_and_the_fit_needs_frames():
    fresh = SpectralDetail()
    out = fresh(torch.ones(1, 20, MELS), torch.ones(1, 20, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 20))
    assert list(fresh.parameters()) == []  # buffers only: nothing to train, no random draw
    with pytest.raises(ValueError, match="more frames"):
        fresh.fit(lambda: iter([torch.ones(3, MELS)]), MELS)
    with pytest.raises(ValueError, match="odd"):
        SpectralDetail(window=4)


def test_it_applies_to_log_mel_audio_only():
    assert applies_to({"kind": "logmel", "n_mels": 64})
    assert applies_to({"kind": "logmel", "name": "logmel_voice", "n_mels": 64})
    assert not applies_to({"kind": "wav2vec2", "dim": 768})
    assert not applies_to({"name": "logmel"})  # no kind recorded: not known to be bands
    assert not applies_to({"kind": "logmel", "n_mels": 4})  # too few bands for the ripple


def test_model_predicts_the_fitted_detail_on_valid_frames_only(one_thread):
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, MELS)
    rng = np.random.default_rng(3)
    before = sum(p.numel() for p in model.parameters())
    clips = [log_mel_clip(rng, 60) for _ in range(10)]
    model.fit_spectral_detail(lambda: iter(clips), MELS)
    assert sum(p.numel() for p in model.parameters()) == before
    assert bool(model.spectral_detail.is_set)
    model.detail_calibration.set_reference(np.linspace(0, 5, 100))
    long = torch.tensor(log_mel_clip(rng, 40, {(10, 25): 0.0}))
    audio = torch.zeros(2, 40, MELS)
    audio[0], audio[1, :30] = long, long[:30]
    visual = torch.randn(2, 40, CV)
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0], mask[1, :30] = True, True
    prediction = model.predict(visual, audio, mask)
    assert torch.equal(prediction.spectral_detail[1, 30:], torch.zeros(10))
    alone = model.predict(visual[1:, :30], audio[1:, :30], mask[1:, :30])
    torch.testing.assert_close(prediction.spectral_detail[1, :30], alone.spectral_detail[0])
    evidence = prediction.spectral_detail_evidence[0]
    assert float(evidence.min()) >= 0 and float(evidence.max()) <= 1
    order = torch.argsort(prediction.spectral_detail[0])
    assert bool((evidence[order].diff() >= 0).all())  # percentiles keep the order


def test_a_checkpoint_from_before_the_detail_loads_with_it_unset(one_thread):
    model = build_model(tiny_config(), CV, MELS)
    clips = [log_mel_clip(np.random.default_rng(4), 30) for _ in range(5)]
    model.fit_spectral_detail(lambda: iter(clips), MELS)
    old_state = {k: v for k, v in model.state_dict().items()
                 if not k.startswith(("spectral_detail.", "detail_calibration."))}
    reloaded = build_model(tiny_config(), CV, MELS)
    reloaded.load_state_dict(old_state)
    assert not bool(reloaded.spectral_detail.is_set)
    prediction = reloaded.predict(torch.randn(1, 12, CV), torch.tensor(clips[0][:12])[None],
                                  torch.ones(1, 12, dtype=torch.bool))
    assert torch.equal(prediction.spectral_detail_evidence, torch.zeros(1, 12))


class _LogMelCache:
    """What calibrate_frame_evidence reads of a feature cache: settings and read()."""

    def __init__(self, clips: dict, audio_settings: dict):
        self.clips, self.settings = clips, {"visual": {"kind": "lowlevel"}, "audio": audio_settings}

    def read(self, key):
        return self.clips[key]


@pytest.mark.parametrize("audio_settings, fitted", [({"kind": "logmel", "n_mels": MELS}, True),
                                                    ({"kind": "wav2vec2"}, False)])
def test_the_trainer_fits_and_calibrates_the_detail_for_log_mel_audio_only(one_thread, audio_settings,
                                                                            fitted):
    from data.records import VideoRecord
    from pipeline.train import calibrate_frame_evidence

    rng = np.random.default_rng(5)
    clips = {f"{i}.mp4": (rng.normal(size=(40, CV)).astype(np.float32), log_mel_clip(rng, 40))
             for i in range(6)}
    records = [VideoRecord(file=key, split="train", duration=1.6, fps=25.0, n_frames=40, label=0,
                           fake_segments=())
               for key in clips]
    model = build_model(tiny_config(), CV, MELS)
    calibrate_frame_evidence(model, _LogMelCache(clips, audio_settings), records, torch.device("cpu"))
    assert bool(model.spectral_detail.is_set) is fitted
    assert bool(model.detail_calibration.is_set) is fitted
