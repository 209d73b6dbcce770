"""ResNet-50 (TSN visual backbone) throughput at 256x256 on this machine, by execution mode.

Measures, in one run on the same frames, frames/s of the 2048-d feature forward pass for:
  fp32            contiguous (NCHW) tensors, plain fp32
  fp32-nhwc-in    contiguous model, input with channels-last strides (what permuting
                  decoded NHWC frames gives): PyTorch then picks channels-last kernels, so
                  this runs at fp32-cl speed. It is why a "plain fp32" loop fed by the
                  extractor's preprocessing measured ~10 frames/s instead of ~6.7
  fp32-cl         channels-last (NHWC) fp32
  bf16-cl         channels-last + bf16 autocast (skipped where the CPU lacks native bf16,
                  unless --force-bf16)
  bf16-cl-fold    the same with batch norm folded into the convolutions: what
                  `rtdl extract` runs on such a CPU
and the cosine similarity of bf16 features to fp32 (per frame, after subtracting the batch
mean, because random-weight ResNet features are nearly constant across frames).
Uses random weights: speed does not depend on the weight values. Preprocessing is excluded
(timed: the model call on already normalised 256x256 input).

    python benchmarks/bench_visual_precision.py [--frames 48] [--batch-size 16] [--threads 2]
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torchvision

from extractors.precision import autocast, cpu_has_native_bf16
from extractors.visual_tsn import fold_batchnorm
from pipeline.machine import describe_machine


def run_mode(model: torch.nn.Module, frames: torch.Tensor, batch_size: int, channels_last: bool,
             precision: str, input_format: torch.memory_format | None = None
             ) -> tuple[float, np.ndarray]:
    """(frames per second, features [N,2048]) for one mode; one warm-up batch first."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt)
    batches = [frames[i:i + batch_size].contiguous(memory_format=input_format or fmt)
               for i in range(0, frames.shape[0], batch_size)]
    with torch.inference_mode(), autocast(precision, "cpu"):
        model(batches[0])  # warm-up: oneDNN picks kernels on the first call
        start = time.perf_counter()
        features = [model(batch).float() for batch in batches]
        elapsed = time.perf_counter() - start
    return frames.shape[0] / elapsed, torch.cat(features).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames timed per mode")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--force-bf16", action="store_true", help="run bf16 without native support")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    model.eval()
    frames = torch.randn(args.frames, 3, 256, 256)
    frames[::2] *= 0.3  # two kinds of frames, so the centred features are not all noise

    print(f"{describe_machine()}, native bf16: {cpu_has_native_bf16()}")
    results = {}
    folded = fold_batchnorm(model)
    modes = [("fp32", model, False, "fp32", None),
             ("fp32-nhwc-in", model, False, "fp32", torch.channels_last),
             ("fp32-cl", model, True, "fp32", None)]
    if cpu_has_native_bf16() or args.force_bf16:
        modes += [("bf16-cl", model, True, "bf16", None), ("bf16-cl-fold", folded, True, "bf16", None)]
    for name, net, channels_last, precision, input_format in modes:
        fps, feats = run_mode(net, frames, args.batch_size, channels_last, precision, input_format)
        results[name] = feats
        print(f"{name:8s} {fps:7.2f} frames/s")
    for name in ("bf16-cl", "bf16-cl-fold"):
        if name not in results:
            continue
        a, b = results["fp32"], results[name]
        a, b = a - a.mean(0), b - b.mean(0)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        print(f"{name} vs fp32 centred cosine similarity: min {cos.min():.5f}, mean {cos.mean():.5f}")


if __name__ == "__main__":
    main()
