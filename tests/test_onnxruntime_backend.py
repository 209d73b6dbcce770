"""ONNX Runtime backend of the TSN extractor: fp32 fidelity to torch fp32, streams and
input order, the channels-last normalising input, the export cache (hit, invalidated by new
weights, another shape or another normalisation), backend resolution, and clear errors when
the optional packages are missing. Small crops and tiny networks keep it cheap; speed is
measured in benchmarks/bench_extract.py (`--compare-visual-backends`), never here."""
import sys

import numpy as np
import pytest
import torch

from extractors.openvino_backend import InputNorm, MissingBackendError
from extractors.precision import resolve_backend
from extractors.visual_tsn import TSNPreprocess, TSNVisualExtractor, calibration_frames
from numerics import FP32_SHALLOW, centred_cosine, max_error_to_scale

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from extractors.onnxruntime_backend import ORTModel  # noqa: E402

CFG = TSNPreprocess(resize_short=64, crop_size=64)


def _tiny_net(seed=0):
    # conv + pool + linear: per-sample, so a batch's split over streams cannot change a row
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(8, 5)).eval()


def test_cli_takes_the_backend_and_reports_a_missing_runtime(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from media import make_clip
    from pipeline.cli import main

    clip = make_clip(tmp_path / "a.mp4", 0.4)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    # fp32 named: on a CPU with native bf16, auto precision would be refused first
    result = CliRunner().invoke(main, ["extract", str(clip), "--out", str(tmp_path / "c.h5"),
                                       "--visual-weights", "random", "--audio-model", "logmel",
                                       "--backend", "onnxruntime", "--precision", "fp32"])
    assert result.exit_code != 0 and "rtdl[onnxruntime]" in result.output, result.output


def test_tsn_on_onnxruntime_matches_torch_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("RTDL_CACHE_DIR", str(tmp_path))
    ref = TSNVisualExtractor("random", precision="fp32", preprocess=CFG, backend="torch")
    ort = TSNVisualExtractor("random", precision="fp32", preprocess=CFG, backend="onnxruntime",
                             batch_size=4)
    assert ort.backend == "onnxruntime" and ort._runtime.streams == torch.get_num_threads()
    assert ort.settings == ref.settings  # the runtime is not part of what the features are
    frames = calibration_frames(7, size=80, seed=100)  # natural photographs ...
    frames[1] = 128  # ... and a flat frame
    a, b = ref(frames), ort(frames)  # 7 frames in sub-batches: dynamic batch
    assert a.shape == b.shape == (7, 2048) and b.dtype == np.float32
    # the same fp32 function, another summation order: rounding-level differences only
    assert max_error_to_scale(torch.from_numpy(b), torch.from_numpy(a)) < 1e-4
    assert centred_cosine(a, b).min() > 0.999
    np.testing.assert_array_equal(ort(frames[:1]), b[:1])  # a single frame
    assert ort(frames[:0]).shape == (0, 2048)


def test_streams_run_uneven_batches_in_order(tmp_path):
    net = _tiny_net()
    one = ORTModel(net, (3, 12, 12), threads=2, streams=1, cache=tmp_path)
    two = ORTModel(net, (3, 12, 12), threads=2, streams=2, cache=tmp_path)
    x = torch.randn(9, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)  # [9,5]
    mapped = two.map(iter([x[:3], x[3:4], x[4:9]]))  # more batches than streams, uneven
    assert mapped.shape == (9, 5)
    assert max_error_to_scale(mapped, expected) < FP32_SHALLOW * 10
    assert max_error_to_scale(two(x[:5]), one(x[:5])) < FP32_SHALLOW * 10
    assert two(x[:1]).shape == (1, 5)
    assert two.map(iter([])).shape == (0,)
    with pytest.raises(ValueError, match="streams 3"):
        ORTModel(net, (3, 12, 12), threads=2, streams=3, cache=tmp_path)


def test_a_failing_batch_source_leaves_the_model_usable(tmp_path):
    net = _tiny_net()
    model = ORTModel(net, (3, 12, 12), threads=2, streams=2, cache=tmp_path)
    x = torch.randn(4, 3, 12, 12)

    def batches():
        yield x[:2]
        raise RuntimeError("decoding broke")

    with pytest.raises(RuntimeError, match="decoding broke"):
        model.map(batches())
    with torch.no_grad():
        assert max_error_to_scale(model(x), net(x)) < FP32_SHALLOW * 10


def test_input_norm_takes_channels_last_raw_input(tmp_path):
    net = _tiny_net()
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)
    model = ORTModel(net, (3, 12, 12), threads=2, input_norm=InputNorm(mean, std), cache=tmp_path)
    raw = torch.rand(3, 12, 12, 3) * 255  # [b,H,W,C]
    normed = (raw - torch.tensor(mean)) / torch.tensor(std)  # by hand, per channel
    with torch.no_grad():
        expected = net(normed.permute(0, 3, 1, 2))
    assert max_error_to_scale(model(raw), expected) < FP32_SHALLOW * 10
    with pytest.raises(ValueError, match="2 means and 2 stds for 3 channels"):
        ORTModel(net, (3, 12, 12), input_norm=InputNorm((1.0, 2.0), (1.0, 2.0)), cache=tmp_path)


def test_export_is_cached_per_weights_shape_and_normalisation(tmp_path):
    net = _tiny_net()
    first = ORTModel(net, (3, 12, 12), cache=tmp_path)
    again = ORTModel(net, (3, 12, 12), cache=tmp_path)
    assert not first.cache_hit and again.cache_hit and first.path == again.path
    assert [p.suffix for p in tmp_path.iterdir()] == [".onnx"]  # no temporary file left
    x = torch.randn(2, 3, 12, 12)
    np.testing.assert_array_equal(first(x).numpy(), again(x).numpy())
    others = [ORTModel(_tiny_net(seed=1), (3, 12, 12), cache=tmp_path),  # other weights
              ORTModel(net, (3, 16, 16), cache=tmp_path),  # another input shape
              ORTModel(net, (3, 12, 12), input_norm=InputNorm((1.0,) * 3, (2.0,) * 3),
                       cache=tmp_path)]  # another normalisation
    assert not any(m.cache_hit for m in others)
    assert len({first.key, *(m.key for m in others)}) == 4
    with pytest.raises(ValueError, match=r"input_shape \(12, 12\)"):
        ORTModel(net, (12, 12), cache=tmp_path)


def test_backend_resolution(monkeypatch):
    assert resolve_backend("onnxruntime", "fp32", "cpu") == "onnxruntime"
    # auto: ONNX Runtime for fp32 on the CPU when installed (measured faster end to end,
    # BENCHMARKS.md), else OpenVINO, else torch; OpenVINO for int8, torch for bf16 and CUDA
    assert resolve_backend("auto", "fp32", "cpu") == "onnxruntime"
    assert resolve_backend("auto", "int8", "cpu") == "openvino"
    assert resolve_backend("auto", "bf16", "cpu") == "torch"
    assert resolve_backend("auto", "fp32", "cuda") == "torch"
    monkeypatch.setattr("extractors.precision.onnxruntime_installed", lambda: False)
    monkeypatch.setattr("extractors.precision.openvino_installed", lambda: True)
    assert resolve_backend("auto", "fp32", "cpu") == "openvino"
    monkeypatch.setattr("extractors.precision.openvino_installed", lambda: False)
    assert resolve_backend("auto", "fp32", "cpu") == "torch"
    with pytest.raises(ValueError, match="onnxruntime runs fp32 only, not bf16"):
        resolve_backend("onnxruntime", "bf16", "cpu")
    with pytest.raises(ValueError, match="onnxruntime runs fp32 only, not int8"):
        resolve_backend("onnxruntime", "int8", "cpu")
    with pytest.raises(ValueError, match="onnxruntime runs on the CPU"):
        resolve_backend("onnxruntime", "fp32", "cuda")


def test_wav2vec_stays_on_torch_with_the_onnxruntime_backend():
    from extractors.build import build_audio_extractor

    audio = build_audio_extractor("random", precision="fp32", random_config="tiny",
                                  backend="onnxruntime")
    assert audio.backend == "torch"


@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
def test_a_missing_package_names_the_option(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # import -> ImportError
    with pytest.raises(MissingBackendError,
                       match=rf"--backend onnxruntime.*\({module} is missing\).*rtdl\[onnxruntime\]"):
        TSNVisualExtractor("random", precision="fp32", preprocess=CFG, backend="onnxruntime")

