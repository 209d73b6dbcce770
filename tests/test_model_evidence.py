"""Reconstruction-error calibration: percentiles among authentic training errors."""
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
