"""ResNet-50 (TSN) at 256x256 on this CPU, every runtime and precision candidate in one run.

Each mode embeds the same preprocessed frames (crops of natural photographs, not the
int8 calibration crops) in batches of `--batch-size` (64: `rtdl extract`'s chunk) and
reports frames/s, the ratio to the plain fp32 loop, its share of the CPU's fp32
arithmetic limit (10.68 GFLOP a frame, counted by torch's FlopCounterMode; limit from
benchmarks/cpu_peak.py), its cosine similarity to the plain fp32 features (per frame,
raw and centred on the batch mean: random-weight features are nearly constant across
frames, so only the centred one shows errors), and the one-off cost before the first
batch (export, compile, quantise).

Modes:
  torch-fp32-nchw        torchvision ResNet-50, contiguous NCHW: the plain loop
  torch-fp32-cl-fold     batch norm folded, channels-last: `rtdl extract` on torch
  torchscript-freeze     the same traced, torch.jit.freeze + optimize_for_inference (oneDNN fusion)
  torch-compile          the same through torch.compile (inductor, CPU); compile time shown.
                         Inductor caches compiled graphs on disk, so a second process pays less
  onnxruntime-fp32       exported with torch.onnx (TorchScript exporter), CPU execution provider
  openvino-fp32          extractors/openvino_backend.py as `rtdl extract` runs it (dynamic
                         batch; its export is cached: prep shows the first and the cached cost)
  openvino-int8          the same quantised by NNCF on 64 calibration photographs
  onnxruntime-int8       onnxruntime.quantization.quantize_static (QDQ, per-channel weights)
                         on the same calibration frames
  torch-fx-int8          torch.ao FX post-training quantisation, x86 engine (fbgemm), same
                         calibration frames
The backbone has random weights (timing does not depend on them); int8 fidelity on
random weights is a proxy for pretrained ones, and is measured again per release.

    python benchmarks/bench_visual_backends.py [--frames 128] [--modes a,b] [--json out]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from extractors.visual_tsn import TSNPreprocess, calibration_frames, fold_batchnorm, \
    preprocess_frames  # noqa: E402
from extractors.openvino_backend import MissingBackendError  # noqa: E402
from pipeline.machine import describe_machine, machine_info  # noqa: E402

GFLOP_PER_FRAME = 10.68  # ResNet-50 without fc at 256x256, 2 flops per multiply-add
MODES = ("torch-fp32-nchw", "torch-fp32-cl-fold", "torchscript-freeze", "torch-compile",
         "onnxruntime-fp32", "openvino-fp32", "openvino-int8", "onnxruntime-int8", "torch-fx-int8")


def frames_for(n: int, seed: int, cfg: TSNPreprocess) -> torch.Tensor:
    return preprocess_frames(torch.from_numpy(calibration_frames(n, size=320, seed=seed)), cfg)


def run(fn, batches) -> tuple[float, np.ndarray]:
    fn(batches[0])  # warm-up: kernels are picked / memory allocated on the first call
    start = time.perf_counter()
    out = [np.asarray(fn(b), dtype=np.float32) for b in batches]
    return sum(len(b) for b in batches) / (time.perf_counter() - start), np.concatenate(out)


def cosines(ref: np.ndarray, f: np.ndarray) -> dict:
    raw = (ref * f).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(f, axis=1)
    a, b = ref - ref.mean(0), f - f.mean(0)
    centred = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {"cos_raw_min": float(raw.min()), "cos_centred_min": float(centred.min()),
            "cos_centred_mean": float(centred.mean())}


def prepare(mode: str, model, folded, example: torch.Tensor, calib: list[torch.Tensor], work: Path):
    """(callable on a float32 batch -> features, memory format of its input, extra info)."""
    cl = torch.channels_last
    if mode == "torch-fp32-nchw":
        return (lambda b: model(b)), torch.contiguous_format, {}
    if mode == "torch-fp32-cl-fold":
        m = copy.deepcopy(folded).to(memory_format=cl)
        return (lambda b: m(b)), cl, {}
    if mode == "torchscript-freeze":
        m = copy.deepcopy(folded).to(memory_format=cl)
        traced = torch.jit.trace(m, example.contiguous(memory_format=cl))
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        return frozen, cl, {}
    if mode == "torch-compile":
        m = torch.compile(copy.deepcopy(folded).to(memory_format=cl), dynamic=False)
        m(example.contiguous(memory_format=cl))  # compiles here, timed as preparation
        return m, cl, {"note": "inductor, dynamic=False; compile time includes the first call"}
    if mode.startswith("openvino"):
        from extractors.openvino_backend import OpenVINOModel

        precision = mode.split("-")[1]
        kwargs = {}
        if precision == "int8":
            kwargs = {"calibration": lambda: calib, "calibration_id": "bench"}
        cache = work / "ov-cache"
        OpenVINOModel(folded, (3, 256, 256), precision=precision, cache=cache, **kwargs)
        started = time.perf_counter()
        m = OpenVINOModel(folded, (3, 256, 256), precision=precision, cache=cache, **kwargs)
        return m, torch.contiguous_format, {"prep_cached_s": round(time.perf_counter() - started, 2)}
    if mode.startswith("onnxruntime"):
        import onnxruntime as ort

        path = work / f"{mode}.onnx"
        torch.onnx.export(copy.deepcopy(folded), (example,), str(path), input_names=["x"],
                          output_names=["y"], dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        if mode.endswith("int8"):
            from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, \
                quantize_static
            from onnxruntime.quantization.shape_inference import quant_pre_process

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.items = iter([{"x": b.numpy()} for b in calib])

                def get_next(self):
                    return next(self.items, None)

            pre, out = work / "pre.onnx", work / "int8.onnx"
            quant_pre_process(str(path), str(pre))
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
            path = out
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return (lambda b: session.run(None, {"x": b.numpy()})[0]), torch.contiguous_format, {}
    if mode == "torch-fx-int8":
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        import warnings

        warnings.filterwarnings("ignore", message=".*torchao.*")  # its deprecation notice
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.backends.quantized.engine = "x86"
        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (example,))
        for b in calib:
            prepared(b)
        return convert_fx(prepared), torch.contiguous_format, {}
    raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-peak", action="store_true", help="skip the clock / FMA measurement")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = TSNPreprocess()
    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    folded = fold_batchnorm(model)
    x = frames_for(args.frames, seed=7, cfg=cfg)  # [N,3,256,256]
    calib = list(frames_for(64, seed=0, cfg=cfg).split(16))  # what openvino-int8 calibrates on
    work = Path(tempfile.mkdtemp(prefix="rtdl-bench-backends-"))

    peak = None
    if not args.no_peak:
        from cpu_peak import measure_peak

        peak = measure_peak()
    results = {"machine": machine_info(), "load_average_at_start": os.getloadavg(),
               "frames": args.frames, "batch_size": args.batch_size, "peak": peak,
               "weights": "random (timing only)", "modes": {}}
    print(describe_machine(), flush=True)
    if peak:
        print(f"fp32 arithmetic limit {peak['limit_gflops']:.0f} GFLOP/s: the larger of "
              f"{peak['formula']} and the measured FMA throughput, "
              f"{peak['fma_gflops_all']:.0f} GFLOP/s on {peak['cores']} threads "
              f"({peak['fma_gflops_1_thread']:.0f} on 1)", flush=True)
    ref = None
    with torch.inference_mode():
        for mode in args.modes.split(","):
            started = time.perf_counter()
            try:
                fn, fmt, info = prepare(mode, model, folded, x[:args.batch_size], calib, work)
            except (ImportError, MissingBackendError) as err:  # a runtime not installed
                print(f"{mode:<20} skipped ({err})", flush=True)
                continue
            prep = time.perf_counter() - started
            batches = [x[i:i + args.batch_size].contiguous(memory_format=fmt)
                       for i in range(0, len(x), args.batch_size)]
            fps, feats = run(fn, batches)
            if ref is None:
                ref = feats  # the first mode (plain fp32 by default) is the reference
                base = fps
            row = {"frames_per_s": round(fps, 2), "vs_first": round(fps / base, 2),
                   "gflops": round(fps * GFLOP_PER_FRAME, 1),
                   "prep_s": round(prep, 1), **info, **cosines(ref, feats)}
            if peak:
                row["share_of_limit"] = round(row["gflops"] / peak["limit_gflops"], 3)
            results["modes"][mode] = row
            share = f"{row['share_of_limit']:6.1%}" if peak else ""
            print(f"{mode:<20}{fps:7.2f} frames/s {row['vs_first']:5.2f}x {share}  cos centred "
                  f"min {row['cos_centred_min']:.5f} mean {row['cos_centred_mean']:.5f}  raw min "
                  f"{row['cos_raw_min']:.6f}  prep {prep:.1f} s {info.get('prep_cached_s', '')}",
                  flush=True)
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
