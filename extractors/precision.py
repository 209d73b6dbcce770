"""Numeric precision and runtime for backbone inference.

Precision: `auto`, `fp32`, `bf16`, `fp16`, `int8`. Backend: `auto`, `torch`, `openvino`,
`onnxruntime` (the TSN only, fp32 on the CPU: `extractors/onnxruntime_backend.py`).

`auto` picks bf16 autocast where the hardware runs it natively and fp32 elsewhere:
- CUDA: bf16 when the GPU supports it, else fp16.
- CPU: bf16 only with native bf16 instructions (x86 AVX512-BF16 or AMX-BF16, aarch64
  `bf16`). On other CPUs bf16 is emulated and slower than fp32.

`torch.backends.cpu.get_cpu_capability()` only reports the vector ISA level ("AVX512"),
not the bf16 extension (on this project's 2-core machine it says "AVX512" although
/proc/cpuinfo lists `avx512_bf16`), so the CPU flags are read from /proc/cpuinfo.

`int8` (opt-in, never chosen by `auto`) is post-training quantisation of the visual
backbone and runs on the OpenVINO backend only (`extractors/openvino_backend.py`); the
audio backbone then runs as `auto` would run it (wav2vec 2.0 is ~5 % of the compute).

Backend `auto`: torch on CUDA and wherever the resolved precision is bf16/fp16 (the
AVX512-BF16 path measured in BENCHMARKS.md stays as it was); for fp32 on the CPU ONNX
Runtime when installed (`pip install 'rtdl[onnxruntime]'`: full extraction measured faster
with it than with OpenVINO in paired runs on an AVX2-only CPU, BENCHMARKS.md), else OpenVINO
(faster than every torch mode there, `benchmarks/bench_visual_backends.py`), else torch;
OpenVINO for int8. (`auto` is the TSN's choice; wav2vec 2.0 keeps torch under `auto`.)

Precision is an execution choice, not part of what a feature *is*: the extractors do not
write it into their `.settings` (the cache identity), so shards extracted on a GPU in bf16
and on a CPU in fp32 stay mixable; the cosine-similarity check in the tests bounds the
difference (>= 0.99).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises native bf16 arithmetic (AVX512-BF16, AMX-BF16, arm bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """Turn `auto` into a concrete precision for `device`; validate the others."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {list(PRECISIONS)}")
    device = torch.device(device)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def onnxruntime_installed() -> bool:
    """ONNX Runtime and the onnx package (torch's exporter needs it) are both importable."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_backend(backend: str, precision: str, device: torch.device | str) -> str:
    """Turn `auto` into `torch`, `openvino` or `onnxruntime` for a *resolved* precision on
    `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {list(BACKENDS)}")
    device = torch.device(device)
    if backend in ("openvino", "onnxruntime") and device.type != "cpu":
        raise ValueError(f"--backend {backend} runs on the CPU, not on {device}")
    if backend == "onnxruntime" and precision != "fp32":
        raise ValueError(f"--backend onnxruntime runs fp32 only, not {precision}: use "
                         "--precision fp32 (or auto on a CPU without native bf16), or "
                         "--backend openvino for int8")
    if backend == "auto":
        if device.type != "cpu":
            backend = "torch"
        elif precision == "int8":
            backend = "openvino"  # an explicit int8 request; a missing package is then an error
        elif precision != "fp32":
            backend = "torch"
        elif onnxruntime_installed():
            backend = "onnxruntime"
        else:
            backend = "openvino" if openvino_installed() else "torch"
    if backend == "torch" and precision == "int8":
        raise ValueError("--precision int8 runs on the OpenVINO backend on the CPU: use "
                         "--backend openvino (or auto) and --device cpu")
    return backend


def store_weights_for_autocast(model: torch.nn.Module, precision: str,
                               device: torch.device | str) -> torch.nn.Module:
    """On the CPU, keep Linear/Conv weights in the autocast dtype instead of casting per call.

    Autocast casts every Linear/Conv weight from fp32 to bf16 on each forward pass and
    forgets the copy when the autocast block ends, i.e. after each extractor call. Storing
    these weights in bf16 once gives the same numbers (autocast would round them the same
    way; norms and other fp32-list ops keep fp32 parameters) without the copies: for
    wav2vec 2.0 base on 2 busy cores the per-call casts were ~35% of a 4 s clip's time
    (239 `copy_` calls), and the fp32 weights no longer need a bf16 twin in memory.
    Parametrized modules (wav2vec 2.0's weight-normed positional conv) are left alone: their
    weight is computed in fp32 at each call. CUDA keeps plain autocast. In place; returns it.
    """
    if precision not in _DTYPES or torch.device(device).type != "cpu":
        return model
    from torch.nn.utils import parametrize

    dtype = _DTYPES[precision]
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)) \
                and not parametrize.is_parametrized(module):
            module.to(dtype)
    return model


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Autocast context for a resolved precision (`fp32` gives a no-op context)."""
    if precision not in _DTYPES:  # fp32, and int8 (which runs outside torch)
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision])
