"""wav2vec 2.0 extractor on tiny random configs: frame timing, windowing, layers, loading."""
import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from extractors.audio_wav2vec import (TINY_CONFIG, Wav2Vec2AudioExtractor, frame_centre_times,
                                      n_frames_for, plan_windows)
from extractors.weights import WeightsUnavailableError
from media import speechlike_wave
from numerics import FP32_DEEP, assert_close_to_scale



def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(0), b - b.mean(0)  # compare what varies between frames
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def tiny(**kwargs) -> Wav2Vec2AudioExtractor:
    return Wav2Vec2AudioExtractor("random", random_config="tiny", precision="fp32", **kwargs)


def test_frame_count_and_centres_follow_the_conv_geometry():
    assert n_frames_for(400) == 1 and n_frames_for(719) == 1 and n_frames_for(720) == 2
    assert n_frames_for(16000) == 49  # (16000 - 400) // 320 + 1
    np.testing.assert_allclose(frame_centre_times(0, 3), [200 / 16000, 520 / 16000, 840 / 16000])


def test_shapes_and_50hz_centre_times():
    extractor = tiny()
    features, centres = extractor(speechlike_wave(1.0))
    assert features.shape == (49, 16) and features.dtype == np.float32
    assert centres.dtype == np.float64 and centres.shape == (49,)
    assert centres[0] == pytest.approx(0.0125)
    np.testing.assert_allclose(np.diff(centres), 0.02)
    short, short_centres = extractor(np.zeros(100, dtype=np.float32))  # padded to 400 samples
    assert short.shape == (1, 16) and short_centres[0] == pytest.approx(0.0125)
    assert extractor.settings["dim"] == 16 and extractor.settings["pretrained"] is False


def test_plan_windows_tiles_the_clip():
    assert plan_windows(30, 50, 10) == [(0, 0, 30)]
    # windows [0,50), [40,90), [70,120) (last shifted back); overlaps split in the middle
    assert plan_windows(120, 50, 10) == [(0, 0, 45), (40, 45, 80), (70, 80, 120)]
    for total in (51, 99, 100, 101, 977):
        plan = plan_windows(total, 50, 10)
        assert plan[0][1] == 0 and plan[-1][2] == total
        for (start, keep_start, keep_end), nxt in zip(plan, plan[1:] + [None]):
            assert start <= keep_start < keep_end <= start + 50
            if nxt is not None:
                assert nxt[1] == keep_end


def test_windowed_long_audio_matches_a_single_pass():
    wave = speechlike_wave(3.0)
    single, centres = tiny(window_s=10.0)(wave)
    whole_window, _ = tiny(window_s=3.0, overlap_s=0.5)(wave)  # one window covers the clip
    np.testing.assert_allclose(whole_window, single, rtol=1e-5, atol=1e-5)
    windowed, windowed_centres = tiny(window_s=1.0, overlap_s=0.5)(wave)
    np.testing.assert_array_equal(windowed_centres, centres)
    assert windowed.shape == single.shape
    cos = _cosine_rows(windowed, single)
    # windows see less context (and group norm sees a shorter span), so close, not equal;
    # a one-frame misalignment would drop well below this (checked against a shift)
    assert np.median(cos) > 0.97
    shifted = _cosine_rows(np.roll(windowed, 1, axis=0)[1:], single[1:])
    assert np.median(shifted) < np.median(cos) - 0.05


def test_layer_choice_returns_that_hidden_state():
    wave = speechlike_wave(0.5)
    last = tiny()
    first = tiny(layer=1)
    inputs = tiny(layer=0)
    x = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
    with torch.no_grad():
        out = last.model(x, output_hidden_states=True)
    # the extractor's windowing and normalisation in float32 vs the model called directly
    assert_close_to_scale(last(wave)[0], out.last_hidden_state[0], FP32_DEEP, "last layer")
    assert_close_to_scale(first(wave)[0], out.hidden_states[1][0], FP32_DEEP, "layer 1")
    assert_close_to_scale(inputs(wave)[0], out.hidden_states[0][0], FP32_DEEP, "layer 0")
    assert not np.allclose(first(wave)[0], last(wave)[0])
    with pytest.raises(ValueError, match="layer 5 out of range"):
        tiny(layer=5)


def test_input_is_normalised_so_gain_and_offset_do_not_matter():
    extractor = tiny()
    wave = speechlike_wave(0.5)
    a, _ = extractor(wave)
    b, _ = extractor(3.0 * wave + 0.2)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


def test_local_directory_loads_with_its_feature_extractor_settings(tmp_path):
    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(**TINY_CONFIG)).eval()
    model.save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(tmp_path)
    extractor = Wav2Vec2AudioExtractor(str(tmp_path), precision="fp32")
    s = extractor.settings
    assert s["pretrained"] is True and s["do_normalize"] is False
    assert s["revision"].startswith("sha256:") and s["dim"] == 16
    wave = speechlike_wave(0.5)
    with torch.no_grad():
        expected = model(torch.from_numpy(wave)[None]).last_hidden_state[0].numpy()
    np.testing.assert_allclose(extractor(wave)[0], expected, atol=1e-5)


def test_half_precision_checkpoint_is_loaded_as_fp32(tmp_path):
    Wav2Vec2Model(Wav2Vec2Config(**TINY_CONFIG)).half().save_pretrained(tmp_path)
    extractor = Wav2Vec2AudioExtractor(str(tmp_path), precision="fp32")
    assert {p.dtype for p in extractor.model.parameters()} == {torch.float32}
    assert extractor(speechlike_wave(0.2))[0].dtype == np.float32


def test_unavailable_model_says_how_to_supply_it():
    with pytest.raises(WeightsUnavailableError) as err:
        Wav2Vec2AudioExtractor("rtdl-test/no-such-wav2vec2-model")
    assert "--audio-model DIR" in str(err.value) and "HF_HOME" in str(err.value)


def test_offline_failure_is_one_message_without_hub_retries(monkeypatch, caplog):
    import logging

    import extractors.audio_wav2vec as module

    asked = []
    monkeypatch.setattr(module, "hub_reachable", lambda: asked.append(1) or False)
    with caplog.at_level(logging.DEBUG), pytest.raises(WeightsUnavailableError) as err:
        Wav2Vec2AudioExtractor("rtdl-test/no-such-wav2vec2-model")
    assert asked == [1]  # the local cache was tried first, then reachability, never a download
    assert "not in the Hugging Face cache and the hub cannot be reached" in str(err.value)
    assert "\n" not in str(err.value) and "--audio-model logmel" in str(err.value)
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert module.hub_reachable() is False


def test_layer_norm_models_use_an_attention_mask_for_padding():
    extractor = Wav2Vec2AudioExtractor("random", random_config="tiny", precision="fp32")
    # same weights as a layer-norm (large-style) model: swap in such a config
    config = Wav2Vec2Config(**TINY_CONFIG, feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    extractor.model = Wav2Vec2Model(config).eval()
    extractor.use_attention_mask = True
    long, short = torch.from_numpy(speechlike_wave(1.0)), torch.from_numpy(speechlike_wave(0.5, seed=1))
    with torch.no_grad():
        padded = extractor._forward([long, short])[1]  # short is zero-padded in the batch
        alone = extractor._forward([short])[0]
    assert padded.shape == alone.shape == (n_frames_for(8000), 16)
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_stays_close_to_fp32():
    wave = speechlike_wave(1.0)
    fp32, _ = tiny()(wave)
    bf16, _ = Wav2Vec2AudioExtractor("random", random_config="tiny", precision="bf16")(wave)
    assert _cosine_rows(bf16, fp32).min() > 0.99


def test_weights_stored_in_bf16_give_the_same_features_as_autocast():
    """store_weights_for_autocast only saves autocast's per-call weight casts: same numbers."""
    from extractors.precision import store_weights_for_autocast

    stored = Wav2Vec2AudioExtractor("random", random_config="tiny", precision="bf16")
    plain = Wav2Vec2AudioExtractor("random", random_config="tiny", precision="fp32")
    plain.precision = "bf16"  # autocast on fp32 weights, as before the weights were stored
    linear_dtypes = {m.weight.dtype for m in stored.model.modules() if isinstance(m, torch.nn.Linear)}
    assert linear_dtypes == {torch.bfloat16}
    assert {p.dtype for p in plain.model.parameters()} == {torch.float32}
    wave = speechlike_wave(0.5)
    np.testing.assert_array_equal(stored(wave)[0], plain(wave)[0])
    # fp32 and CUDA keep fp32 weights
    fp32 = store_weights_for_autocast(torch.nn.Linear(2, 2), "fp32", "cpu")
    assert fp32.weight.dtype == torch.float32
