"""The audio-visual desynchrony (model/av_sync.py) and how the model carries it."""
import numpy as np
import torch

from model.av_sync import AVSync, pair_agreement
from model.rtdeeploc import build_model
from model_fixtures import one_thread, tiny_config  # noqa: F401 (one_thread: fixture)
from pipeline.metrics import rank_auc

CV, CA = 6, 4


def talking_clip(rng: np.random.Generator, frames: int, replaced: tuple[int, int] | None = None,
                 visual_dim: int = CV):
    """Visual and audio features that both follow one smooth hidden 'speech' signal (mixed
    into every dimension with fixed weights, plus noise); `replaced`: in these frames the
    audio follows another, independent signal instead (a dubbed span)."""
    mix_v = np.random.default_rng(100).normal(size=(1, visual_dim))
    mix_a = np.random.default_rng(101).normal(size=(1, CA))

    def speech():
        return np.convolve(rng.normal(size=frames + 4), np.ones(5) / 5, mode="valid")[:, None]  # [T, 1]

    said, other = speech(), speech()
    heard = said.copy()
    if replaced:
        heard[replaced[0]:replaced[1]] = other[replaced[0]:replaced[1]]
    visual = said * mix_v + 0.1 * rng.normal(size=(frames, visual_dim))
    audio = heard * mix_a + 0.1 * rng.normal(size=(frames, CA))
    return visual.astype(np.float32), audio.astype(np.float32)


def fitted_sync(seed: int = 0) -> AVSync:
    rng = np.random.default_rng(seed)
    sync = AVSync(CV, CA)
    clips = [talking_clip(rng, 80) for _ in range(30)]
    sync.fit(lambda: ((torch.tensor(v), torch.tensor(a)) for v, a in clips))
    return sync


def test_desynchrony_marks_the_span_where_the_sound_stops_following_the_picture():
    sync = fitted_sync()
    assert float(sync.correlations[0]) > 0.8  # the shared signal was found
    rng = np.random.default_rng(7)
    aucs = []
    for _ in range(5):
        visual, audio = talking_clip(rng, 90, replaced=(30, 60))
        desync = sync(torch.tensor(visual)[None], torch.tensor(audio)[None],
                      torch.ones(1, 90, dtype=torch.bool))[0]
        forged = np.zeros(90, bool)
        forged[30:60] = True
        aucs.append(rank_auc(forged, desync.numpy()))
    # a flipped sign would give about 0.05: the test catches an inverted evidence
    assert np.mean(aucs) > 0.9, aucs


def test_wide_inputs_are_reduced_to_their_principal_components_first():
    """A 40-d visual input (the shared signal in every dimension, plus noise) with at most 8
    kept: the fit keeps 8 principal directions and still finds the dubbed span."""
    rng = np.random.default_rng(11)
    clips = [talking_clip(rng, 80, visual_dim=40) for _ in range(30)]
    sync = AVSync(40, CA, max_input_dims=8)
    sync.fit(lambda: ((torch.tensor(v), torch.tensor(a)) for v, a in clips))
    assert tuple(sync.visual_basis.shape) == (40, 8) and tuple(sync.audio_basis.shape) == (CA, CA)
    assert torch.allclose(sync.visual_basis.T @ sync.visual_basis, torch.eye(8), atol=1e-5)
    visual, audio = talking_clip(rng, 90, replaced=(30, 60), visual_dim=40)
    desync = sync(torch.tensor(visual)[None], torch.tensor(audio)[None], torch.ones(1, 90, dtype=torch.bool))[0]
    forged = np.zeros(90, bool)
    forged[30:60] = True
    assert rank_auc(forged, desync.numpy()) > 0.9


def test_fit_is_deterministic_and_unfitted_gives_zeros():
    a, b = fitted_sync(), fitted_sync()
    for (name, x), (_, y) in zip(a.named_buffers(), b.named_buffers()):
        assert torch.equal(x, y), name
    fresh = AVSync(CV, CA)
    visual, audio = talking_clip(np.random.default_rng(1), 20)
    out = fresh(torch.tensor(visual)[None], torch.tensor(audio)[None], torch.ones(1, 20, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 20))
    assert list(fresh.parameters()) == []  # buffers only: nothing to train, no random draw


def test_model_predicts_the_fitted_desynchrony_on_valid_frames_only(one_thread):
    torch.manual_seed(0)
    model = build_model(tiny_config(), CV, CA)
    rng = np.random.default_rng(3)
    before = sum(p.numel() for p in model.parameters())
    clips = [talking_clip(rng, 60) for _ in range(20)]
    model.fit_av_sync(lambda: iter(clips))
    assert sum(p.numel() for p in model.parameters()) == before and bool(model.av_sync.is_set)
    model.sync_calibration.set_reference(np.linspace(-5, 5, 100))
    long_v, long_a = talking_clip(rng, 40, replaced=(10, 25))
    short_v, short_a = long_v[:30], long_a[:30]
    visual = torch.zeros(2, 40, CV)
    audio = torch.zeros(2, 40, CA)
    visual[0], audio[0] = torch.tensor(long_v), torch.tensor(long_a)
    visual[1, :30], audio[1, :30] = torch.tensor(short_v), torch.tensor(short_a)
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0] = True
    mask[1, :30] = True
    prediction = model.predict(visual, audio, mask)
    assert torch.equal(prediction.av_desync[1, 30:], torch.zeros(10))
    alone = model.predict(visual[1:, :30], audio[1:, :30], mask[1:, :30])
    torch.testing.assert_close(prediction.av_desync[1, :30], alone.av_desync[0])
    evidence = prediction.sync_evidence[0]
    assert float(evidence.min()) >= 0 and float(evidence.max()) <= 1
    # percentiles keep the order of the desynchrony
    order = torch.argsort(prediction.av_desync[0])
    assert bool((evidence[order].diff() >= 0).all())


def test_a_checkpoint_from_before_the_desynchrony_loads_with_it_unset(one_thread):
    model = build_model(tiny_config(), CV, CA)
    clips = [talking_clip(np.random.default_rng(4), 30) for _ in range(5)]
    model.fit_av_sync(lambda: iter(clips))
    old_state = {k: v for k, v in model.state_dict().items()
                 if not k.startswith(("av_sync.", "sync_calibration."))}
    reloaded = build_model(tiny_config(), CV, CA)
    reloaded.load_state_dict(old_state)
    assert not bool(reloaded.av_sync.is_set)
    visual, audio = talking_clip(np.random.default_rng(5), 12)
    prediction = reloaded.predict(torch.tensor(visual)[None], torch.tensor(audio)[None],
                                  torch.ones(1, 12, dtype=torch.bool))
    assert torch.equal(prediction.sync_evidence, torch.zeros(1, 12))


def test_likelihood_ratio_is_the_gaussian_pair_log_density_ratio():
    """Per canonical pair: log N2(u, v; rho) - log N(u) - log N(v), up to the constant
    -1/2 log(1 - rho^2), written out from the bivariate normal density."""
    rng = np.random.default_rng(2)
    u, v = torch.tensor(rng.normal(size=(50, 3))), torch.tensor(rng.normal(size=(50, 3)))
    rho = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)

    def log_normal2(x, y, r):
        return (-np.log(2 * np.pi) - 0.5 * np.log(1 - r * r)
                - (x * x - 2 * r * x * y + y * y) / (2 * (1 - r * r)))

    def log_normal(x):
        return -0.5 * np.log(2 * np.pi) - 0.5 * x * x

    ratio = log_normal2(u, v, rho) - log_normal(u) - log_normal(v) + 0.5 * np.log(1 - rho * rho)
    got = pair_agreement(u, v, rho / (1 - rho), rho, "likelihood_ratio")
    torch.testing.assert_close(got, ratio.sum(dim=1))
    torch.testing.assert_close(pair_agreement(u, v, rho / (1 - rho), rho, "product"),
                               (u * v * rho / (1 - rho)).sum(dim=1))


def test_likelihood_ratio_counts_one_stream_moving_alone_against_the_frame():
    """The product reads a frame where the picture moves and the sound is still as 0 ("no
    evidence"); the whole ratio reads it below a frame where both stay still."""
    rho = torch.tensor([0.8], dtype=torch.float64)
    weights = rho / (1 - rho)
    u = torch.tensor([[2.0], [0.0]], dtype=torch.float64)  # moving alone; both still
    v = torch.zeros(2, 1, dtype=torch.float64)
    product = pair_agreement(u, v, weights, rho, "product")
    ratio = pair_agreement(u, v, weights, rho, "likelihood_ratio")
    assert float(product[0]) == float(product[1]) == 0.0
    assert float(ratio[0]) < float(ratio[1]) == 0.0


def test_the_agreement_changes_no_buffer_and_both_mark_a_dubbed_span():
    sync = fitted_sync()
    rng = np.random.default_rng(7)
    clips = [talking_clip(rng, 90, replaced=(30, 60)) for _ in range(5)]
    forged = np.zeros(90, bool)
    forged[30:60] = True
    buffers = {k: v.clone() for k, v in sync.state_dict().items()}
    for agreement in ("product", "likelihood_ratio"):
        sync.agreement = agreement
        aucs = [rank_auc(forged, sync(torch.tensor(visual)[None], torch.tensor(audio)[None],
                                      torch.ones(1, 90, dtype=torch.bool))[0].numpy())
                for visual, audio in clips]
        assert np.mean(aucs) > 0.9, (agreement, aucs)  # inverted: about 0.05
    assert all(torch.equal(v, sync.state_dict()[k]) for k, v in buffers.items())


def test_the_model_builds_the_configured_agreement_and_rejects_others():
    import dataclasses

    import pytest

    assert build_model(tiny_config(), CV, CA).av_sync.agreement == "product"
    config = dataclasses.replace(tiny_config(), av_sync_agreement="likelihood_ratio")
    assert build_model(config, CV, CA).av_sync.agreement == "likelihood_ratio"
    with pytest.raises(ValueError, match="av_sync_agreement"):
        dataclasses.replace(tiny_config(), av_sync_agreement="cosine")
    with pytest.raises(ValueError, match="agreement"):
        AVSync(CV, CA, agreement="cosine")
