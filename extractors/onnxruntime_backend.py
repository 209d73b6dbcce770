"""Run the TSN network through ONNX Runtime on the CPU, exported from the torch module that
holds its actual weights, with the exported model cached on disk. The interface is
`extractors/openvino_backend.py`'s `OpenVINOModel` (`streams`, `map`, `__call__`), so the
TSN extractor runs either runtime through the same code (`TSNVisualExtractor`).

Why ONNX Runtime: on a 2-core AVX2 CPU it ran full extraction faster than OpenVINO in the
total of each of several paired runs (a few per cent, BENCHMARKS.md, "ONNX Runtime for the
TSN inside full extraction"), so `--backend auto` picks it for fp32 on CPUs without native
bf16 when it is installed (`pip install 'rtdl[onnxruntime]'`), and OpenVINO otherwise.

Choices:
- Export with torch's TorchScript-based exporter (`torch.onnx.export(dynamo=False)`, opset
  17, which needs the `onnx` package) from the live module, never a downloaded file, so a
  user's own weights carry over. The `.onnx` file is written to `cache_dir()` (default
  `~/.cache/rtdl/onnxruntime`, `RTDL_CACHE_DIR` moves it) under a key of: a sha256 of every
  weight tensor (`openvino_backend.weights_digest`), the input shape, the input
  normalisation, `variant`, the torch and ONNX Runtime versions and `EXPORT_VERSION`.
  Written under a temporary name and renamed, so a crash leaves no half file.
- fp32 only: ONNX Runtime's CPU provider has no bf16 convolutions worth having on the CPUs
  this backend is for (no native bf16), and `--precision int8` lives on OpenVINO.
- The batch dimension is dynamic (a clip's last chunk is shorter than the others).
- `input_norm` (`openvino_backend.InputNorm`): the exported graph takes channels-last
  0..255 frames [b, H, W, C] and normalises and transposes them itself, as the OpenVINO
  path does, so torch only resizes.
- Graph optimisation level ALL (constant folding, conv + add + relu fusion, NCHWc layouts).
- Threads and streams as in `OpenVINOModel`: `threads` in all (default torch's), split
  over `streams` concurrent runs of one session (each run's own `threads // streams`
  intra-op threads; ONNX Runtime's `run` is thread-safe and releases the GIL). By default
  one stream per thread; `streams=1` is one run at a time on every thread. Either way `map`
  prepares the next batch on the caller's thread while the runs go on.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from extractors.openvino_backend import InputNorm, MissingBackendError, export_cache_root, weights_digest

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the export recipe changes: old cache entries stop matching
OPSET = 17


def require_onnxruntime(option: str = "--backend onnxruntime"):
    """The `onnxruntime` module (and `onnx`, which the export needs), or an error naming the
    option that needed them and the fix."""
    try:
        import onnx  # noqa: F401 - torch's exporter imports it; fail here with a clear message
        import onnxruntime
    except ImportError as err:
        raise MissingBackendError(
            f"{option} needs ONNX Runtime and the onnx package, which are not installed "
            f"({err.name} is missing): pip install 'rtdl[onnxruntime]' (or pip install "
            "onnxruntime onnx), or choose --backend openvino or torch") from err
    return onnxruntime


def cache_dir() -> Path:
    return export_cache_root() / "onnxruntime"


def export_key(module: torch.nn.Module, input_shape: Sequence[int], input_norm: InputNorm | None,
               variant: str | None = None) -> str:
    import onnxruntime

    norm = "-" if input_norm is None else f"nhwc:{input_norm.mean}:{input_norm.std}"
    parts = [f"v{EXPORT_VERSION}", weights_digest(module),
             "x".join(str(int(s)) for s in input_shape), "fp32", norm, variant or "-",
             f"torch={torch.__version__}", f"ort={onnxruntime.__version__}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class _NormalisedChannelsLast(torch.nn.Module):
    """`net` behind a channels-last 0..255 input: [b, H, W, C] -> (x - mean) / std -> [b, C, H, W]."""

    def __init__(self, net: torch.nn.Module, norm: InputNorm):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.permute(0, 3, 1, 2) - self.mean) * self.inv_std)


class ORTModel:
    """A torch module run by ONNX Runtime: float32 tensors [b, *input_shape] -> float32 [b, ...].

    input_shape: one sample's shape [C, H, W] (the batch is dynamic); with `input_norm` the
    inputs are channels-last [b, H, W, C] in the units `input_norm` is given in.
    variant: what `module` computes beyond its weights, in the cache key.
    threads: CPU threads in all (default torch's); streams: runs in parallel, each on
    threads // streams threads (default one per thread).
    """

    precision = "fp32"

    def __init__(self, module: torch.nn.Module, input_shape: Sequence[int], *,
                 threads: int | None = None, streams: int | None = None,
                 input_norm: InputNorm | None = None, cache: Path | str | None = None,
                 variant: str | None = None):
        ort = require_onnxruntime()
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"ONNX Runtime input_shape {self.input_shape}: expected [C, H, W] "
                             "with every size >= 1")
        threads = int(threads or torch.get_num_threads())
        self.streams = int(streams or threads)
        if not 1 <= self.streams <= threads:
            raise ValueError(f"ONNX Runtime streams {self.streams}: expected 1..threads ({threads})")
        folder = Path(cache) if cache is not None else cache_dir()
        self.key = export_key(module, self.input_shape, input_norm, variant)
        self.path = folder / f"{self.key}.onnx"
        started = time.perf_counter()
        self.cache_hit = self.path.is_file()
        if not self.cache_hit:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{self.key}.tmp{os.getpid()}.onnx"
            self._export(module, input_norm, tmp)
            tmp.replace(self.path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = max(1, threads // self.streams)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.path), options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._pool = ThreadPoolExecutor(max_workers=self.streams, thread_name_prefix="rtdl-ort")
        self.prepare_seconds = time.perf_counter() - started
        log.info("ONNX Runtime fp32 model %s (%s, %d stream(s), %.1f s)", self.path.name,
                 "cached export" if self.cache_hit else "exported now", self.streams,
                 self.prepare_seconds)

    def _export(self, module: torch.nn.Module, input_norm: InputNorm | None, path: Path) -> None:
        import warnings

        c, h, w = self.input_shape
        net = module.eval()
        example = torch.zeros(1, c, h, w)
        if input_norm is not None:
            if len(input_norm.mean) != c or len(input_norm.std) != c:
                raise ValueError(f"input_norm has {len(input_norm.mean)} means and "
                                 f"{len(input_norm.std)} stds for {c} channels")
            net = _NormalisedChannelsLast(net, input_norm).eval()
            example = torch.zeros(1, h, w, c)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice for dynamo=False
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["y"],
                              dynamo=False, opset_version=OPSET,
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: array})[0]

    def map(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """float32 batches [b_i, *input_shape] ([b_i, H, W, C] with `input_norm`) -> float32
        [sum b_i, ...] (CPU), in input order.

        Up to `streams` batches run at once; the next batch is taken from `batches` (a
        generator may compute it now) while they run. Returns [0] for no batches.
        """
        slots = threading.Semaphore(self.streams)  # at most `streams` batches wait in memory
        futures: list[Future] = []
        try:
            for batch in batches:
                array = np.ascontiguousarray(batch.detach().float().cpu().numpy())
                slots.acquire()
                future = self._pool.submit(self._run, array)
                future.add_done_callback(lambda _: slots.release())
                futures.append(future)
        finally:
            for future in futures:  # also when `batches` raised: no run may outlive the call
                future.exception()
        if not futures:
            return torch.zeros(0)
        return torch.from_numpy(np.concatenate([f.result() for f in futures]))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [b, *input_shape] ([b, H, W, C] with `input_norm`) -> float32 [b, ...],
        split over the streams."""
        step = max(1, -(-x.shape[0] // self.streams))
        return self.map(x.split(step))
