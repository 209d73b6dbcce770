"""Multi-task Learning Reinforcement, MTLR (paper Sec. 3.4): classification heads and L_KL.

Seven heads, each a frame classifier whose frame logits are pooled by Top-K MIL
(`model/mil.py`) into video logits. The paper's Figure 2 (which shows each head's input) is
not available, so the choice made here is:

| head                 | input (per frame)            | output | target from the 4-class label |
| -------------------- | ---------------------------- | ------ | ----------------------------- |
| main (fused)         | F_m = [F_v, F_a, E_v, E_a]   | 4-way  | the label itself (CE)         |
| visual_original      | F_v                          | 1      | visual modified? (BCE)        |
| visual_reconstructed | F_v_rec                      | 1      | visual modified? (BCE)        |
| visual_combined      | F_v (+) F_v_rec              | 1      | visual modified? (BCE)        |
| audio_original       | F_a                          | 1      | audio modified? (BCE)         |
| audio_reconstructed  | F_a_rec                      | 1      | audio modified? (BCE)         |
| audio_combined       | F_a (+) F_a_rec              | 1      | audio modified? (BCE)         |

Why binary targets for the six modality-separated heads: a stream that carries one modality
can only witness whether that modality was manipulated; asking the visual stream to tell
audio-only fakes from real videos would teach it to hallucinate. The bits come from the label
layout of `data/labels.py` (label = visual + 2 * audio). The combined heads see
both the feature and its reconstruction, so they can read the discrepancy that the FDN makes
large on forged frames; their sigmoid frame scores are the per-modality localization scores.

L_KL: Bernoulli KL(p_original || p_reconstructed) between the video-level predictions of the
original and reconstructed heads of a modality, averaged over videos and the two modalities.
Both sides receive gradient, so the reconstructed stream is pulled towards discriminative
predictions and the original stream is regularized by the reconstructed view (Sec. 3.4:
"preventing the branches from diverging"). Video level, because the paper speaks of the
branches' predictive distributions on "the final decision".
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from data.labels import is_modified
from model.layers import masked_conv

AUX_HEADS: tuple[str, ...] = (
    "visual_original", "visual_reconstructed", "visual_combined",
    "audio_original", "audio_reconstructed", "audio_combined",
)


class FrameClassifier(nn.Module):
    """Frame-level logits: 'same' conv -> GELU -> dropout -> linear. [B,T,Cin] -> [B,T,n_out]."""

    def __init__(self, in_dim: int, hidden: int, n_out: int, kernel: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, hidden, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.dropout(F.gelu(masked_conv(self.conv, x, mask)))  # [B, T, hidden]
        return self.out(h)  # [B, T, n_out]


class AuxiliaryHeads(nn.Module):
    """The six modality-separated heads over original, reconstructed and combined streams."""

    def __init__(self, d_model: int, hidden: int, kernel: int, dropout: float):
        super().__init__()
        widths = {"original": d_model, "reconstructed": d_model, "combined": 2 * d_model}
        self.heads = nn.ModuleDict({
            name: FrameClassifier(widths[name.split("_")[1]], hidden, 1, kernel, dropout)
            for name in AUX_HEADS
        })

    def forward(self, visual: Tensor, audio: Tensor, visual_recon: Tensor, audio_recon: Tensor,
                mask: Tensor) -> dict[str, Tensor]:
        """All streams [B, T, d], mask [B, T] -> {head name: frame logits [B, T]}."""
        inputs = {
            "visual_original": visual,
            "visual_reconstructed": visual_recon,
            "visual_combined": torch.cat([visual, visual_recon], dim=-1),  # [B, T, 2d]
            "audio_original": audio,
            "audio_reconstructed": audio_recon,
            "audio_combined": torch.cat([audio, audio_recon], dim=-1),  # [B, T, 2d]
        }
        return {name: self.heads[name](inputs[name], mask)[..., 0] for name in AUX_HEADS}


def modality_targets(labels: Tensor) -> dict[str, Tensor]:
    """Per-modality 'modified' bits of 4-class labels. labels [B] long -> {'visual','audio'}: [B] bool."""
    return {modality: is_modified(labels, modality).bool() for modality in ("visual", "audio")}


def auxiliary_cls_losses(video_logits: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
    """Binary cross-entropy of each auxiliary head's video logit [B] against its modality bit."""
    targets = modality_targets(labels)
    return {name: F.binary_cross_entropy_with_logits(logit, targets[name.split("_")[0]].to(logit.dtype))
            for name, logit in video_logits.items()}


def bernoulli_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(Bern(sigmoid(p)) || Bern(sigmoid(q))) per element, computed in log space. [B] -> [B]."""
    log_p, log_not_p = F.logsigmoid(p_logits), F.logsigmoid(-p_logits)
    log_q, log_not_q = F.logsigmoid(q_logits), F.logsigmoid(-q_logits)
    return log_p.exp() * (log_p - log_q) + log_not_p.exp() * (log_not_p - log_not_q)


def kl_consistency(video_logits: dict[str, Tensor]) -> Tensor:
    """L_KL: mean over videos and modalities of KL(original || reconstructed) head predictions."""
    terms = [bernoulli_kl(video_logits[f"{m}_original"], video_logits[f"{m}_reconstructed"]).mean()
             for m in ("visual", "audio")]
    return torch.stack(terms).mean()
