"""Extractor factory: names, options, and rebuilding exactly from a cache's settings."""
import json
import shutil

import numpy as np
import pytest
import torch
import torchvision

from data.feature_settings import FeatureSettings
from extractors.voice import VOICE_DIM
from extractors.build import (WeightsUnavailableError, build_audio_extractor,
                              build_extractors_from_settings, build_visual_extractor,
                              extractor_settings, pretrained_weights_on_disk)

FRAMES = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
WAVE = np.random.default_rng(1).standard_normal(12000).astype(np.float32)


def _small_tsn(weights="random", **kw):
    return build_visual_extractor("tsn", weights=weights, precision="fp32", resize_short=48,
                                  crop_size=48, **kw)


def _json_round_trip(settings: dict) -> dict:
    return json.loads(json.dumps(settings))  # what an HDF5 attribute gives back


def test_names_build_the_right_extractors():
    lowlevel = build_visual_extractor("lowlevel")
    assert (lowlevel.name, lowlevel.dim) == ("lowlevel", 320)
    logmel = build_audio_extractor("logmel", n_mels=40)
    assert (logmel.name, logmel.dim, logmel.sample_rate) == ("logmel", 40, 16000)
    voiced = build_audio_extractor("logmel_voice", n_mels=40)
    assert (voiced.dim, voiced.settings["kind"], voiced.settings["voice"]) == (40 + VOICE_DIM, "logmel", True)
    assert voiced.name == "logmel_voice" and "audio: logmel_voice (weight-free)" in \
        FeatureSettings.of_extractors(lowlevel, voiced).describe()
    w2v = build_audio_extractor("random", random_config="tiny", layer=1)
    assert w2v.dim == 16 and w2v.settings["layer"] == 1 and w2v.sample_rate == 16000
    with pytest.raises(ValueError, match="expected one of"):
        build_visual_extractor("vit")
    with pytest.raises(ValueError, match="unknown option"):
        build_visual_extractor("lowlevel", crop_size=3)
    with pytest.raises(ValueError, match="unknown option"):
        build_audio_extractor("logmel", layer_norm=True)


def test_rebuild_random_backbones_from_settings_gives_identical_features():
    visual = _small_tsn(seed=7)
    audio = build_audio_extractor("random", precision="fp32", random_config="tiny", seed=5,
                                  window_s=0.5, overlap_s=0.1)
    settings = _json_round_trip(extractor_settings(visual, audio))
    rebuilt_v, rebuilt_a = build_extractors_from_settings(settings, "cpu", precision="fp32")
    assert rebuilt_v.settings == settings["visual"] and rebuilt_a.settings == settings["audio"]
    np.testing.assert_array_equal(rebuilt_v(FRAMES), visual(FRAMES))
    np.testing.assert_array_equal(rebuilt_a(WAVE)[0], audio(WAVE)[0])
    assert "RANDOM" in FeatureSettings(settings).describe()
    assert settings["visual"]["pretrained"] is False and settings["audio"]["pretrained"] is False


def test_rebuild_weight_free_from_settings():
    visual = build_visual_extractor("lowlevel", size=64, grid=2)
    audio = build_audio_extractor("logmel_voice", n_mels=32, hop_ms=20.0)
    settings = _json_round_trip(extractor_settings(visual, audio))
    rebuilt_v, rebuilt_a = build_extractors_from_settings(settings)
    assert rebuilt_v.dim == 2 * 2 * 20 and rebuilt_a.dim == 32 + VOICE_DIM
    np.testing.assert_array_equal(rebuilt_v(FRAMES), visual(FRAMES))
    features, centres = rebuilt_a(WAVE)
    np.testing.assert_array_equal(features, audio(WAVE)[0])
    assert np.allclose(np.diff(centres), 0.02)
    assert "weight-free" in FeatureSettings(settings).describe()


def test_logmel_settings_from_before_the_voice_descriptors_rebuild_without_them():
    """A cache written before the voice descriptors records neither `n_mels` nor `voice`:
    it rebuilds to the plain log-mel of its recorded width."""
    settings = _json_round_trip(extractor_settings(build_visual_extractor("lowlevel", size=64, grid=2),
                                                   build_audio_extractor("logmel", voice=False)))
    for key in ("n_mels", "voice"):
        del settings["audio"][key]
    _, audio = build_extractors_from_settings(settings)
    assert audio.dim == 64 and audio.voice is False
    np.testing.assert_array_equal(audio(WAVE)[0], build_audio_extractor("logmel", voice=False)(WAVE)[0])


def test_rebuild_tsn_from_a_weight_file_checks_location_and_hash(tmp_path):
    path = tmp_path / "tsn.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    visual = _small_tsn(weights=str(path))
    settings = {"visual": _json_round_trip(visual.settings),
                "audio": build_audio_extractor("logmel").settings}
    assert settings["visual"]["pretrained"] is True
    rebuilt, _ = build_extractors_from_settings(settings, precision="fp32")
    np.testing.assert_array_equal(rebuilt(FRAMES), visual(FRAMES))

    moved = tmp_path / "elsewhere.pth"
    shutil.move(path, moved)
    with pytest.raises(WeightsUnavailableError, match="not there"):
        build_extractors_from_settings(settings)
    rebuilt, _ = build_extractors_from_settings(settings, precision="fp32",
                                                visual_weights=str(moved))
    np.testing.assert_array_equal(rebuilt(FRAMES), visual(FRAMES))

    other = tmp_path / "other.pth"
    state = torch.load(moved, weights_only=True)
    state["conv1.weight"] = state["conv1.weight"] + 1.0  # different weights, same layout
    torch.save(state, other)
    with pytest.raises(ValueError, match="sha256"):
        build_extractors_from_settings(settings, visual_weights=str(other))


def test_malformed_settings_are_named():
    with pytest.raises(ValueError, match="'visual'"):
        build_extractors_from_settings({"audio": {"kind": "logmel"}})
    lowlevel = build_visual_extractor("lowlevel").settings
    with pytest.raises(ValueError, match="unknown audio kind"):
        build_extractors_from_settings({"visual": lowlevel, "audio": {"kind": "mfcc"}})
    tampered = dict(lowlevel, dim=999)
    with pytest.raises(ValueError, match="dim 999"):
        build_extractors_from_settings({"visual": tampered,
                                        "audio": build_audio_extractor("logmel").settings})


def test_pretrained_weights_on_disk_checks_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # honour TORCH_HOME set above
    assert pretrained_weights_on_disk("imagenet", "logmel") == (False, False)
    target = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placeholder")
    assert pretrained_weights_on_disk("imagenet", "random") == (True, False)
    assert pretrained_weights_on_disk("random", "rtdl-test/not-cached")[1] is False
    model_dir = tmp_path / "w2v"
    model_dir.mkdir()
    assert pretrained_weights_on_disk(str(target), str(model_dir)) == (True, False)
    (model_dir / "config.json").write_text("{}")
    assert pretrained_weights_on_disk("random", str(model_dir)) == (False, True)
