"""One rule for turning `--device` into a torch device, shared by every command.

`auto` means CUDA when available, else the CPU. A bare `cuda` means this process's GPU:
`cuda:LOCAL_RANK` under torchrun (or the `local_rank` given), `cuda:0` otherwise. Asking
for CUDA where there is none is a user error, said plainly, never a silent CPU fallback.
"""
from __future__ import annotations

import os

import torch


def resolve_device(name: str | torch.device, local_rank: int | None = None) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if name == "cuda":
        rank = local_rank if local_rank is not None else int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", rank)
    return torch.device(name)
