"""data/feature_settings.py: what made a set of features, and the one compatibility rule."""
import pytest

from data.feature_settings import FeatureSettings, backbone_source

TSN = {"kind": "tsn", "dim": 2048, "pretrained": True, "weights": "/old/tsn.pth",
       "weights_id": "file:tsn.pth#sha256:ab12", "weights_sha256": "ab12"}
LOGMEL = {"kind": "logmel", "dim": 64, "pretrained": False, "n_mels": 64}


def test_backbone_source_is_decided_in_one_place():
    assert backbone_source(TSN) == "pretrained"
    assert backbone_source({**TSN, "pretrained": False}) == "random"
    assert backbone_source(LOGMEL) == "weight-free"
    assert "weight-free" in FeatureSettings({"visual": TSN, "audio": LOGMEL}).describe()


def test_a_moved_weight_file_with_the_same_hash_is_the_same_features():
    trained = FeatureSettings({"visual": TSN, "audio": LOGMEL})
    moved = FeatureSettings({"visual": {**TSN, "weights": "/new/tsn.pth"}, "audio": LOGMEL})
    assert trained.difference(moved) == []
    trained.check_compatible(moved, label="best.pt", other_label="cache.h5")
    other = FeatureSettings({"visual": TSN, "audio": {**LOGMEL, "n_mels": 40, "dim": 40}})
    assert trained.difference(other) == ["audio.dim", "audio.n_mels"]
    with pytest.raises(ValueError, match=r"cache\.h5: extractor settings differ .*best\.pt.*audio\.dim: 64 vs 40"):
        trained.check_compatible(other, label="best.pt", other_label="cache.h5")
