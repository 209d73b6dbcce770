"""Forgery Discovery Network: a 1-D masked autoencoder per modality (paper Sec. 3.2).

Masking convention, stated once: `hidden` is a bool `[B, T]` mask, True = the frame is hidden
from the encoder (the paper's set M); `valid` is the padding mask, True = real frame.
Padding is never hidden, never visible, never counted.

Training (`deterministic=False`): floor(rho * L) of each video's L valid frames are hidden at
random, drawn from an explicit `torch.Generator` (Sec. 3.2, |M| = floor(rho T) with T the
valid length, so padding does not change how many frames are hidden). The encoder sees the
visible frames only (gathered, padded to the longest visible set, with a key padding mask);
the decoder sees the full length with the encoder output or a shared learnable mask token
plus a sinusoidal position at every frame (Eq. 1). The downstream reconstructed stream is the
decoder output at every valid frame.

Inference (`deterministic=True`): the error must not depend on a random draw, so the video is
reconstructed under n fixed complementary masks (n = ceil(1/(1-rho)), 4 at rho 0.75): in pass
j the frames whose rank among valid frames is congruent to j mod n stay visible, the rest are
hidden. Every frame is visible in exactly one pass and hidden in the others, and each pass
shows the encoder about the same share (1 - rho) of frames as training did. A frame's
reconstruction is the mean of its reconstructions from the passes that hid it. A video with
fewer valid frames than n uses n_eff = L residues; a one-frame video cannot be hidden, so its
reconstruction comes from the pass that saw it. Known approximation: in training the
reconstructed stream at the ~25% visible frames is the decoder's output with the frame in view,
while at inference every frame is reconstructed while hidden; training-time hotspot selection
for AICL therefore looks at hidden frames only (see `Reconstruction.hidden`).

Reconstruction target (`ModelConfig.fdn_target`): "embedding" (default, the paper) is the
embedded features F_v / F_a (the streams AICL and the MTLR heads use), with stop-gradient on
the target. "input" reads the reconstructed embedding out linearly to the model's
standardised input and reports (and trains, Eq. 2) that error instead: the target is then
fixed, so the classification losses cannot reshape what the error measures. Without it, Eq. 2 could be lowered by collapsing the
embedding towards a constant, which would also erase the forgery cues; the embedding is shaped
by the classification and AICL losses instead, and the MAE learns to reconstruct it. Errors
are mean squared differences over channels: Eq. 2's squared L2 norm divided by the width,
a constant rescaling that keeps lambda_2 = 0.1 meaningful whatever d_model is.

What the FDN reads (`ModelConfig.fdn_view`): "shared" (default, the paper) is F_v / F_a, the
fusion encoder's embedding, which the classification and AICL losses reshape every step.
"own" gives each FDN a linear embedding of its own of the standardised input, taken before
any clip contrast (`input_contrast`), and needs fdn_target "input": nothing but Eq. 2 on
authentic clips ever trains it, so it is genuine-focused in the strict sense, and the
trainer can train it alone on the authentic training clips before the joint epochs
(`train.fdn_pretrain_epochs`, pipeline/fdn_pretrain.py). Why: trained this way and to the
end, the same autoencoder marks held-out blur at frame AUC 0.98 on rtdl's 2,100-clip
benchmark where the shared one reads 0.38 (BENCHMARKS.md, "The FDN alone, trained to the
end"); inside the model, with this view and the pretraining, 0.989 in each of three seeds
(BENCHMARKS.md, "The FDN trained on authentic clips inside the model"). With "own" the
reconstructed stream handed to the MTLR heads is cut from the graph (`RTDeepLoc.forward`),
so the classification losses cannot teach the autoencoder to rebuild forgeries; the heads
still read it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.layers import sinusoidal_positions


def random_masking(valid: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Hide floor(ratio * L) random valid frames per video; padding is never hidden.

    valid [B, T] bool -> hidden [B, T] bool. Deterministic for a seeded generator; without one,
    torch's global RNG is used.
    """
    batch, length = valid.shape
    device = generator.device if generator is not None else valid.device
    noise = torch.rand(batch, length, generator=generator, device=device).to(valid.device)
    noise = noise.masked_fill(~valid, 2.0)  # noise is in [0, 1): padding ranks last
    rank = noise.argsort(dim=1).argsort(dim=1)  # [B, T] position of each frame in the shuffle
    # float64 and a tiny epsilon so e.g. 0.29 * 100 floors to 29, not 28
    n_hidden = (valid.sum(dim=1).double() * ratio + 1e-9).floor().long()  # [B]
    return rank < n_hidden[:, None]  # [B, T]


def complementary_masks(valid: Tensor, n_masks: int) -> Tensor:
    """n fixed masks; in mask j the valid frames with rank % n_eff == j % n_eff stay visible.

    valid [B, T] bool -> hidden [n, B, T] bool, where n_eff = min(n, L) per video. Every valid
    frame of a video with L >= 2 is hidden in at least one mask and visible in at least one.
    """
    rank = valid.long().cumsum(dim=1) - 1  # [B, T] rank among valid frames
    n_eff = valid.sum(dim=1).clamp(max=n_masks)  # [B]
    residue = rank % n_eff[:, None]  # [B, T]
    passes = torch.arange(n_masks, device=valid.device)[:, None, None] % n_eff[None, :, None]
    visible = residue[None] == passes  # [n, B, T]
    return valid[None] & ~visible


def frame_errors(features: Tensor, recon: Tensor, valid: Tensor) -> Tensor:
    """Per-frame reconstruction error ||F - F_hat||^2 / C against a stop-gradient target.

    features, recon [B, T, C]; valid [B, T] -> errors [B, T], zero on padding.
    """
    err = (recon - features.detach()).pow(2).mean(dim=-1)  # [B, T]
    return err * valid.to(err.dtype)


def reconstruction_loss(errors: Tensor, hidden: Tensor, is_real: Tensor) -> Tensor:
    """Eq. 2: mean error over hidden frames of real videos (y = 0) only; 0 when there are none.

    errors [B, T] (from `frame_errors`), hidden [B, T] bool, is_real [B] bool -> scalar.
    The sum stays attached to the graph even when empty, so every parameter gets a (zero)
    gradient, which DistributedDataParallel needs.
    """
    counted = hidden & is_real[:, None]  # [B, T]
    weight = counted.to(errors.dtype)
    return (errors * weight).sum() / weight.sum().clamp_min(1.0)


class MaskedAutoencoder1d(nn.Module):
    """Asymmetric MAE over a frame sequence: encoder on visible frames, decoder on all."""

    def __init__(self, d_model: int, decoder_dim: int, encoder_layers: int, decoder_layers: int,
                 heads: int, ff_mult: int, dropout: float):
        super().__init__()

        def stack(width: int, depth: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(width, heads, ff_mult * width, dropout,
                                               activation="gelu", batch_first=True,
                                               norm_first=True)
            return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

        self.encoder = stack(d_model, encoder_layers)  # E_enc
        self.encoder_norm = nn.LayerNorm(d_model)
        self.encoder_to_decoder = nn.Linear(d_model, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(decoder_dim) * 0.02)  # e_mask of Eq. 1
        self.decoder = stack(decoder_dim, decoder_layers)  # E_dec
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.to_features = nn.Linear(decoder_dim, d_model)
        self.decoder_dim = decoder_dim

    def forward(self, features: Tensor, valid: Tensor, hidden: Tensor) -> Tensor:
        """features [B, T, D], valid [B, T], hidden [B, T] -> reconstruction F_hat [B, T, D]."""
        batch, length, dim = features.shape
        visible = valid & ~hidden  # [B, T]
        n_visible = visible.sum(dim=1)  # [B], >= 1 since rho < 1 and every video has a frame
        n_keep = int(n_visible.max())
        # visible frames first, in time order; the tail of each row is unused filler
        order = (~visible).to(torch.uint8).argsort(dim=1, stable=True)  # [B, T]
        keep = order[:, :n_keep]  # [B, V]
        keep_valid = torch.arange(n_keep, device=valid.device)[None] < n_visible[:, None]  # [B, V]

        # encoder: F_V plus its positions (the encoder must know where each visible frame is)
        pos_enc = sinusoidal_positions(length, dim, features.device).to(features.dtype)  # [T, D]
        x = (features + pos_enc).gather(1, keep[..., None].expand(-1, -1, dim))  # [B, V, D]
        z_vis = self.encoder(x, src_key_padding_mask=~keep_valid)  # Z_V [B, V, D]
        z_vis = self.encoder_to_decoder(self.encoder_norm(z_vis))  # [B, V, Ddec]
        z_vis = z_vis * keep_valid[..., None].to(z_vis.dtype)

        # Eq. 1: z_i = Z_V[idx(i)] + p_i for visible i, e_mask + p_i for hidden i
        index = keep[..., None].expand(-1, -1, self.decoder_dim)  # [B, V, Ddec]
        scattered = torch.zeros(batch, length, self.decoder_dim, device=features.device,
                                dtype=z_vis.dtype).scatter(1, index, z_vis)  # [B, T, Ddec]
        pos_dec = sinusoidal_positions(length, self.decoder_dim, features.device)  # [T, Ddec]
        z_full = torch.where(visible[..., None], scattered, self.mask_token.to(z_vis.dtype))
        z_full = z_full + pos_dec.to(z_full.dtype)  # Z_full [B, T, Ddec]
        h = self.decoder(z_full, src_key_padding_mask=~valid)  # [B, T, Ddec]
        recon = self.to_features(self.decoder_norm(h))  # F_hat [B, T, D]
        return recon * valid[..., None].to(recon.dtype)


@dataclass
class Reconstruction:
    recon: Tensor  # F_hat [B, T, D], zero on padding
    errors: Tensor  # [B, T] per-frame error vs stop-gradient target (carries grad to the MAE)
    hidden: Tensor  # [B, T] bool: frames reconstructed while hidden (Eq. 2's M, hotspot pool)


class ForgeryDiscoveryNetwork(nn.Module):
    """The FDN of one modality: masking + `MaskedAutoencoder1d` + per-frame errors."""

    def __init__(self, cfg: ModelConfig, input_dim: int | None = None):
        super().__init__()
        if cfg.fdn_target == "input" and input_dim is None:
            raise ValueError("fdn_target='input' needs the input width (input_dim)")
        # fdn_view "own": the FDN's own linear embedding of the standardised input
        self.embed = nn.Linear(input_dim, cfg.d_model) if cfg.fdn_view == "own" else None
        # fdn_target "input": a linear read-out from the reconstructed embedding to the
        # model's (standardised) input, whose error is the one reported and trained
        self.to_input = nn.Linear(cfg.d_model, input_dim) if cfg.fdn_target == "input" else None
        self.mae = MaskedAutoencoder1d(cfg.d_model, cfg.mae_decoder_dim, cfg.mae_encoder_layers,
                                       cfg.mae_decoder_layers, cfg.mae_heads, cfg.ff_mult,
                                       cfg.dropout)
        self.mask_ratio = cfg.mask_ratio
        self.n_inference_masks = cfg.inference_mask_count

    def forward(self, features: Tensor | None, valid: Tensor, generator: torch.Generator | None = None,
                deterministic: bool = False, inputs: Tensor | None = None) -> Reconstruction:
        # features [B, T, D], valid [B, T]; inputs [B, T, C]: the target with fdn_target "input".
        # With fdn_view "own" the FDN embeds `inputs` itself and `features` is ignored (None)
        if self.embed is not None:
            if inputs is None:
                raise ValueError("fdn_view='own' needs the model inputs to embed")
            features = self.embed(inputs)  # [B, T, D]
        if not deterministic:
            hidden = random_masking(valid, self.mask_ratio, generator)  # [B, T]
            recon = self.mae(features, valid, hidden)  # [B, T, D]
            return Reconstruction(recon, self._errors(features, recon, valid, inputs), hidden)

        n = self.n_inference_masks
        hidden_n = complementary_masks(valid, n)  # [n, B, T]
        batch, length, dim = features.shape
        recon_n = self.mae(features.repeat(n, 1, 1), valid.repeat(n, 1),
                           hidden_n.reshape(n * batch, length)).view(n, batch, length, dim)
        weight = hidden_n[..., None].to(recon_n.dtype)  # [n, B, T, 1]
        count = weight.sum(dim=0)  # [B, T, 1] passes that hid each frame
        from_hidden = (recon_n * weight).sum(dim=0) / count.clamp_min(1.0)  # [B, T, D]
        # a one-frame video is never hidden: fall back to the passes that saw it
        recon = torch.where(count > 0, from_hidden, recon_n.mean(dim=0))  # [B, T, D]
        hidden = count[..., 0] > 0  # [B, T]
        return Reconstruction(recon, self._errors(features, recon, valid, inputs), hidden)

    def _errors(self, features: Tensor, recon: Tensor, valid: Tensor, inputs: Tensor | None) -> Tensor:
        """Per-frame errors [B, T] against the embedding (the paper) or against the inputs."""
        if self.to_input is None:
            return frame_errors(features, recon, valid)
        if inputs is None:
            raise ValueError("fdn_target='input' needs the model inputs as the reconstruction target")
        return frame_errors(inputs, self.to_input(recon), valid)
