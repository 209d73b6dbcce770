"""TSN ResNet-50 extractor: preprocessing, weight files (torchvision / mmaction2), precision."""
import copy

import numpy as np
import pytest
import torch
import torchvision

from extractors import visual_tsn
from extractors.visual_tsn import (TSNPreprocess, TSNVisualExtractor, mmaction2_to_torchvision_key,
                                   preprocess_frames, read_resnet_state_dict)
from extractors.weights import WeightsUnavailableError
from numerics import FP32_DEEP, assert_close_to_scale, max_error_to_scale


@pytest.fixture(scope="module")
def random_extractor():
    # small crop keeps the forward pass cheap; the network is the full ResNet-50
    return TSNVisualExtractor("random", precision="fp32", batch_size=2,
                              preprocess=TSNPreprocess(resize_short=64, crop_size=64))


def _torchvision_to_mmaction2(key: str) -> str:
    """The inverse renaming, written independently of the module's regex table."""
    parts = key.split(".")
    if parts[0] == "conv1":
        return "backbone.conv1.conv." + parts[1]
    if parts[0] == "bn1":
        return "backbone.conv1.bn." + parts[1]
    layer, block, module = parts[0], parts[1], parts[2]
    if module == "downsample":
        sub = {"0": "conv", "1": "bn"}[parts[3]]
        return f"backbone.{layer}.{block}.downsample.{sub}.{parts[4]}"
    if module.startswith("bn"):
        return f"backbone.{layer}.{block}.conv{module[2:]}.bn.{parts[3]}"
    return f"backbone.{layer}.{block}.{module}.conv.{parts[3]}"


def test_preprocess_resizes_short_side_then_centre_crops():
    # 4 rows x 8 columns: left half black, right half white; short side 4 -> 2, width 8 -> 4
    frame = np.zeros((1, 4, 8, 3), dtype=np.uint8)
    frame[:, :, 4:] = 255
    cfg = TSNPreprocess(resize_short=2, crop_size=2, mean=(0, 0, 0), std=(1, 1, 1))
    out = preprocess_frames(torch.from_numpy(frame), cfg)
    assert out.shape == (1, 3, 2, 2)
    # antialiased bilinear halving = triangle filter of half-width 2 input pixels: output
    # column 1 (centre x=3) weighs input columns 1..4 by 1/8, 3/8, 3/8, 1/8 -> 0+0+0+1/8;
    # column 2 (centre x=5) weighs columns 3..6 -> 0 + 3/8 + 3/8 + 1/8 = 7/8.
    # centre crop of width 2 from 4 columns keeps columns 1..2.
    expected = torch.tensor([[0.125, 0.875], [0.125, 0.875]])
    assert torch.allclose(out[0, 0], expected, atol=1e-6)


def test_preprocess_applies_mean_std_and_crops_centre_without_resize():
    frame = np.full((1, 6, 6, 3), 51, dtype=np.uint8)  # 0.2 everywhere
    frame[0, 2:4, 2:4, 0] = 255  # bright red 2x2 centre
    cfg = TSNPreprocess(resize_short=6, crop_size=2, mean=(0.2, 0.2, 0.2), std=(0.5, 0.5, 0.5))
    out = preprocess_frames(torch.from_numpy(frame), cfg)
    assert out.shape == (1, 3, 2, 2)
    assert torch.allclose(out[0, 0], torch.full((2, 2), (1.0 - 0.2) / 0.5))
    assert torch.allclose(out[0, 1], torch.zeros(2, 2), atol=1e-6)


def test_crop_larger_than_resize_is_rejected():
    with pytest.raises(ValueError, match="crop_size"):
        TSNPreprocess(resize_short=128, crop_size=256)


def test_shapes_settings_and_batching(random_extractor):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 40, 50, 3), dtype=np.uint8)
    feats = random_extractor(frames)
    assert feats.shape == (3, 2048) and feats.dtype == np.float32
    # batch size 2 over 3 frames must equal frame-by-frame results
    single = np.concatenate([random_extractor(frames[i:i + 1]) for i in range(3)])
    assert_close_to_scale(feats, single, FP32_DEEP, "batched vs one at a time")
    s = random_extractor.settings
    assert s["weights"] == "random" and s["pretrained"] is False and s["dim"] == 2048
    assert s["resize_short"] == 64 and s["crop_size"] == 64
    with pytest.raises(ValueError, match="uint8"):
        random_extractor(frames.astype(np.float32))


def test_random_weights_are_reproducible_from_seed():
    a = visual_tsn.build_resnet50_backbone("random", seed=3)[0].state_dict()
    b = visual_tsn.build_resnet50_backbone("random", seed=3)[0].state_dict()
    c = visual_tsn.build_resnet50_backbone("random", seed=4)[0].state_dict()
    assert torch.equal(a["conv1.weight"], b["conv1.weight"])
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_mmaction2_names_map_to_torchvision():
    assert mmaction2_to_torchvision_key("conv1.conv.weight") == "conv1.weight"
    assert mmaction2_to_torchvision_key("conv1.bn.running_var") == "bn1.running_var"
    assert mmaction2_to_torchvision_key("layer1.0.conv2.bn.bias") == "layer1.0.bn2.bias"
    assert mmaction2_to_torchvision_key("layer3.5.conv3.conv.weight") == "layer3.5.conv3.weight"
    assert mmaction2_to_torchvision_key("layer4.0.downsample.bn.weight") == \
        "layer4.0.downsample.1.weight"


def test_mmaction2_checkpoint_round_trip(tmp_path):
    source = torchvision.models.resnet50(weights=None)
    with torch.no_grad():  # distinct values so a wrong mapping cannot go unnoticed
        for i, p in enumerate(source.parameters()):
            p.copy_(torch.randn_like(p) * 0.01 + i * 1e-3)
    tv_state = source.state_dict()
    mm_state = {_torchvision_to_mmaction2(k): v for k, v in tv_state.items()
                if not k.startswith("fc.")}
    mm_state["cls_head.fc_cls.weight"] = torch.zeros(400, 2048)
    mm_state["cls_head.fc_cls.bias"] = torch.zeros(400)
    path = tmp_path / "tsn_r50.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": mm_state}, path)

    state, fmt = read_resnet_state_dict(path)
    assert fmt == "mmaction2"
    assert set(state) == {k for k in tv_state if not k.startswith("fc.")}
    for key, value in state.items():
        assert torch.equal(value, tv_state[key]), key

    extractor = TSNVisualExtractor(str(path), precision="fp32", channels_last=False,
                                   preprocess=TSNPreprocess(resize_short=64, crop_size=64))
    assert extractor.settings["weights_format"] == "mmaction2"
    assert extractor.settings["pretrained"] is True
    assert len(extractor.settings["weights_sha256"]) == 16
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    source.fc = torch.nn.Identity()
    expected = source.eval()(preprocess_frames(torch.from_numpy(frames),
                                               TSNPreprocess(64, 64))).detach().numpy()
    assert_close_to_scale(extractor(frames), expected, FP32_DEEP, "mmaction2 vs torchvision")


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = {k: v for k, v in torchvision.models.resnet50(weights=None).state_dict().items()}
    del state["layer2.1.bn2.running_mean"]
    state["layer9.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        TSNVisualExtractor(str(path))
    message = str(err.value)
    assert "layer2.1.bn2.running_mean" in message and "layer9.0.conv1.weight" in message
    assert "missing" in message and "unexpected" in message and str(path) in message


def test_torchvision_state_dict_file_loads(tmp_path):
    model = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50_tv.pth"
    torch.save(model.state_dict(), path)  # includes fc.*, which is ignored
    extractor = TSNVisualExtractor(str(path), precision="fp32",
                                   preprocess=TSNPreprocess(resize_short=64, crop_size=64))
    assert extractor.settings["weights_format"] == "torchvision"
    loaded = extractor.model.state_dict()
    assert torch.equal(loaded["layer1.0.conv1.weight"], model.state_dict()["layer1.0.conv1.weight"])


def test_missing_file_and_offline_imagenet_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        TSNVisualExtractor(str(tmp_path / "nope.pth"))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", offline)
    with pytest.raises(WeightsUnavailableError) as err:
        TSNVisualExtractor("imagenet")
    assert "resnet50-0676ba61.pth" in str(err.value) and "checkpoints" in str(err.value)


def test_bf16_features_match_fp32():
    """bf16 autocast must stay within cosine similarity 0.99 of fp32.

    Random ResNet-50 features are nearly constant across frames, so raw cosine
    similarity would pass even for garbage; the per-frame vectors are compared after
    subtracting the batch mean, which leaves only what distinguishes the frames.
    """
    cfg = TSNPreprocess(resize_short=96, crop_size=96)
    fp32 = TSNVisualExtractor("random", precision="fp32", preprocess=cfg)
    bf16 = TSNVisualExtractor("random", precision="bf16", preprocess=cfg)
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    frames[1] = 128  # a flat frame and a half-dark one give genuinely different features
    frames[2, :48] //= 4
    a, b = fp32(frames), bf16(frames)
    a_c, b_c = a - a.mean(0), b - b.mean(0)
    assert np.linalg.norm(a_c, axis=1).min() > 1e-3 * np.linalg.norm(a, axis=1).max()
    cos = (a_c * b_c).sum(1) / np.linalg.norm(a_c, axis=1) / np.linalg.norm(b_c, axis=1)
    assert cos.min() > 0.99


def test_folded_batchnorm_computes_the_same_features():
    """The BN-folded inference copy equals the network as loaded, with non-trivial BN stats."""
    torch.manual_seed(3)
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    with torch.no_grad():  # random BN statistics and affine terms, so folding has work to do
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    model.eval()
    folded = visual_tsn.fold_batchnorm(model)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert n_bn == 0 and sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 53
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(x.double())  # [2, 2048], rounding ~1e-15
        original, fused = model(x), folded(x)  # float32: outputs up to ~80, rounding ~1e-4
    # folding must cost no more accuracy than float32 itself costs the network as loaded
    # (both ~1e-6 of the output scale); folding with a dropped BN eps lands ~100x further
    rounding = max_error_to_scale(original, exact)
    assert 0 < rounding < FP32_DEEP
    assert max_error_to_scale(fused, exact) <= 5 * rounding
    # the loaded network is untouched: its state dict still has every BN buffer
    assert "layer1.0.bn1.running_var" in model.state_dict()


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_input_memory_format_follows_channels_last(channels_last):
    """channels_last=False must feed truly contiguous NCHW input: preprocessing permutes NHWC
    frames, and channels-last strides would make PyTorch pick channels-last kernels anyway."""
    extractor = TSNVisualExtractor("random", precision="fp32", channels_last=channels_last,
                                   preprocess=TSNPreprocess(resize_short=32, crop_size=32),
                                   backend="torch")  # the torch path's own input layout
    seen = []
    extractor.inference_model.conv1.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].is_contiguous(),
                                          args[0].is_contiguous(memory_format=torch.channels_last))))
    extractor(np.zeros((2, 40, 48, 3), dtype=np.uint8))
    assert seen == [(not channels_last, channels_last)]
