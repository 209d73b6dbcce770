"""Frame-evidence calibration (percentiles among authentic training frames) and the clip deviation."""
import pytest
import torch

from model.evidence import ErrorCalibration


def test_unset_calibration_gives_zero_evidence():
    assert torch.equal(ErrorCalibration()(torch.tensor([[1.0, 5.0]])), torch.zeros(1, 2))


def test_percentiles_of_a_uniform_reference():
    cal = ErrorCalibration()
    cal.set_reference(torch.linspace(0.0, 1.0, 1001))
    got = cal(torch.tensor([[-1.0, 0.0, 0.25, 0.5, 0.9, 1.0, 7.0]]))
    expected = torch.tensor([[0.0, 0.0, 0.25, 0.5, 0.9, 1.0, 1.0]])
    assert torch.allclose(got, expected, atol=1e-3)


def test_reference_travels_in_the_state_dict_and_old_checkpoints_load_unset():
    cal = ErrorCalibration()
    cal.set_reference(torch.arange(10.0))
    loaded = ErrorCalibration()
    loaded.load_state_dict(cal.state_dict())
    errors = torch.tensor([[2.5, 9.0]])
    assert torch.equal(loaded(errors), cal(errors))
    old = ErrorCalibration()
    old.load_state_dict({})  # a checkpoint from before calibration: stays unset
    assert not bool(old.is_set)


def test_non_finite_reference_is_refused():
    import pytest

    with pytest.raises(ValueError, match="finite"):
        ErrorCalibration().set_reference(torch.tensor([1.0, float("nan")]))


def test_clip_deviation_is_the_distance_from_the_clip_median_over_sqrt_width():
    from model.evidence import clip_deviation

    # 4 channels; frames 0-2 equal (the median), frame 3 off by 2 in every channel,
    # frame 4 is padding
    x = torch.zeros(1, 5, 4)
    x[0, 3] = 2.0
    x[0, 4] = 100.0
    mask = torch.tensor([[True, True, True, True, False]])
    got = clip_deviation(x, mask)
    # frame 3: sqrt(4 * 2^2) / sqrt(4) = 2; padding: 0
    assert torch.allclose(got, torch.tensor([[0.0, 0.0, 0.0, 2.0, 0.0]]))


def test_predict_carries_the_untrained_deviation_and_its_calibration():
    from model.config import ModelConfig
    from model.rtdeeploc import RTDeepLoc

    torch.manual_seed(0)
    model = RTDeepLoc(ModelConfig(d_model=16, head_hidden=16, mae_decoder_dim=16), 6, 3)
    visual, audio = torch.zeros(1, 8, 6), torch.zeros(1, 8, 3)
    visual[0, 5] = 3.0  # one visual frame off the clip's median
    mask = torch.ones(1, 8, dtype=torch.bool)
    pred = model.predict(visual, audio, mask)
    assert pred.visual_deviation[0].argmax().item() == 5
    assert float(pred.visual_deviation[0, 5]) == pytest.approx(3.0)
    assert torch.equal(pred.audio_deviation, torch.zeros(1, 8))
    assert torch.equal(pred.visual_deviation_evidence, torch.zeros(1, 8))  # reference unset
    model.visual_deviation_calibration.set_reference(torch.linspace(0.0, 2.0, 101))
    evidence = model.predict(visual, audio, mask).visual_deviation_evidence[0]
    assert float(evidence[5]) == 1.0 and float(evidence[0]) == 0.0
