"""The composed model (model/rtdeeploc.py): shapes, determinism, gradients, ablations, training."""
import dataclasses

import pytest
import torch

from data.config import from_dict, to_dict
from model.config import ModelConfig
from model.mtlr import AUX_HEADS
from model.rtdeeploc import Prediction, RTDeepLocOutput, build_model
from model_fixtures import one_thread, tiny_config  # noqa: F401 (one_thread: fixture)
from numerics import FP32_DEEP, assert_close_to_scale

pytestmark = pytest.mark.usefixtures("one_thread")

CV, CA = 12, 6


def make_batch(lengths, labels, seed=0, total=None):
    """Smooth random features; forged modalities get a shifted block in the middle."""
    g = torch.Generator().manual_seed(seed)
    total = total or max(lengths)
    b = len(lengths)
    visual = torch.randn(b, total, CV, generator=g).cumsum(1) * 0.3
    audio = torch.randn(b, total, CA, generator=g).cumsum(1) * 0.3
    mask = torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]
    visual_shift = torch.randn(CV, generator=torch.Generator().manual_seed(99)) * 2.0
    audio_shift = torch.randn(CA, generator=torch.Generator().manual_seed(98)) * 2.0
    for i, (n, label) in enumerate(zip(lengths, labels)):
        segment = slice(n // 3, n // 3 + max(2, n // 4))
        if label & 1:
            visual[i, segment] += visual_shift
        if label & 2:
            audio[i, segment] += audio_shift
    visual, audio = visual * mask[..., None], audio * mask[..., None]
    return visual, audio, mask, torch.tensor(labels)


LENGTHS, LABELS_ = [16, 11, 16, 7, 13, 16], [0, 1, 0, 2, 3, 0]


def test_forward_and_predict_shapes_with_variable_lengths():
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, CA)
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_)
    out = model(visual, audio, mask, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, RTDeepLocOutput)
    assert out.main_frame_logits.shape == (6, 16, 4) and out.main_video_logits.shape == (6, 4)
    assert set(out.aux_video_logits) == set(AUX_HEADS)
    assert out.visual_reconstruction.recon.shape == (6, 16, 8)
    terms = model.losses(out, labels)
    assert {"total", "cls", "cls_main", "recon", "kl", "aicl"} <= set(terms)
    assert all(torch.isfinite(t) for t in terms.values())

    pred = model.predict(visual, audio, mask)
    assert isinstance(pred, Prediction)
    assert pred.class_probs.shape == (6, 4)
    assert torch.allclose(pred.class_probs.sum(1), torch.ones(6))
    for name in ("visual_scores", "audio_scores", "joint_scores", "visual_recon_error",
                 "audio_recon_error"):
        scores = getattr(pred, name)
        assert scores.shape == (6, 16)
        assert (scores[~mask] == 0).all(), f"{name} must be zero on padding"
    for name in ("visual_scores", "audio_scores", "joint_scores"):
        assert (getattr(pred, name) >= 0).all() and (getattr(pred, name) <= 1).all()
    one = pred.video(3)
    assert one["joint_scores"].shape == (7,) and one["class_probs"].shape == (4,)


def test_total_is_the_weighted_sum_of_eq_4():
    cfg = tiny_config(cls_main_weight=0.7, cls_aux_weight=0.2, recon_weight=0.3,
                      kl_weight=0.4, aicl_weight=0.5)
    model = build_model(cfg, CV, CA)
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_)
    t = model.losses(model(visual, audio, mask, torch.Generator().manual_seed(1)), labels)
    cls = 0.7 * t["cls_main"] + 0.2 * sum(t[f"cls_{n}"] for n in AUX_HEADS)
    assert t["cls"].item() == pytest.approx(cls.item(), rel=1e-5)
    total = cls + 0.3 * t["recon"] + 0.4 * t["kl"] + 0.5 * t["aicl"]
    assert t["total"].item() == pytest.approx(total.item(), rel=1e-5)


def test_predict_is_deterministic_and_restores_training_mode():
    model = build_model(tiny_config(dropout=0.3), CV, CA).train()
    visual, audio, mask, _ = make_batch(LENGTHS, LABELS_)
    torch.manual_seed(1)
    first = model.predict(visual, audio, mask)
    torch.manual_seed(2)
    second = model.predict(visual, audio, mask)
    for f in dataclasses.fields(Prediction):
        assert torch.equal(getattr(first, f.name), getattr(second, f.name)), f.name
    assert model.training


def test_predict_of_a_video_does_not_depend_on_its_batch_or_padding():
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, CA)
    visual, audio, mask, _ = make_batch(LENGTHS, LABELS_)
    batch = model.predict(visual, audio, mask)
    n = LENGTHS[3]
    alone = model.predict(visual[3:4, :n], audio[3:4, :n], mask[3:4, :n])
    # other batch shapes pick other kernel blockings: equal up to float32 rounding
    assert_close_to_scale(batch.joint_scores[3, :n], alone.joint_scores[0], FP32_DEEP)
    assert_close_to_scale(batch.visual_recon_error[3, :n], alone.visual_recon_error[0], FP32_DEEP)
    assert_close_to_scale(batch.class_probs[3], alone.class_probs[0], FP32_DEEP)


def test_no_gradient_from_fake_videos_into_the_reconstruction_loss():
    model = build_model(tiny_config(), CV, CA).train()
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_)
    visual.requires_grad_(True)
    audio.requires_grad_(True)
    recon = model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)),
                         labels)["recon"]
    recon.backward()
    fake, real = labels != 0, labels == 0
    assert (visual.grad[fake] == 0).all() and (audio.grad[fake] == 0).all()
    assert (visual.grad[real].abs().sum(dim=(1, 2)) > 0).all()


def test_batch_without_real_videos_has_zero_recon_and_aicl():
    model = build_model(tiny_config(), CV, CA)
    visual, audio, mask, labels = make_batch([10, 8, 9], [1, 2, 3])
    terms = model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)), labels)
    assert terms["recon"].item() == 0.0 and terms["aicl"].item() == 0.0
    assert torch.isfinite(terms["total"])
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


AUX_KEYS = [f"cls_{n}" for n in AUX_HEADS]


@pytest.mark.parametrize("switches, zero_keys", [
    (dict(), ["frame_negative", "deviation"]),
    (dict(use_fdn=False), ["recon", "kl", "aicl", "frame_negative", "deviation", *AUX_KEYS]),
    (dict(use_aicl=False), ["aicl", "frame_negative", "deviation"]),
    (dict(use_mtlr=False), ["kl", "frame_negative", "deviation", *AUX_KEYS]),
    (dict(frame_negative_weight=0.5), ["deviation"]),
    (dict(deviation_scorer_weight=1.0), ["frame_negative"]),
])
def test_ablation_switches_decide_which_terms_are_non_zero(switches, zero_keys):
    torch.manual_seed(0)
    # a large margin keeps the AICL hinge active, so "non-zero" is a property of the switch
    model = build_model(tiny_config(aicl_margin=100.0, **switches), CV, CA)
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_)
    terms = model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)), labels)
    for key, value in terms.items():
        if key in zero_keys:
            assert value.item() == 0.0, key
        else:
            assert value.item() > 0.0, key
    terms["total"].backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == [], f"parameters without gradient: {unused}"
    pred = model.predict(visual, audio, mask)
    if not model.config.use_fdn:
        assert (pred.visual_recon_error == 0).all() and not hasattr(model, "visual_fdn")


def test_a_few_optimizer_steps_lower_the_loss():
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, CA)
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            return model.losses(model(visual, audio, mask), labels)["total"].item()

    before = eval_loss()
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(25):
        optimizer.zero_grad()
        model.losses(model(visual, audio, mask, generator), labels)["total"].backward()
        optimizer.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def test_config_round_trips_through_plain_types_and_rejects_bad_values():
    cfg = tiny_config(use_aicl=False, mask_ratio=0.5)
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="mask_ratio"):
        ModelConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match="d_model"):
        ModelConfig(d_model=10, fusion_heads=4)
    with pytest.raises(ValueError, match="unknown key"):
        from_dict(ModelConfig, {"masking": 0.5})
    assert not ModelConfig(use_fdn=False).aicl_active
    assert not ModelConfig(use_fdn=False).mtlr_active


def test_bad_inputs_raise_errors_naming_the_problem():
    model = build_model(tiny_config(), CV, CA)
    visual, audio, mask, labels = make_batch([5, 4], [0, 1])
    with pytest.raises(ValueError, match="visual feature dim"):
        model(visual[..., :5], audio, mask)
    with pytest.raises(ValueError, match="at least one valid frame"):
        model(visual, audio, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="labels"):
        model.losses(model(visual, audio, mask), torch.tensor([0, 4]))


def test_authentic_frame_term_reaches_every_frame_of_real_videos():
    """Top-K MIL gives gradient to the K highest frames only; the authentic-frame term gives
    one to every valid frame of a real video, and none to padding."""
    torch.manual_seed(0)
    model = build_model(tiny_config(frame_negative_weight=1.0, use_fdn=False, dropout=0.0), CV, CA)
    visual, audio, mask, labels = make_batch([16, 12], [0, 0])
    out = model(visual, audio, mask)
    out.main_frame_logits.retain_grad()
    model.losses(out, labels)["cls_main"].backward(retain_graph=True)
    topk_touched = out.main_frame_logits.grad.abs().sum(dim=-1) > 0  # [B, T]
    # each of the 4 classes ranks on its own: at most 4 x K frames, K = floor(16/8), floor(12/8)
    assert int(topk_touched.sum()) <= 4 * (2 + 1) < int(mask.sum())
    out.main_frame_logits.grad = None
    model.losses(out, labels)["frame_negative"].backward()
    touched = out.main_frame_logits.grad.abs().sum(dim=-1) > 0
    assert bool(touched[mask].all())
    assert not bool(touched[~mask].any())


@pytest.mark.parametrize("view", ["shared", "own"])
def test_only_the_reconstruction_loss_of_real_videos_trains_an_own_view_fdn(view):
    """fdn_view='own' is genuine-focused: on a batch of fakes only (no Eq. 2 term) no
    gradient of the total loss reaches the FDN, though the MTLR heads read its stream; the
    shared view, the paper's, gets the classification gradients through those heads."""
    cfg = tiny_config(fdn_target="input", fdn_view=view)
    model = build_model(cfg, CV, CA).train()
    visual, audio, mask, labels = make_batch([16, 11, 13], [1, 2, 3])
    model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)), labels)["total"].backward()
    fdn_grads = [p.grad for name, p in model.named_parameters() if "_fdn." in name]
    reached = any(g is not None and g.abs().sum() > 0 for g in fdn_grads)
    assert reached == (view == "shared")
    # with a real video in the batch, Eq. 2 does train the own view
    model.zero_grad()
    visual, audio, mask, labels = make_batch([16, 11, 13], [0, 2, 3])
    model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)), labels)["total"].backward()
    assert model.visual_fdn.embed is None or model.visual_fdn.embed.weight.grad.abs().sum() > 0


def test_own_view_fdn_reads_the_inputs_before_the_clip_contrast():
    """With input_contrast 'replace' the network sees clip deviations only, the own-view FDN
    the standardised input: a constant offset of a whole clip changes its error."""
    cfg = tiny_config(fdn_target="input", fdn_view="own", input_contrast="replace")
    model = build_model(cfg, CV, CA).eval()
    visual, audio, mask, _ = make_batch([16], [0])
    before = model.predict(visual, audio, mask)
    after = model.predict(visual + 3.0, audio, mask)
    assert not torch.allclose(before.visual_recon_error, after.visual_recon_error)
    # the heads read the contrast only: the offset leaves the main head's scores alone
    assert torch.allclose(before.joint_scores, after.joint_scores, atol=1e-5)


def test_fitted_buffers_are_every_calibration_and_fitted_cue_and_nothing_learned():
    # what rank 0 shares with the other DDP ranks after fitting them in validation
    model = build_model(tiny_config(deviation_scorer_weight=1.0), CV, CA)
    fitted = model.fitted_buffers()
    calibrations = {name.rsplit(".", 1)[0] for name in fitted if name.endswith("calibration.quantiles")}
    assert calibrations == {"visual_error_calibration", "audio_error_calibration",
                            "visual_deviation_calibration", "audio_deviation_calibration",
                            "sync_calibration", "detail_calibration", "audio_learned_calibration"}
    assert {"av_sync.visual_directions", "spectral_detail.coefficients"} <= set(fitted)
    state = model.state_dict()
    assert all(fitted[name].data_ptr() == state[name].data_ptr() for name in fitted)  # the model's own tensors, so a broadcast fills them in place
    learned = {name for name, _ in model.named_parameters()}
    assert not learned & set(fitted)
    assert not any(name.startswith(("visual_input_norm", "audio_input_norm", "deviation_scorers"))
                   for name in fitted)
