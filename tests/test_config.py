"""data.config: YAML and --set overrides into frozen dataclasses, unknown keys rejected."""
from dataclasses import dataclass, field

import pytest

from data.config import apply_overrides, from_dict, load_yaml, to_dict


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    steps: int = 3
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_round_trip_through_plain_dict():
    cfg = Outer(name="y", steps=7, inner=Inner(rate=0.25, sizes=(4,)))
    plain = to_dict(cfg)
    assert plain == {"name": "y", "steps": 7, "flag": False, "inner": {"rate": 0.25, "sizes": [4]}}
    assert from_dict(Outer, plain) == cfg


def test_unknown_key_names_source_and_key(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 2\nstpes: 3\n")
    with pytest.raises(ValueError, match=r"cfg.yaml.*stpes"):
        load_yaml(Outer, path)


def test_nested_unknown_key_is_located():
    with pytest.raises(ValueError, match=r"config\.inner.*bogus"):
        from_dict(Outer, {"inner": {"bogus": 1}})


def test_type_errors_are_reported():
    with pytest.raises(ValueError, match=r"config\.steps: expected int"):
        from_dict(Outer, {"steps": "many"})


def test_int_is_accepted_for_float_and_kept_float():
    assert from_dict(Inner, {"rate": 1}).rate == 1.0
    assert isinstance(from_dict(Inner, {"rate": 1}).rate, float)


def test_overrides_parse_yaml_scalars_and_dotted_keys():
    cfg = apply_overrides(Outer(), ["steps=5", "flag=true", "inner.rate=1e-3", "inner.sizes=[3, 4]"])
    assert cfg == Outer(steps=5, flag=True, inner=Inner(rate=1e-3, sizes=(3, 4)))


@pytest.mark.parametrize("bad", ["steps", "nope=1", "name.deep=1"])
def test_bad_overrides_are_refused(bad):
    with pytest.raises(ValueError, match="--set"):
        apply_overrides(Outer(), [bad])


def test_yaml_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml"):
        load_yaml(Outer, path)
