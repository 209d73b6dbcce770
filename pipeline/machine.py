"""What machine a number came from: CPU model, the vector flags that change results, threads.

Benchmark figures and seeded training results both depend on the CPU: the same command gave
different speeds and (through different float summation orders) different metrics on an
AVX-512 machine with native bf16 and on an AVX2-only one. Every benchmark script and the
demo print `describe_machine()` so a figure always travels with the machine that made it.
"""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# the flags that pick different kernels (speed) or different precision paths (results)
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                  "amx_tile", "bf16")


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo; ("", {}) where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", frozenset()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features"):  # x86 / aarch64
            flags.update(value.split())
    return model, frozenset(flags)


def cpu_flags() -> frozenset[str]:
    """Every CPU flag /proc/cpuinfo lists (empty where it is unavailable)."""
    return _cpuinfo()[1]


def machine_info() -> dict:
    """CPU model, core count, relevant vector flags, torch version / threads / ISA level."""
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "flags": [flag for flag in RELEVANT_FLAGS if flag in flags],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def describe_machine(info: dict | None = None) -> str:
    """One line for logs and benchmark output, e.g.
    `machine: AMD EPYC (2 cores; avx2 fma; torch 2.9.1, 2 threads, AVX2)`."""
    info = info or machine_info()
    flags = " ".join(info["flags"]) or "no AVX2/AVX-512 flags"
    gpu = f"; GPU {info['cuda']}" if info.get("cuda") else ""
    return (f"machine: {info['cpu']} ({info['cores']} cores; {flags}; torch {info['torch']}, "
            f"{info['torch_threads']} threads, {info['torch_cpu_capability']}{gpu})")
