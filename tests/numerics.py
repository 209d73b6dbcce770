"""Float comparisons whose tolerance follows the arithmetic, so tests hold on any x86 CPU
(AVX2 or AVX-512 kernels) and any thread count, which change the order of float sums.

An absolute tolerance such as `atol=1e-5` means nothing for values of magnitude 25: float32
keeps about 7 significant digits, so rounding alone moves such values by ~1e-6 per operation,
and a deep network accumulates it. The bound here is relative to the largest magnitude of the
expected values (their scale), which is what rounding errors are proportional to.
"""
from __future__ import annotations

import numpy as np

# float32 rounding through a ResNet-50 / a small transformer, measured at ~2e-6 of the output
# scale on an AVX2 CPU with 1 and 2 threads; 10x room for other kernels and summation orders,
# still far below what a wrong computation (a missed normalisation, a wrong mask) produces
FP32_DEEP = 2e-5
# one or two float32 matrix products / reductions: a few units of the last place
FP32_SHALLOW = 1e-6


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def max_error_to_scale(actual, expected) -> float:
    """max |actual - expected| / max |expected| (0 when both are all zero)."""
    actual, expected = _numpy(actual), _numpy(expected)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    scale = np.abs(expected).max() if expected.size else 0.0
    error = np.abs(actual - expected).max() if expected.size else 0.0
    return float(error / scale) if scale > 0 else float(error)


def assert_close_to_scale(actual, expected, rel: float, what: str = "values") -> None:
    """Every element within `rel` x max |expected| of its expected value."""
    assert np.isfinite(_numpy(actual)).all(), f"{what}: non-finite values"
    ratio = max_error_to_scale(actual, expected)
    assert ratio <= rel, f"{what}: max error is {ratio:.3g} of the values' scale, bound {rel:g}"


def centred_cosine(a, b) -> np.ndarray:
    """Per-row cosine of [N, D] features after removing each set's mean row: random-weight
    features barely vary between frames, so the raw cosine would hide real errors."""
    a, b = _numpy(a), _numpy(b)
    a_c, b_c = a - a.mean(0), b - b.mean(0)
    return (a_c * b_c).sum(1) / np.linalg.norm(a_c, axis=1) / np.linalg.norm(b_c, axis=1)
