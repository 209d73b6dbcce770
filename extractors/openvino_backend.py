"""Run a backbone through OpenVINO on the CPU, exported from the torch module that holds its
actual weights, with the exported model cached on disk. Used by the TSN (ResNet-50: for int8,
and for fp32 where ONNX Runtime, `extractors/onnxruntime_backend.py`, is not installed) and
by wav2vec 2.0 (`extractors/audio_wav2vec.py`).

Why OpenVINO: on CPUs without native bf16 (AVX2-only laptops and most cloud VMs), torch's
eager ResNet-50 reaches about half of what the cores can do; OpenVINO's CPU plugin fuses
the whole graph and ran it measurably faster in fp32 (`benchmarks/bench_visual_backends.py`
compares torch eager, TorchScript freezing, torch.compile, ONNX Runtime and OpenVINO in one
run). It is also the only candidate whose int8 path (NNCF post-training quantisation) was
both faster and faithful on that CPU, so `--precision int8` lives here.

Choices:
- Export from the live torch module (`ov.convert_model`), never from a downloaded IR, so a
  user's own TSN (mmaction2 / torchvision) weights carry over. The exported IR is written
  to `cache_dir()` (default `~/.cache/rtdl/openvino`, `RTDL_CACHE_DIR` moves it) under a key
  of: a sha256 of every weight tensor (names, shapes, dtypes, bytes), the input shape, the
  precision, the calibration set's id (int8), what the module computes beyond its weights
  (`variant`, e.g. which wav2vec 2.0 layer it returns), the OpenVINO version and
  `EXPORT_VERSION`.
  Changed weights give a new key, so a stale export is never used; the conversion (and for
  int8 the calibration) costs tens of seconds once, a cached load about a second.
  Files are written under a temporary name and renamed, so a crash leaves no half model.
- The batch dimension is dynamic: a clip's last chunk is shorter than the others, and
  padding a 25-frame clip to a 64-frame batch would more than double its cost. Other
  dimensions given as -1 are dynamic too (wav2vec 2.0's wave length: a clip shorter than
  one window is one pass over its own length, and padding it would change the features),
  traced at `example_shape`.
- Precision: `fp32` forces `INFERENCE_PRECISION_HINT=f32` (OpenVINO would otherwise pick
  bf16 on AVX512-BF16 CPUs behind the caller's back); `bf16` asks for bf16; `int8` runs the
  NNCF-quantised model (int8 weights per channel, int8 activations calibrated on
  `calibration` inputs). NNCF is an optional extra (`pip install 'rtdl[int8]'`).
- Threads: as many as torch uses (`torch.get_num_threads()`), so `OMP_NUM_THREADS` and the
  tests' thread settings hold for both runtimes.
- Streams: by default one inference stream per thread (throughput hint), each stream a
  one-thread request of its own, and `map` keeps every stream busy with sub-batches while
  the caller prepares the next one. A stream has no barrier to wait at, so it loses
  nothing when the preprocessing or the decoding thread takes its core for a moment, where
  the latency hint's threads, synchronised after every layer, wait for the slowest
  (BENCHMARKS.md, "Extraction on an AVX2-only CPU"). `streams=1` is the latency hint: one
  request using every thread. Results do not depend on the streams (same f32 kernels per
  sample); a batch smaller than the number of streams leaves cores idle.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the export recipe changes: old cache entries stop matching
OV_PRECISIONS = ("fp32", "bf16", "int8")


class MissingBackendError(RuntimeError):
    """An optional runtime package is not installed; the message names the option and the fix."""


def require_openvino(option: str = "--backend openvino"):
    """The `openvino` module, or an error naming the option that needed it."""
    try:
        import openvino
    except ImportError as err:
        raise MissingBackendError(
            f"{option} needs the OpenVINO runtime, which is not installed: "
            "pip install 'rtdl[openvino]' (or pip install openvino), or choose "
            "--backend torch") from err
    return openvino


def require_nncf(option: str = "--precision int8"):
    try:
        import nncf
    except ImportError as err:
        raise MissingBackendError(
            f"{option} needs NNCF for post-training quantisation, which is not installed: "
            "pip install 'rtdl[int8]' (or pip install nncf), or choose another --precision") from err
    return nncf


def export_cache_root() -> Path:
    """Where the CPU runtimes' exports live, one sub-folder per runtime (`RTDL_CACHE_DIR`
    moves it; default ~/.cache/rtdl)."""
    return Path(os.environ.get("RTDL_CACHE_DIR") or Path.home() / ".cache" / "rtdl")


def cache_dir() -> Path:
    return export_cache_root() / "openvino"


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes) of `module`."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # bytes via a uint8 view: works for every dtype, bf16 included, without a copy
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_key(module: torch.nn.Module, input_shape: Sequence[int], precision: str,
               calibration_id: str | None, variant: str | None = None) -> str:
    import openvino

    parts = [f"v{EXPORT_VERSION}", weights_digest(module),
             "x".join(str(int(s)) for s in input_shape), precision, calibration_id or "-",
             openvino.get_version()]
    if variant:  # only when given: the TSN's keys (no variant) stay what they were
        parts.append(f"variant={variant}")
    text = "|".join(parts)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class InputNorm:
    """Per-channel (x - mean) / std that OpenVINO applies to channels-last input [b, H, W, C]
    before a network that takes [b, C, H, W]. Compiled into the network's first input
    reorder, it replaces two passes over the frames and a layout copy in torch; the export
    (and its cache key) stay those of the network alone."""

    mean: tuple[float, ...]  # per channel, in the units of the input
    std: tuple[float, ...]  # per channel, in the units of the input


class OpenVINOModel:
    """A torch module compiled by OpenVINO: float32 tensors [b, *input_shape] -> float32 [b, ...].

    input_shape: the shape of one sample (e.g. (3, 256, 256)); the batch is dynamic, and so is
    every dimension given as -1, traced at `example_shape` (the sample shape of the tracing
    input; needed when input_shape has a -1).
    variant: what `module` computes beyond its weights (a wrapper's choice of output), in the key.
    input_norm: optional; then inputs are channels-last [b, H, W, C], normalised by OpenVINO.
    calibration: for int8, a callable returning a list of float32 input batches [k, *input_shape]
    (called only when no cached export exists), and its `calibration_id` names it in the key.
    threads: CPU threads in all (default torch's); streams: requests run in parallel, each on
    threads // streams threads (default: one per thread; 1: the latency hint).
    """

    def __init__(self, module: torch.nn.Module, input_shape: Sequence[int], *,
                 precision: str = "fp32", calibration: Callable[[], list[torch.Tensor]] | None = None,
                 calibration_id: str | None = None, threads: int | None = None,
                 streams: int | None = None, input_norm: InputNorm | None = None,
                 cache: Path | str | None = None, example_shape: Sequence[int] | None = None,
                 variant: str | None = None):
        if precision not in OV_PRECISIONS:
            raise ValueError(f"OpenVINO precision {precision!r}: expected one of {list(OV_PRECISIONS)}")
        ov = require_openvino()
        if precision == "int8":
            if calibration is None or not calibration_id:
                raise ValueError("int8 needs calibration inputs and a calibration_id")
            require_nncf()
        self.precision = precision
        self.input_shape = tuple(int(s) for s in input_shape)
        self.example_shape = tuple(int(s) for s in (example_shape or self.input_shape))
        if len(self.example_shape) != len(self.input_shape) or any(
                s < 1 or (d != -1 and d != s) for d, s in zip(self.input_shape, self.example_shape)):
            raise ValueError(f"example_shape {self.example_shape} does not fit input_shape "
                             f"{self.input_shape} (-1 marks a dynamic dimension)")
        folder = Path(cache) if cache is not None else cache_dir()
        self.key = export_key(module, self.input_shape, precision, calibration_id, variant)
        self.path = folder / f"{self.key}.xml"
        started = time.perf_counter()
        core = ov.Core()
        if self.path.is_file():
            model = core.read_model(str(self.path))
            self.cache_hit = True
        else:
            model = self._export(ov, module, calibration)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{self.key}.tmp{os.getpid()}.xml"
            ov.save_model(model, str(tmp), compress_to_fp16=False)  # fp32 weights stay fp32
            tmp.with_suffix(".bin").replace(self.path.with_suffix(".bin"))
            tmp.replace(self.path)  # the .xml last: its presence marks a complete entry
            self.cache_hit = False
        if input_norm is not None:
            model = _with_input_norm(ov, model, input_norm)
        threads = int(threads or torch.get_num_threads())
        self.streams = int(streams or threads)
        if not 1 <= self.streams <= threads:
            raise ValueError(f"OpenVINO streams {self.streams}: expected 1..threads ({threads})")
        config = {"INFERENCE_NUM_THREADS": threads,
                  "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if self.streams == 1:
            config["PERFORMANCE_HINT"] = "LATENCY"
        else:
            config |= {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams}
        self._compiled = core.compile_model(model, "CPU", config)
        self._queue = ov.AsyncInferQueue(self._compiled, self.streams)
        self.prepare_seconds = time.perf_counter() - started
        log.info("OpenVINO %s model %s (%s, %.1f s)", precision, self.path.name,
                 "cached export" if self.cache_hit else "exported now", self.prepare_seconds)

    def _export(self, ov, module: torch.nn.Module, calibration):
        import warnings

        example = torch.zeros(1, *self.example_shape)
        with torch.no_grad(), warnings.catch_warnings():
            # tracing warns about every Python-level branch on a tensor (transformers has a
            # few, all shape checks that hold for every length); the tests compare lengths
            # other than the traced one against torch, so the warnings only bury the log
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            model = ov.convert_model(module.eval(), example_input=example,
                                     input=[ov.PartialShape([-1, *self.input_shape])])
        if self.precision == "int8":
            nncf = require_nncf()
            batches = [np.ascontiguousarray(b.float().numpy()) for b in calibration()]
            subset = sum(len(b) for b in batches)
            # per-sample items: NNCF's subset_size counts dataset items
            items = [b[i:i + 1] for b in batches for i in range(len(b))]
            model = nncf.quantize(model, nncf.Dataset(items), subset_size=subset,
                                  preset=nncf.QuantizationPreset.PERFORMANCE)
        return model

    def map(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """float32 batches [b_i, *input_shape] ([b_i, H, W, C] with `input_norm`) -> float32
        [sum b_i, ...] (CPU), in input order.

        Up to `streams` batches run at once; the next batch is taken from `batches` (a
        generator may compute it now) while they run. Returns [0] for no batches.
        """
        results: dict[int, np.ndarray] = {}
        in_flight: dict[int, np.ndarray] = {}  # inputs are shared, not copied: keep them alive

        def finished(request, index: int) -> None:
            # the request's output buffer is reused by its next batch: copy it out
            results[index] = np.array(request.get_output_tensor(0).data, copy=True)
            in_flight.pop(index, None)

        self._queue.set_callback(finished)
        count = 0
        try:
            for count, batch in enumerate(batches, start=1):
                array = np.ascontiguousarray(batch.detach().float().cpu().numpy())
                in_flight[count - 1] = array
                # blocks until a request is free, so at most `streams` batches wait in memory
                self._queue.start_async({0: array}, userdata=count - 1, share_inputs=True)
        finally:
            self._queue.wait_all()  # also when `batches` raised: no request may outlive its input
        if len(results) != count:
            raise RuntimeError(f"OpenVINO returned {len(results)} of {count} batches")
        if not count:
            return torch.zeros(0)
        return torch.from_numpy(np.concatenate([results[i] for i in range(count)]))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [b, *input_shape] ([b, H, W, C] with `input_norm`; any memory layout) ->
        float32 tensor [b, ...] (CPU), split over the streams."""
        step = max(1, -(-x.shape[0] // self.streams))  # ceil: every stream gets a share
        return self.map(x.split(step))


def _with_input_norm(ov, model, norm: InputNorm):
    """`model` [b, C, H, W] behind a channels-last input [b, H, W, C] and (x - mean) / std."""
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(model)
    steps.input().tensor().set_layout(ov.Layout("NHWC"))
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().mean(list(norm.mean)).scale(list(norm.std))
    return steps.build()
