"""RT-DeepLoc composed (paper Sec. 3, Figure 2): fusion encoder -> FDN -> heads -> losses.

Inputs are first standardised per dimension with training-split statistics held as buffers
(`model/normalize.py`; the trainer sets them, checkpoints carry them).

`forward` always returns an `RTDeepLocOutput` (train and eval alike); `losses(out, labels)`
turns it into named loss terms (Eq. 4); `predict(...)` gives what localization needs
(`Prediction`), under no_grad, in eval mode and with fixed inference masks, so its result
depends on the weights and inputs only.

Masking mode: in training mode `forward` hides random frames (drawn from `generator`, or
torch's global RNG without one); in eval mode it uses the fixed complementary masks of
`model/fdn.py`, so validation losses are deterministic too. `deterministic=` overrides this.

Frame scores in `Prediction` (what the localizer routes between by the predicted class):
- joint: 1 - p(real) of the main head's per-frame 4-way softmax; the main head's fake-class
  logits are pushed down on every frame of real videos by Top-K MIL, so a frame with high
  fake-class evidence is a forged frame.
- visual / audio: sigmoid of the visual / audio *combined* heads (original (+) reconstructed
  stream) when MTLR is active; without MTLR (or without the FDN) the main head's per-frame
  marginals p(visual_only) + p(both) and p(audio_only) + p(both).
Reconstruction errors are the FDN's deterministic per-frame errors, and zeros without the FDN;
the error evidence is each error's percentile among authentic training frames
(`model/evidence.py`, set by the trainer), what the localizer mixes into its curves. The
clip deviation (untrained: each standardised input frame's distance from its clip's median
frame) and its percentile among authentic training frames are the other evidence the
localizer may use; they do not depend on the learned weights.
All frame outputs are zero on padding.

Learned deviation scorers (`deviation_scorer_weight` > 0, not in the paper): one linear
frame scorer per modality on the standardised inputs' clip deviations, with its own Top-K
MIL loss term "deviation" (model/deviation_scorer.py); their frame probabilities are in
`Prediction.visual_learned_deviation` / `audio_learned_deviation` (zeros without them).

Audio-visual desynchrony (`model/av_sync.py`, not in the paper, always built): canonical
directions fitted on authentic training clips by `fit_av_sync` (the trainer calls it; no
gradient, no label) give each frame a desynchrony, `Prediction.av_desync`, and its
percentile among authentic training frames, `Prediction.sync_evidence`; zeros until fitted.
It holds buffers only, so building it changes no parameter and no random draw.

Spectral detail (`model/spectral_detail.py`, not in the paper, always built, used only for
log-mel audio): a line from each frame's spectral envelope to its harmonic ripple, fitted on
authentic training clips by `fit_spectral_detail` (the trainer calls it when the cache's
audio is log-mel; no gradient, no label), gives each frame how far its ripple lies from
what the envelope predicts, `Prediction.spectral_detail`, and its percentile among
authentic training frames, `Prediction.spectral_detail_evidence`; zeros until fitted.
Buffers only, like the desynchrony.

Visual change (`model/boundaries.py`, not in the paper, untrained): how different the
next few frames of the raw visual input are from the few before each frame,
`Prediction.visual_change`; the localizer may move a proposal's ends onto it.

Loss terms: every key is always present (zero when its component is switched off) so logs
keep stable columns. The per-modality L_recon, L_KL and L_AICL are averaged over the two
modalities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from data.labels import LABELS, REAL, classes_modifying
from model.aicl import aicl_loss
from model.av_sync import AVSync
from model.boundaries import feature_change
from model.config import ModelConfig
from model.deviation_scorer import DeviationScorer, deviation_mil_loss
from model.evidence import ErrorCalibration, clip_deviation
from model.fdn import ForgeryDiscoveryNetwork, Reconstruction, reconstruction_loss
from model.fusion import FusionEncoder
from model.layers import check_inputs
from model.mil import authentic_frame_loss, topk_mil_pool
from model.normalize import InputStandardizer, clip_contrast
from model.spectral_detail import SpectralDetail
from model.mtlr import (AUX_HEADS, AuxiliaryHeads, FrameClassifier, auxiliary_cls_losses,
                        kl_consistency, modality_targets)


@dataclass
class RTDeepLocOutput:
    mask: Tensor  # [B, T] bool, True = valid frame
    visual_features: Tensor  # F_v [B, T, d]
    audio_features: Tensor  # F_a [B, T, d]
    main_frame_logits: Tensor  # [B, T, 4], classes in LABELS order
    main_video_logits: Tensor  # [B, 4], Top-K MIL of the frame logits
    visual_reconstruction: Reconstruction | None = None  # None without the FDN
    audio_reconstruction: Reconstruction | None = None
    aux_frame_logits: dict[str, Tensor] = field(default_factory=dict)  # {head: [B, T]}, MTLR
    aux_video_logits: dict[str, Tensor] = field(default_factory=dict)  # {head: [B]}, MTLR
    # {modality: [B, T]} logits of the learned deviation scorers; empty without them
    deviation_logits: dict[str, Tensor] = field(default_factory=dict)


# the per-frame arrays of a Prediction, in the order predict / localize store them
FRAME_FIELDS = ("visual_scores", "audio_scores", "joint_scores", "visual_recon_error",
                "audio_recon_error", "visual_error_evidence", "audio_error_evidence",
                "visual_deviation", "audio_deviation", "visual_deviation_evidence",
                "audio_deviation_evidence", "visual_learned_deviation", "audio_learned_deviation",
                "audio_learned_deviation_evidence", "av_desync", "sync_evidence", "spectral_detail",
                "spectral_detail_evidence", "visual_change")


@dataclass
class Prediction:
    class_probs: Tensor  # [B, 4] video-level probabilities, LABELS order
    visual_scores: Tensor  # [B, T] visual frame forgery probability in [0, 1]
    audio_scores: Tensor  # [B, T] audio frame forgery probability in [0, 1]
    joint_scores: Tensor  # [B, T] joint-branch frame forgery probability in [0, 1]
    visual_recon_error: Tensor  # [B, T] deterministic FDN error (zeros without FDN)
    audio_recon_error: Tensor  # [B, T]
    mask: Tensor  # [B, T] bool
    # [B, T] error percentile among authentic training frames, in [0, 1] (model/evidence.py);
    # zeros without the FDN or before the trainer set the reference
    visual_error_evidence: Tensor | None = None
    audio_error_evidence: Tensor | None = None
    # [B, T] untrained clip deviation of the standardised input (model/evidence.py) and its
    # percentile among authentic training frames (zeros until the trainer sets the reference)
    visual_deviation: Tensor | None = None
    audio_deviation: Tensor | None = None
    visual_deviation_evidence: Tensor | None = None
    audio_deviation_evidence: Tensor | None = None
    # [B, T] the learned deviation scorer's frame probability (model/deviation_scorer.py);
    # zeros when the model has none
    visual_learned_deviation: Tensor | None = None
    audio_learned_deviation: Tensor | None = None
    # [B, T] the audio one's percentile among authentic training frames (zeros until the
    # trainer set the reference, and without the scorers)
    audio_learned_deviation_evidence: Tensor | None = None
    # [B, T] audio-visual desynchrony (model/av_sync.py) and its percentile among authentic
    # training frames; zeros until the trainer fitted it
    av_desync: Tensor | None = None
    sync_evidence: Tensor | None = None
    # [B, T] the audio's spectral detail against its envelope (model/spectral_detail.py) and
    # its percentile among authentic training frames; zeros until the trainer fitted it
    spectral_detail: Tensor | None = None
    spectral_detail_evidence: Tensor | None = None
    # [B, T] how much the picture changes at each frame (model/boundaries.py), untrained
    visual_change: Tensor | None = None

    def video(self, index: int) -> dict[str, np.ndarray]:
        """One video's outputs as float32 numpy arrays, frame arrays cut to its valid frames.

        Assumes the valid frames are a prefix (how batches are padded in rtdl).
        """
        n = int(self.mask[index].sum())
        out = {name: getattr(self, name)[index, :n].float().cpu().numpy() for name in FRAME_FIELDS}
        out["class_probs"] = self.class_probs[index].float().cpu().numpy()
        return out


class RTDeepLoc(nn.Module):
    def __init__(self, cfg: ModelConfig, visual_dim: int, audio_dim: int):
        super().__init__()
        if visual_dim < 1 or audio_dim < 1:
            raise ValueError(f"feature dims must be >= 1, got visual_dim={visual_dim}, "
                             f"audio_dim={audio_dim}")
        self.config = cfg
        self.visual_dim = visual_dim
        self.audio_dim = audio_dim
        self.labels = LABELS
        # per-dimension standardisation of the raw inputs (model/normalize.py); identity
        # until the trainer sets training-split statistics
        self.visual_input_norm = InputStandardizer(visual_dim)
        self.audio_input_norm = InputStandardizer(audio_dim)
        widen = 2 if cfg.input_contrast == "append" else 1
        self.fusion = FusionEncoder(cfg, widen * visual_dim, widen * audio_dim)
        self.main_head = FrameClassifier(cfg.fused_dim, cfg.head_hidden, len(LABELS),
                                         cfg.head_kernel, cfg.dropout)
        # only what is switched on is built, so every parameter gets a gradient (DDP)
        if cfg.use_fdn:  # "own" view reads the standardised input before any clip contrast
            fdn_widen = 1 if cfg.fdn_view == "own" else widen
            self.visual_fdn = ForgeryDiscoveryNetwork(cfg, fdn_widen * visual_dim)
            self.audio_fdn = ForgeryDiscoveryNetwork(cfg, fdn_widen * audio_dim)
        if cfg.mtlr_active:
            self.aux_heads = AuxiliaryHeads(cfg.d_model, cfg.head_hidden, cfg.head_kernel,
                                            cfg.dropout)
        # reconstruction error -> percentile among authentic training frames (set by the trainer)
        self.visual_error_calibration = ErrorCalibration()
        self.audio_error_calibration = ErrorCalibration()
        # clip deviation of the input -> percentile among authentic training frames (same)
        self.visual_deviation_calibration = ErrorCalibration()
        self.audio_deviation_calibration = ErrorCalibration()
        # audio-visual desynchrony (buffers only, fitted by the trainer) and its percentiles
        self.av_sync = AVSync(visual_dim, audio_dim, agreement=cfg.av_sync_agreement)
        self.sync_calibration = ErrorCalibration()
        # the audio's spectral detail (buffers only, fitted by the trainer for log-mel audio)
        self.spectral_detail = SpectralDetail()
        self.detail_calibration = ErrorCalibration()
        if cfg.deviation_scorer_weight > 0:  # last, and zero-initialised: nothing else changes
            statistic = cfg.deviation_window_statistic
            self.deviation_scorers = nn.ModuleDict({
                "visual": DeviationScorer(visual_dim, statistic, cfg.visual_deviation_view),
                "audio": DeviationScorer(audio_dim, statistic, cfg.audio_deviation_view)})
            # the audio scorer's probability -> percentile among authentic training frames
            # (set by the trainer), for the evidence that takes the largest of three audio cues
            self.audio_learned_calibration = ErrorCalibration()

    def set_input_statistics(self, visual_mean, visual_std, audio_mean, audio_std) -> None:
        """Standardise inputs with these per-dimension statistics ([Cv], [Cv], [Ca], [Ca])."""
        self.visual_input_norm.set_statistics(visual_mean, visual_std)
        self.audio_input_norm.set_statistics(audio_mean, audio_std)

    @torch.no_grad()
    def fitted_buffers(self) -> dict[str, Tensor]:
        """Every buffer fitted on authentic training clips rather than learned: the
        percentile calibrations, the desynchrony and the spectral detail, by state_dict
        name. Rank 0 fits them during validation and shares exactly these with the other
        DDP ranks; found by module type, so a calibration added later is shared too."""
        return {f"{module_name}.{name}": buffer
                for module_name, module in self.named_modules()
                if isinstance(module, (ErrorCalibration, AVSync, SpectralDetail))
                for name, buffer in module.named_buffers(recurse=False)}

    def fit_av_sync(self, read_clips) -> None:
        """Fit the audio-visual desynchrony on authentic clips: `read_clips()` yields (visual
        [T, Cv], audio [T, Ca]) raw features, the same clips on every call (AVSync.fit may
        read them twice); standardised here with the model's input statistics."""
        def standardise(x, norm):  # on the CPU, wherever the model lives
            x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
            return (x - norm.mean.cpu()) / norm.std.cpu()

        fitted = AVSync(self.visual_dim, self.audio_dim)
        fitted.fit(lambda: ((standardise(v, self.visual_input_norm), standardise(a, self.audio_input_norm))
                            for v, a in read_clips()))
        for name, buffer in fitted.named_buffers():
            getattr(self.av_sync, name).copy_(buffer)

    @torch.no_grad()
    def fit_spectral_detail(self, read_audio, n_mels: int) -> None:
        """Fit the spectral detail on authentic clips: `read_audio()` yields each clip's raw
        log-mel audio features [T, Ca] whose first `n_mels` dims are the mel bands (fitted on
        the CPU; the buffers are written only once the fit has succeeded)."""
        self.spectral_detail.fit(read_audio, n_mels)

    def forward(self, visual: Tensor, audio: Tensor, mask: Tensor,
                generator: torch.Generator | None = None, *,
                deterministic: bool | None = None) -> RTDeepLocOutput:
        """visual [B, T, Cv], audio [B, T, Ca], mask [B, T] bool -> RTDeepLocOutput."""
        check_inputs(visual, audio, mask, self.visual_dim, self.audio_dim)
        cfg = self.config
        fixed_masks = (not self.training) if deterministic is None else deterministic
        visual = self.visual_input_norm(visual, mask)  # [B, T, Cv] standardised
        audio = self.audio_input_norm(audio, mask)  # [B, T, Ca]
        deviation_logits = {}
        if cfg.deviation_scorer_weight > 0:
            deviation_logits = {"visual": self.deviation_scorers["visual"](visual, mask),
                                "audio": self.deviation_scorers["audio"](audio, mask)}
        standardised = {"visual": visual, "audio": audio}  # what an "own"-view FDN reads
        if cfg.input_contrast == "replace":
            visual, audio = clip_contrast(visual, mask), clip_contrast(audio, mask)
        elif cfg.input_contrast == "append":
            visual = torch.cat([visual, clip_contrast(visual, mask)], dim=-1)  # [B, T, 2Cv]
            audio = torch.cat([audio, clip_contrast(audio, mask)], dim=-1)  # [B, T, 2Ca]
        enc = self.fusion(visual, audio, mask)  # F_v, F_a [B, T, d]; F_m [B, T, 4d]
        main_frame = self.main_head(enc.fused, mask)  # [B, T, 4]
        out = RTDeepLocOutput(mask=mask, visual_features=enc.visual, audio_features=enc.audio,
                              main_frame_logits=main_frame,
                              main_video_logits=topk_mil_pool(main_frame, mask,
                                                              cfg.mil_topk_ratio),
                              deviation_logits=deviation_logits)
        if cfg.use_fdn:  # Forgery Discovery Network, one MAE per modality
            own = cfg.fdn_view == "own"
            out.visual_reconstruction = self.visual_fdn(
                None if own else enc.visual, mask, generator, fixed_masks,
                inputs=standardised["visual"] if own else visual)
            out.audio_reconstruction = self.audio_fdn(
                None if own else enc.audio, mask, generator, fixed_masks,
                inputs=standardised["audio"] if own else audio)
        if cfg.mtlr_active:  # six auxiliary heads over original / reconstructed / combined
            visual_recon = out.visual_reconstruction.recon
            audio_recon = out.audio_reconstruction.recon
            if cfg.fdn_view == "own":  # genuine-focused: no classification gradient reaches it
                visual_recon, audio_recon = visual_recon.detach(), audio_recon.detach()
            out.aux_frame_logits = self.aux_heads(enc.visual, enc.audio, visual_recon,
                                                  audio_recon, mask)
            out.aux_video_logits = {
                name: topk_mil_pool(logits[..., None], mask, cfg.mil_topk_ratio)[:, 0]  # [B]
                for name, logits in out.aux_frame_logits.items()
            }
        return out

    def losses(self, out: RTDeepLocOutput, labels: Tensor) -> dict[str, Tensor]:
        """Eq. 4 as named terms: cls_main, cls_<aux head> x6, cls, recon, kl, aicl, total; plus
        frame_negative and deviation (rtdl's terms, zero when switched off)."""
        cfg = self.config
        if labels.dim() != 1 or labels.shape[0] != out.mask.shape[0]:
            raise ValueError(f"labels must be [B={out.mask.shape[0]}], got {tuple(labels.shape)}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(LABELS)):
            raise ValueError(f"labels must be in 0..{len(LABELS) - 1} ({LABELS}), "
                             f"got {labels.tolist()}")
        labels = labels.long()
        zero = out.main_video_logits.float().sum() * 0.0  # attached zero for disabled terms
        terms = {"cls_main": F.cross_entropy(out.main_video_logits.float(), labels)}
        video_logits = {k: v.float() for k, v in out.aux_video_logits.items()}
        aux = auxiliary_cls_losses(video_logits, labels)
        for name in AUX_HEADS:
            terms[f"cls_{name}"] = aux.get(name, zero)
        terms["cls"] = (cfg.cls_main_weight * terms["cls_main"]
                        + cfg.cls_aux_weight * sum(aux.values(), zero))
        terms["frame_negative"] = self._authentic_frame_term(out, labels) if cfg.frame_negative_weight else zero
        terms["cls"] = terms["cls"] + cfg.frame_negative_weight * terms["frame_negative"]

        recons = {"visual": out.visual_reconstruction, "audio": out.audio_reconstruction}
        features = {"visual": out.visual_features, "audio": out.audio_features}
        if cfg.use_fdn:
            is_real = labels == 0  # Eq. 2: genuine-focused, real videos only
            terms["recon"] = torch.stack([reconstruction_loss(r.errors.float(), r.hidden, is_real)
                                          for r in recons.values()]).mean()
        else:
            terms["recon"] = zero
        terms["kl"] = kl_consistency(video_logits) if cfg.mtlr_active else zero
        if cfg.aicl_active:
            modified = modality_targets(labels)
            per_modality = []
            for m, rec in recons.items():
                # hotspots among frames reconstructed while hidden; all valid frames if none
                none_hidden = ~rec.hidden.any(dim=1, keepdim=True)  # [B, 1]
                candidates = rec.hidden | (none_hidden & out.mask)  # [B, T]
                per_modality.append(aicl_loss(features[m].float(), rec.errors, candidates,
                                              ~modified[m], cfg.aicl_k, cfg.aicl_margin))
            terms["aicl"] = torch.stack(per_modality).mean()
        else:
            terms["aicl"] = zero
        if out.deviation_logits:  # the scorers' own loss; no gradient reaches the network
            modified = modality_targets(labels)
            terms["deviation"] = torch.stack([
                deviation_mil_loss(logits.float(), out.mask, modified[m], cfg.mil_topk_ratio)
                for m, logits in out.deviation_logits.items()]).mean()
        else:
            terms["deviation"] = zero
        terms["total"] = (terms["cls"] + cfg.recon_weight * terms["recon"]
                          + cfg.kl_weight * terms["kl"] + cfg.aicl_weight * terms["aicl"]
                          + cfg.deviation_scorer_weight * terms["deviation"])
        return terms

    def _authentic_frame_term(self, out: RTDeepLocOutput, labels: Tensor) -> Tensor:
        """Authentic frames against "not forged": the main head's real class on real videos,
        each auxiliary head on videos whose modality is unmodified (see ModelConfig)."""
        cfg = self.config
        main = out.main_frame_logits.float()  # [B, T, 4]
        # binary view of the main head: log p(real) vs log p(any fake) per frame
        real_vs_fake = torch.logsumexp(main[..., 1:], dim=-1) - main[..., 0]  # [B, T]
        term = cfg.cls_main_weight * authentic_frame_loss(real_vs_fake, out.mask, labels == 0)
        modified = modality_targets(labels)
        for name, logits in out.aux_frame_logits.items():
            term = term + cfg.cls_aux_weight * authentic_frame_loss(
                logits.float(), out.mask, ~modified[name.split("_")[0]])
        return term

    @torch.no_grad()
    def predict(self, visual: Tensor, audio: Tensor, mask: Tensor) -> Prediction:
        """Deterministic inference outputs for localization (see the module docstring)."""
        was_training = self.training
        self.eval()  # no dropout; restored below
        try:
            out = self.forward(visual, audio, mask, deterministic=True)
        finally:
            self.train(was_training)
        valid = mask.float()
        frame_probs = out.main_frame_logits.float().softmax(dim=-1)  # [B, T, 4]
        if self.config.mtlr_active:
            visual_scores = out.aux_frame_logits["visual_combined"].float().sigmoid()  # [B, T]
            audio_scores = out.aux_frame_logits["audio_combined"].float().sigmoid()
        else:
            # P(modality forged): the sum over the classes that modify it (data/labels.py)
            visual_scores, audio_scores = (frame_probs[..., list(classes_modifying(m))].sum(dim=-1)
                                           for m in ("visual", "audio"))  # [B, T] each
        if self.config.use_fdn:
            visual_error = out.visual_reconstruction.errors.float()
            audio_error = out.audio_reconstruction.errors.float()
        else:
            visual_error = audio_error = torch.zeros_like(valid)
        visual_standardised = self.visual_input_norm(visual, mask)  # [B, T, Cv]
        audio_standardised = self.audio_input_norm(audio, mask)  # [B, T, Ca]
        visual_deviation = clip_deviation(visual_standardised, mask)  # [B, T]
        audio_deviation = clip_deviation(audio_standardised, mask)
        desync = self.av_sync(visual_standardised, audio_standardised, mask)  # [B, T]
        detail = self.spectral_detail(audio, mask)  # [B, T], from the raw log-mel bands
        learned = {m: out.deviation_logits[m].float().sigmoid() if out.deviation_logits
                   else torch.zeros_like(valid) for m in ("visual", "audio")}
        return Prediction(
            class_probs=out.main_video_logits.float().softmax(dim=-1),
            visual_scores=visual_scores.clamp(0, 1) * valid,
            audio_scores=audio_scores.clamp(0, 1) * valid,
            joint_scores=(1.0 - frame_probs[..., REAL]).clamp(0, 1) * valid,
            visual_recon_error=visual_error * valid,
            audio_recon_error=audio_error * valid,
            mask=mask,
            visual_error_evidence=self.visual_error_calibration(visual_error) * valid,
            audio_error_evidence=self.audio_error_calibration(audio_error) * valid,
            visual_deviation=visual_deviation * valid,
            audio_deviation=audio_deviation * valid,
            visual_deviation_evidence=self.visual_deviation_calibration(visual_deviation) * valid,
            audio_deviation_evidence=self.audio_deviation_calibration(audio_deviation) * valid,
            visual_learned_deviation=learned["visual"] * valid,
            audio_learned_deviation=learned["audio"] * valid,
            audio_learned_deviation_evidence=(self.audio_learned_calibration(learned["audio"])
                                              if out.deviation_logits else torch.zeros_like(valid)) * valid,
            av_desync=desync * valid,
            sync_evidence=(self.sync_calibration(desync) if bool(self.av_sync.is_set)
                           else torch.zeros_like(valid)) * valid,
            spectral_detail=detail * valid,
            spectral_detail_evidence=(self.detail_calibration(detail) if bool(self.spectral_detail.is_set)
                                      else torch.zeros_like(valid)) * valid,
            visual_change=feature_change(visual, mask) * valid,
        )


def build_model(cfg: ModelConfig, visual_dim: int, audio_dim: int) -> RTDeepLoc:
    """The RT-DeepLoc model for features of the given widths (taken from the feature cache)."""
    return RTDeepLoc(cfg, visual_dim, audio_dim)
