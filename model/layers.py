"""Small building blocks shared by the RT-DeepLoc components.

Convention everywhere: tensors are batch-first `[B, T, D]`, masks are bool `[B, T]` with
True = valid frame. Padded frames are zeroed before every temporal convolution so padding
never leaks into valid frames, and nothing here mixes samples of a batch (no BatchNorm),
so a video's losses cannot send gradient into another video.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed sine/cosine position table (Vaswani et al.), `[length, dim]` float32.

    Even channels hold sin, odd channels cos, at geometrically spaced frequencies.
    """
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]  # [T, 1]
    half = (dim + 1) // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32, device=device)
                     * (-math.log(10000.0) / max(half, 1)))  # [half]
    angles = position * freq[None, :]  # [T, half]
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(angles)[:, : (dim + 1) // 2]
    table[:, 1::2] = torch.cos(angles)[:, : dim // 2]
    return table


def masked_conv(conv: nn.Conv1d, x: Tensor, mask: Tensor) -> Tensor:
    """Apply a 'same'-padded Conv1d to `x [B, T, Cin]` with padded frames zeroed first.

    Returns `[B, T, Cout]`; padded output frames are left as they come (callers mask them).
    """
    x = x * mask[..., None].to(x.dtype)  # [B, T, Cin]
    return conv(x.transpose(1, 2)).transpose(1, 2)  # [B, T, Cout]


def check_inputs(visual: Tensor, audio: Tensor, mask: Tensor, visual_dim: int,
                 audio_dim: int) -> None:
    """Raise ValueError naming the argument when shapes or the mask do not fit the model."""
    if visual.dim() != 3 or audio.dim() != 3 or mask.dim() != 2:
        raise ValueError(f"expected visual [B,T,Cv], audio [B,T,Ca], mask [B,T]; got "
                         f"{tuple(visual.shape)}, {tuple(audio.shape)}, {tuple(mask.shape)}")
    if visual.shape[:2] != audio.shape[:2] or visual.shape[:2] != mask.shape:
        raise ValueError(f"visual {tuple(visual.shape)}, audio {tuple(audio.shape)} and mask "
                         f"{tuple(mask.shape)} must share [B, T] (one timeline)")
    if visual.shape[2] != visual_dim:
        raise ValueError(f"visual feature dim {visual.shape[2]} != model visual_dim {visual_dim}")
    if audio.shape[2] != audio_dim:
        raise ValueError(f"audio feature dim {audio.shape[2]} != model audio_dim {audio_dim}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = valid frame), got {mask.dtype}")
    if not bool(mask.any(dim=1).all()):
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"mask: every video needs at least one valid frame; empty rows {empty}")


class KeepsBuffersMissingFromOldCheckpoints(nn.Module):
    """A module whose own buffers keep their initial values when a state dict lacks them.

    For buffers added after checkpoints were already written (input statistics, error
    calibration): an older checkpoint loads with the identity / "not set" state it was
    trained with instead of failing on missing keys. Where the module's own initial value is
    not what older checkpoints were trained with (a new default), `OLD_CHECKPOINT_BUFFERS`
    names the value they get instead.
    """

    OLD_CHECKPOINT_BUFFERS: dict = {}  # buffer name -> value for checkpoints written before it

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name, buffer in self._buffers.items():
            if buffer is not None:
                old = self.OLD_CHECKPOINT_BUFFERS.get(name)
                state_dict.setdefault(prefix + name, buffer.detach().clone() if old is None
                                      else torch.as_tensor(old, dtype=buffer.dtype))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
