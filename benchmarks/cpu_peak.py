"""This CPU's fp32 arithmetic limit: real clock and FMA throughput (compiles cpu_peak.c).

The limit is computed from the clock the cores really run at and their flags:

    limit = cores x FMA units per core x fp32 lanes per FMA x 2 flops per FMA x clock

with 8 lanes for AVX2 (16 for AVX-512) and 2 FMA units per core (every AVX2 core of the
last decade from AMD Zen 2 and Intel Haswell on). The clock comes from a chain of dependent
integer adds (one per cycle), because a VM's /proc/cpuinfo shows the nominal clock, not the
boosted one. The measured FMA throughput with every core busy is printed next to it: a
VM whose cores are hyperthreads of one physical core, or a host that throttles, shows up
as a measured figure well below the formula. The limit used for "% of the limit" is the
larger of the two: no mode should be credited against a ceiling the cores were seen to
exceed (on the AVX2 VM the add chain read 3.17 GHz while the FMA loop ran at the rate of
3.97 GHz: a VM's vCPU can lose cycles to the host during the short clock test).

    python benchmarks/cpu_peak.py          # needs gcc; prints JSON
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_peak.c")


def measure_peak(threads: int | None = None) -> dict | None:
    """{"clock_ghz", "limit_gflops", "formula", "fma_gflops_1_thread", "fma_gflops_all"} or
    None when gcc or AVX2 is missing."""
    from pipeline.machine import cpu_flags

    flags = cpu_flags()
    if shutil.which("gcc") is None or not {"avx2", "fma"} <= flags:
        return None
    threads = threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "cpu_peak"
        subprocess.run(["gcc", "-O2", "-mavx2", "-mfma", "-pthread", str(SOURCE), "-o", str(exe)],
                       check=True, capture_output=True)
        one = json.loads(subprocess.run([str(exe), "1"], check=True, capture_output=True,
                                        text=True).stdout)
        every = json.loads(subprocess.run([str(exe), str(threads)], check=True,
                                          capture_output=True, text=True).stdout)
    lanes = 16 if "avx512f" in flags else 8
    clock = max(one["clock_ghz"], every["clock_ghz"])
    formula = threads * 2 * lanes * 2 * clock
    limit = max(formula, every["fma_gflops"])
    return {"clock_ghz": round(clock, 3), "cores": threads, "fp32_lanes": lanes,
            "formula_gflops": round(formula, 1), "limit_gflops": round(limit, 1),
            "formula": f"{threads} cores x 2 FMA units x {lanes} fp32 lanes x 2 flops x "
                       f"{clock:.2f} GHz = {formula:.0f} GFLOP/s",
            "fma_gflops_1_thread": one["fma_gflops"], "fma_gflops_all": every["fma_gflops"]}


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(json.dumps(measure_peak()))
