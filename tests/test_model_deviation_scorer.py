"""The learned deviation scorer (model/deviation_scorer.py) and its place in the model."""
import numpy as np
import pytest
import torch

from model.deviation_scorer import (DeviationScorer, deviation_mil_loss, deviation_views,
                                    masked_moving_average, masked_moving_median,
                                    window_deviation_views)
from model.rtdeeploc import build_model
from model_fixtures import one_thread, tiny_config  # noqa: F401 (one_thread: fixture)
from pipeline.metrics import rank_auc
from test_model_rtdeeploc import CA, CV, LABELS_, LENGTHS, make_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_moving_average_counts_valid_frames_only():
    x = torch.arange(1.0, 8.0).reshape(1, 7, 1)  # frames 1..7, the last two padding
    mask = torch.tensor([[True] * 5 + [False] * 2])
    got = masked_moving_average(x * mask[..., None], mask, 3)[0, :, 0]
    valid = [1.0, 2.0, 3.0, 4.0, 5.0]
    expected = [np.mean(valid[max(0, t - 1):t + 2]) for t in range(5)] + [0.0, 0.0]
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float32))


def test_moving_median_counts_valid_frames_only_and_keeps_a_step_where_it_is():
    x = torch.tensor([1.0, 9.0, 2.0, 3.0, 4.0, 7.0, 7.0]).reshape(1, 7, 1)  # last two padding
    mask = torch.tensor([[True] * 5 + [False] * 2])
    got = masked_moving_median(x, mask, 3)[0, :, 0]
    # frame 0 sees (1, 9): the lower middle; frame 4 sees (3, 4) and not the padding's 7
    assert got.tolist() == [1.0, 2.0, 3.0, 3.0, 3.0, 0.0, 0.0]
    # a span of 6 frames at 1 in zeros: the 5-frame median's ends stay on the span's, where
    # the mean's spread 2 frames out on each side (what the median was chosen for)
    step = torch.zeros(1, 20, 1)
    step[0, 8:14] = 1.0
    full = torch.ones(1, 20, dtype=torch.bool)
    def marked(values):
        return torch.nonzero(values[0, :, 0] > 0.1).flatten().tolist()

    assert marked(masked_moving_median(step, full, 5)) == list(range(8, 14))
    assert marked(masked_moving_average(step, full, 5)) == list(range(6, 16))


@pytest.mark.parametrize("statistic", ["median", "mean"])
def test_padding_does_not_change_the_views_of_valid_frames(statistic):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 9, 4, generator=g)
    alone = deviation_views(x, torch.ones(1, 9, dtype=torch.bool), statistic)
    padded_x = torch.cat([x, 50 * torch.ones(1, 6, 4)], dim=1)
    mask = torch.arange(15)[None] < 9
    padded = deviation_views(padded_x, mask, statistic)
    assert torch.allclose(padded[:, :9], alone, atol=1e-6)
    assert torch.equal(padded[:, 9:], torch.zeros_like(padded[:, 9:]))


def test_a_scorer_from_before_the_median_keeps_the_moving_averages_it_was_trained_on():
    g = torch.Generator().manual_seed(2)
    x, mask = torch.randn(2, 30, 4, generator=g), torch.ones(2, 30, dtype=torch.bool)
    new = DeviationScorer(4, statistic="median")
    with torch.no_grad():
        new.weight.normal_(generator=g)
    assert bool(new.window_median) and bool(DeviationScorer(4).window_median)  # median by default
    old = DeviationScorer(4, statistic="median")
    old.load_state_dict({k: v for k, v in new.state_dict().items() if k != "window_median"})
    assert not bool(old.window_median)
    reference = DeviationScorer(4, statistic="mean")
    reference.load_state_dict({**new.state_dict(), "window_median": torch.tensor(False)})
    torch.testing.assert_close(old(x, mask), reference(x, mask))
    assert not torch.allclose(old(x, mask), new(x, mask))
    renewed = DeviationScorer(4, statistic="mean")
    renewed.load_state_dict(new.state_dict())  # a checkpoint that says median is read as median
    torch.testing.assert_close(renewed(x, mask), new(x, mask))
    with pytest.raises(ValueError, match="statistic"):
        DeviationScorer(4, statistic="mode")


def test_scorer_learns_a_span_that_deviates_either_way_from_video_labels_only():
    """Fake videos: a span of dimension 0 shifted up or down (random sign); the rest is noise
    in every dimension. Trained on video labels, the frame scores must mark the span."""
    g = torch.Generator().manual_seed(1)
    n, t, c = 64, 40, 5
    x = torch.randn(n, t, c, generator=g)
    fake = torch.arange(n) % 2 == 1
    spans = []
    for i in range(n):
        start = int(torch.randint(0, t - 8, (1,), generator=g))
        spans.append((start, start + 8))
        if fake[i]:
            sign = 1.0 if torch.rand(1, generator=g) < 0.5 else -1.0
            x[i, start:start + 8, 0] += 3.0 * sign
    mask = torch.ones(n, t, dtype=torch.bool)
    scorer = DeviationScorer(c)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=0.05)
    for _ in range(150):
        loss = deviation_mil_loss(scorer(x, mask), mask, fake, 0.125)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        scores = scorer(x, mask)
    aucs = []
    for i in torch.nonzero(fake).flatten().tolist():
        labels = np.zeros(t, bool)
        labels[spans[i][0]:spans[i][1]] = True
        aucs.append(rank_auc(labels, scores[i].numpy()))
    assert np.mean(aucs) > 0.95


def test_the_network_trains_exactly_as_without_the_scorer():
    """Same seed, one AdamW step on the same batch: every parameter the model without the
    scorer has is bit-identical in the model with it (no gradient reaches the network, no
    random draw is spent on the scorer)."""
    visual, audio, mask, labels = make_batch(LENGTHS, LABELS_)
    models = []
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = build_model(tiny_config(deviation_scorer_weight=weight), CV, CA)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        torch.manual_seed(1)
        terms = model.losses(model(visual, audio, mask, torch.Generator().manual_seed(0)), labels)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        models.append((model, terms))
    (without, terms_without), (with_scorer, terms_with) = models
    shared = dict(with_scorer.named_parameters())
    for name, param in without.named_parameters():
        assert torch.equal(param, shared[name]), name
    assert float(terms_with["deviation"]) > 0 and float(terms_without["deviation"]) == 0
    prediction = with_scorer.predict(visual, audio, mask)
    assert prediction.visual_learned_deviation.shape == mask.shape
    assert torch.equal(prediction.visual_learned_deviation * ~mask, torch.zeros(mask.shape))
    assert torch.equal(without.predict(visual, audio, mask).audio_learned_deviation,
                       torch.zeros(mask.shape))


def test_the_model_config_chooses_the_scorers_window_statistic():
    median = build_model(tiny_config(deviation_scorer_weight=1.0), CV, CA)  # the default
    mean = build_model(tiny_config(deviation_scorer_weight=1.0, deviation_window_statistic="mean"), CV, CA)
    assert all(bool(s.window_median) for s in median.deviation_scorers.values())
    assert not any(bool(s.window_median) for s in mean.deviation_scorers.values())
    with pytest.raises(ValueError, match="deviation_window_statistic"):
        tiny_config(deviation_window_statistic="mode")


def test_window_deviations_let_natural_variation_cancel_and_keep_a_shifted_span():
    """Speech-like: a dimension that varies from frame to frame around its level (a pattern
    of 5 frames summing to 0: the natural variation) with a span whose level shifts by 0.5
    (another voice). The deviation of each frame sees the variation everywhere; the
    deviation of 5-frame mean frames sees the shift."""
    t = 40
    x = torch.tensor([2.0, -1.0, -1.0, 1.0, -1.0] * (t // 5)).reshape(1, t, 1)
    x[0, 15:25] += 0.5
    full = torch.ones(1, t, dtype=torch.bool)
    views = window_deviation_views(x, full)  # [1, T, 4, 1]: windows 1, 5, 15, 25
    assert views.shape == (1, t, 4, 1)
    # window 1 is |frame - clip median|, the first view of the deviation windows too
    torch.testing.assert_close(views[:, :, 0], deviation_views(x, full)[:, :, 0])
    labels = np.zeros(t, bool)
    labels[15:25] = True
    assert rank_auc(labels, views[0, :, 0, 0].numpy()) < 0.7  # the alternation hides it
    assert rank_auc(labels, views[0, :, 1, 0].numpy()) > 0.9  # the 5-frame means show it
    # padding changes nothing on valid frames, and stays 0
    padded = window_deviation_views(torch.cat([x, 50 * torch.ones(1, 6, 1)], dim=1),
                                     torch.arange(t + 6)[None] < t)
    torch.testing.assert_close(padded[:, :t], views)
    assert torch.equal(padded[:, t:], torch.zeros_like(padded[:, t:]))


def test_the_model_config_chooses_each_scorers_view_and_old_scorers_keep_theirs():
    model = build_model(tiny_config(deviation_scorer_weight=1.0), CV, CA)  # the defaults
    assert not bool(model.deviation_scorers["visual"].window_means)
    assert bool(model.deviation_scorers["audio"].window_means)
    assert model.deviation_scorers["audio"].weight.shape == (4, CA)
    assert model.deviation_scorers["visual"].weight.shape == (3, CV)
    swapped = build_model(tiny_config(deviation_scorer_weight=1.0, visual_deviation_view="window_deviations",
                                      audio_deviation_view="deviation_windows"), CV, CA)
    assert bool(swapped.deviation_scorers["visual"].window_means)
    assert not bool(swapped.deviation_scorers["audio"].window_means)
    with pytest.raises(ValueError, match="audio_deviation_view"):
        tiny_config(audio_deviation_view="spectrum")
    # a scorer saved before the view existed read the deviation windows
    old = DeviationScorer(4, view="window_deviations")
    state = {k: v for k, v in DeviationScorer(4).state_dict().items() if k != "window_means"}
    old_shape = DeviationScorer(4)
    old_shape.load_state_dict(state)
    assert not bool(old_shape.window_means)
    with pytest.raises(RuntimeError):  # the weights of the other view do not fit
        old.load_state_dict(state)


class _Cache:
    """What calibrate_frame_evidence reads of a feature cache: settings and read()."""

    def __init__(self, clips: dict):
        self.clips, self.settings = clips, {"visual": {"kind": "test"}, "audio": {"kind": "test"}}

    def read(self, key):
        return self.clips[key]


def test_the_trainer_calibrates_the_audio_learned_deviation_on_authentic_training_clips():
    from data.records import VideoRecord
    from pipeline.train import calibrate_frame_evidence

    rng = np.random.default_rng(3)
    clips = {f"{i}.mp4": (rng.normal(size=(30, CV)).astype(np.float32),
                          rng.normal(size=(30, CA)).astype(np.float32)) for i in range(4)}
    records = [VideoRecord(file=key, split="train", duration=1.2, fps=25.0, n_frames=30, label=0,
                           fake_segments=()) for key in clips]
    model = build_model(tiny_config(deviation_scorer_weight=1.0), CV, CA)
    with torch.no_grad():
        model.deviation_scorers["audio"].weight.normal_(generator=torch.Generator().manual_seed(0))
    visual, audio = (torch.as_tensor(a)[None] for a in clips["0.mp4"])
    mask = torch.ones(1, 30, dtype=torch.bool)
    # until the trainer sets the reference the percentile is 0 everywhere
    assert torch.equal(model.predict(visual, audio, mask).audio_learned_deviation_evidence,
                       torch.zeros(1, 30))
    calibrate_frame_evidence(model, _Cache(clips), records, torch.device("cpu"))
    assert bool(model.audio_learned_calibration.is_set)
    prediction = model.predict(visual, audio, mask)
    evidence = prediction.audio_learned_deviation_evidence[0].numpy()
    # a percentile among the same clips' frames: in [0, 1], in the probability's order
    assert evidence.min() >= 0.0 and evidence.max() <= 1.0 and evidence.max() > 0.5
    order = np.argsort(prediction.audio_learned_deviation[0].numpy(), kind="stable")
    assert np.all(np.diff(evidence[order]) >= -1e-6)
