"""`ModelConfig`: every size, ratio and loss weight of RT-DeepLoc, as one frozen dataclass.

Paper values (Sec. 4.2): mask ratio rho = 0.75, AICL K = 10, loss weights 0.8 for the main
head and 0.1 for each of the six auxiliary heads, lambda_2 = lambda_3 = lambda_4 = 0.1 for
L_recon, L_KL and L_AICL (Eq. 4). The paper gives no widths, depths or head counts; the
defaults here are small so that training on a laptop CPU is practical:
d_model 128, 2 MAE encoder layers, 1 MAE decoder layer ("lightweight decoder"), 4 heads.
Override them (YAML or `--set`) for GPU-scale runs.

Choices where the paper is silent (documented here once, used by the modules):
- `aicl_margin` m = 1.0: distances are squared Euclidean between means of LayerNorm-ed
  d_model-wide frame features, whose squared norm is about d_model, so 1.0 is a small,
  reachable margin.
- `mil_topk_ratio` = 1/8: the Top-K MIL K is max(1, floor(L / 8)) for a video of L valid
  frames, the ratio used by the weakly-supervised action localization work the paper builds
  on (W-TALC, CoLA).
- `n_inference_masks` = 0 means ceil(1 / (1 - rho)) fixed complementary masks (4 at rho 0.75),
  so every frame is reconstructed while hidden; see `model/fdn.py`.

Inputs (not in the paper, see model/normalize.py): features are always standardised per
dimension with training-split statistics (buffers set by the trainer). `input_contrast`
"none" (default, the paper) feeds them as they are; "replace" feeds each frame minus its
clip's median frame, so only deviations within a clip reach the network (what the
weight-free demo features need: their absolute values mostly say who is speaking);
"append" feeds both (twice the input width).

What the FDN reads (`fdn_view`, "shared" = the paper): "own" gives each FDN its own linear
embedding of the standardised input (before any clip contrast) and trains it by Eq. 2 on
authentic clips alone, never by the classification losses; it needs fdn_target "input", and
`train.fdn_pretrain_epochs` can train it alone first (model/fdn.py, pipeline/fdn_pretrain.py).

Authentic-frame term (`frame_negative_weight`, 0 = the paper): Top-K MIL trains a head
through its K highest frames only, so nothing ties the score of the other frames to forgery,
and a head can rank authentic frames above forged ones and still fit every video label. The
video-level label does say more: every frame of a real video, and every frame of a modality
the label says was not modified, is authentic. This term is the mean per-frame loss of those
frames against "not forged" (the main head's "real" class, the auxiliary heads' 0), added to
L_CLS with this weight (`model/mil.py: authentic_frame_loss`).

Learned deviation scorer (`deviation_scorer_weight`, 0 = the paper): a linear frame scorer
per modality on the absolute clip deviations of the standardised inputs, trained with Top-K
MIL on the video labels beside the network, never through it; its frame scores are an
evidence the localizer may choose on dev (`model/deviation_scorer.py`).

Ablation switches (paper Table 3): `use_fdn=False` removes the FDN and with it AICL and MTLR
(the paper's baseline: encoders + cross-modal attention + main head); `use_aicl=False`;
`use_mtlr=False` (no auxiliary heads, no KL). Use the derived `aicl_active` / `mtlr_active`
properties, never the raw switches, to decide what runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# what the learned deviation scorers' windows may take (`deviation_window_statistic`)
DEVIATION_WINDOW_STATISTICS = ("mean", "median")
# what the learned deviation scorers read (`visual_deviation_view`, `audio_deviation_view`;
# model/deviation_scorer.py, "Views"): each frame's deviation summarised over windows, or
# the windows' mean frames' deviations
DEVIATION_VIEWS = ("deviation_windows", "window_deviations")
# how the desynchrony scores a frame's paired projections (model/av_sync.py, "agreement")
AV_SYNC_AGREEMENTS = ("product", "likelihood_ratio")


@dataclass(frozen=True)
class ModelConfig:
    # --- multimodal encoding and fusion (Sec. 3.1) ---
    d_model: int = 128  # width of F_v and F_a (output of each conv embedding)
    embed_kernel: int = 3  # temporal kernel of the per-modality 1-D conv embedding (odd)
    input_contrast: str = "none"  # none | append | replace: clip-median contrast of the inputs (model/normalize.py)
    fusion_heads: int = 4  # heads of the bidirectional cross-modal attention
    # --- Forgery Discovery Network, a 1-D MAE per modality (Sec. 3.2) ---
    mae_encoder_layers: int = 2  # Transformer layers over visible frames only
    mae_decoder_layers: int = 1  # Transformer layers over the full length (lightweight)
    mae_decoder_dim: int = 128  # D_dec of Eq. 1
    mae_heads: int = 4  # attention heads in MAE encoder and decoder
    ff_mult: int = 2  # feed-forward width = ff_mult * layer width
    mask_ratio: float = 0.75  # rho: floor(rho * valid_len) frames hidden per video
    fdn_target: str = "embedding"  # embedding (the paper) | input: what the FDN's error measures (model/fdn.py)
    fdn_view: str = "shared"  # shared (the paper: F_v / F_a) | own: what the FDN reads (model/fdn.py)
    n_inference_masks: int = 0  # fixed complementary masks at inference; 0 = ceil(1/(1-rho))
    # --- Asymmetric Intra-video Contrastive Loss (Sec. 3.3) ---
    aicl_k: int = 10  # K: top-K frames by reconstruction error form the local feature
    aicl_margin: float = 1.0  # m of Eq. 3 (squared-distance triplet margin)
    # --- classification heads and Top-K MIL (Sec. 3.4) ---
    head_hidden: int = 128  # hidden width of every frame classifier
    head_kernel: int = 3  # temporal kernel of the first frame-classifier conv (odd)
    mil_topk_ratio: float = 0.125  # Top-K MIL: K = max(1, floor(ratio * valid_len))
    # weight of the authentic-frame term (not in the paper): every frame of a stream the
    # video-level label says is authentic is pushed towards "not forged", not only the top-K
    frame_negative_weight: float = 0.0
    # weight of the learned clip-deviation scorer's MIL loss (not in the paper,
    # model/deviation_scorer.py); 0 = not built. It trains apart from the network.
    deviation_scorer_weight: float = 0.0
    # how the scorers' 5- and 15-frame windows summarise the deviation: "median" (keeps a
    # forged span's edges) or "mean" (before 2026-11-30; model/deviation_scorer.py, "What a
    # window takes")
    deviation_window_statistic: str = "median"
    # what each modality's scorer reads (model/deviation_scorer.py, "Views"): the deviation of
    # each frame summarised over windows ("deviation_windows"), or the deviation of each
    # window's mean frame ("window_deviations", which lets the natural variation of speech
    # cancel before the absolute value; checkpoints from before it read "deviation_windows")
    visual_deviation_view: str = "deviation_windows"
    audio_deviation_view: str = "window_deviations"
    # the audio-visual desynchrony's per-frame agreement (model/av_sync.py): the product term
    # of the Gaussian log-likelihood ratio, or the whole ratio; buffers and fit are the same,
    # so a fitted model may be switched and its sync evidence recalibrated
    av_sync_agreement: str = "product"
    dropout: float = 0.1  # dropout in attention, Transformer layers and heads
    # --- loss weights (Eq. 4) ---
    cls_main_weight: float = 0.8  # fused main 4-class head
    cls_aux_weight: float = 0.1  # each of the six auxiliary binary heads
    recon_weight: float = 0.1  # lambda_2, L_recon (Eq. 2)
    kl_weight: float = 0.1  # lambda_3, L_KL original vs reconstructed streams
    aicl_weight: float = 0.1  # lambda_4, L_AICL (Eq. 3)
    # --- ablation switches (Table 3) ---
    use_fdn: bool = True  # False: no MAE, hence no AICL and no MTLR (paper's baseline)
    use_aicl: bool = True  # False: drop L_AICL
    use_mtlr: bool = True  # False: drop the six auxiliary heads and L_KL

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> ValueError:
            return ValueError(f"ModelConfig.{field}={getattr(self, field)!r}: {why}")

        for name in ("d_model", "fusion_heads", "mae_encoder_layers", "mae_decoder_layers",
                     "mae_decoder_dim", "mae_heads", "ff_mult", "aicl_k", "head_hidden"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("embed_kernel", "head_kernel"):
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise bad(name, "must be a positive odd number (keeps T unchanged)")
        if self.d_model % self.fusion_heads:
            raise bad("d_model", f"must be divisible by fusion_heads={self.fusion_heads}")
        if self.d_model % self.mae_heads:
            raise bad("d_model", f"must be divisible by mae_heads={self.mae_heads}")
        if self.mae_decoder_dim % self.mae_heads:
            raise bad("mae_decoder_dim", f"must be divisible by mae_heads={self.mae_heads}")
        if self.fdn_target not in ("embedding", "input"):
            raise bad("fdn_target", "must be 'embedding' or 'input'")
        if self.fdn_view not in ("shared", "own"):
            raise bad("fdn_view", "must be 'shared' or 'own'")
        if self.fdn_view == "own" and self.fdn_target != "input":
            raise bad("fdn_view", "'own' reconstructs the standardised input, so it needs "
                                  "fdn_target='input'")
        if self.input_contrast not in ("none", "append", "replace"):
            raise bad("input_contrast", "must be one of 'none', 'append', 'replace'")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise bad("mask_ratio", "must be in [0, 1): at least one frame stays visible")
        if self.n_inference_masks < 0 or self.n_inference_masks == 1:
            raise bad("n_inference_masks", "must be 0 (automatic) or >= 2")
        if not 0.0 < self.mil_topk_ratio <= 1.0:
            raise bad("mil_topk_ratio", "must be in (0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "must be in [0, 1)")
        if self.deviation_window_statistic not in DEVIATION_WINDOW_STATISTICS:
            raise bad("deviation_window_statistic", "must be 'mean' or 'median'")
        for name in ("visual_deviation_view", "audio_deviation_view"):
            if getattr(self, name) not in DEVIATION_VIEWS:
                raise bad(name, f"must be one of {DEVIATION_VIEWS}")
        if self.av_sync_agreement not in AV_SYNC_AGREEMENTS:
            raise bad("av_sync_agreement", f"must be one of {AV_SYNC_AGREEMENTS}")
        for name in ("aicl_margin", "frame_negative_weight", "deviation_scorer_weight", "cls_main_weight", "cls_aux_weight", "recon_weight",
                     "kl_weight", "aicl_weight"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")

    @property
    def fused_dim(self) -> int:
        """Width of F_m: [F_v, F_a, enhanced F_v, enhanced F_a] concatenated."""
        return 4 * self.d_model

    @property
    def aicl_active(self) -> bool:
        """AICL needs reconstruction errors, so it runs only with the FDN."""
        return self.use_fdn and self.use_aicl

    @property
    def mtlr_active(self) -> bool:
        """MTLR heads read the reconstructed streams, so they run only with the FDN."""
        return self.use_fdn and self.use_mtlr

    @property
    def inference_mask_count(self) -> int:
        """Number of fixed complementary masks used for deterministic reconstruction."""
        if self.n_inference_masks:
            return self.n_inference_masks
        # each mask keeps about (1 - rho) of the frames visible, as in training
        return max(2, math.ceil(1.0 / (1.0 - self.mask_ratio) - 1e-9))
