"""What made a set of features: the extractor settings a cache records and a checkpoint keeps.

Settings are plain JSON, `{"visual": {...}, "audio": {...}}`, each part an extractor's
`.settings` (extractors/build.py): its `kind`, `dim`, `pretrained` flag and every value
that changes the features. `FeatureSettings` wraps them with the three questions every
command asks: what are they (`describe`), how do two differ (`difference`), and may a model
trained on one be fed the other (`check_compatible`, the one rule for predict, tune, train
resume and localize).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

PARTS = ("visual", "audio")
WEIGHT_FREE_KINDS = ("lowlevel", "logmel")  # extractors without learned weights
MISSING = "<missing>"


def backbone_source(part: Mapping[str, Any]) -> str:
    """"weight-free", "pretrained" or "random": where one extractor's features come from.
    The one place that decides it (cache summaries, localize notes, the demo's choice)."""
    if part.get("kind") in WEIGHT_FREE_KINDS:
        return "weight-free"
    return "pretrained" if part.get("pretrained") else "random"


def _flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(mapping, Mapping):
        return {prefix or "<root>": mapping}
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def settings_difference(a: Mapping, b: Mapping) -> list[str]:
    """Dotted keys whose values differ between two settings dicts (missing counts)."""
    fa, fb = _flatten(a), _flatten(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, MISSING) != fb.get(k, MISSING))


def describe_settings_difference(a: Mapping, b: Mapping, shown: int = 4) -> str:
    """`visual.name: 'tsn' vs 'lowlevel', ...` for the first `shown` differing keys."""
    diff = settings_difference(a, b)
    fa, fb = _flatten(a), _flatten(b)
    text = ", ".join(f"{k}: {fa.get(k, MISSING)!r} vs {fb.get(k, MISSING)!r}" for k in diff[:shown])
    return text + (f" and {len(diff) - shown} more" if len(diff) > shown else "")


@dataclass(frozen=True)
class FeatureSettings:
    """The extractor settings of one set of features (a cache, a checkpoint, live extractors)."""
    settings: Mapping[str, Any] = field(default_factory=dict)  # {"visual": {...}, "audio": {...}}

    @classmethod
    def of_extractors(cls, visual, audio) -> "FeatureSettings":
        return cls({"visual": dict(visual.settings), "audio": dict(audio.settings)})

    def as_dict(self) -> dict:
        """Plain JSON types, as caches and checkpoints store them."""
        return {key: dict(value) if isinstance(value, Mapping) else value
                for key, value in self.settings.items()}

    def part(self, name: str) -> Mapping[str, Any]:
        value = self.settings.get(name, {})
        return value if isinstance(value, Mapping) else {}

    def describe(self) -> str:
        """One line saying which backbones made the features and whether they were pretrained."""
        parts = []
        for name in PARTS:
            part = self.part(name)
            kind = part.get("kind", "?")
            source = backbone_source(part)
            if source == "weight-free":
                parts.append(f"{name}: {part.get('name', kind)} (weight-free)")
            elif source == "pretrained":
                parts.append(f"{name}: {kind} {part.get('weights_id') or part.get('name')} (pretrained)")
            else:
                parts.append(f"{name}: {kind} with RANDOM weights (not pretrained; features carry "
                             "little signal)")
        return "; ".join(parts)

    def difference(self, other: "FeatureSettings") -> list[str]:
        """Dotted keys that differ and change the features. A TSN weight file found at another
        path is the same weights when its recorded sha256 matches, so its path is not one."""
        diff = settings_difference(self.settings, other.settings)
        digest = self.part("visual").get("weights_sha256")
        if digest is not None and digest == other.part("visual").get("weights_sha256"):
            diff = [key for key in diff if key != "visual.weights"]
        return diff

    def check_compatible(self, other: "FeatureSettings", *, label: str, other_label: str) -> None:
        """ValueError naming the differing fields when features made with `other` (e.g. a
        cache, `other_label`) cannot be fed to a model trained on these (`label`)."""
        diff = self.difference(other)
        if diff:
            flat_self, flat_other = _flatten(self.settings), _flatten(other.settings)
            shown = ", ".join(f"{k}: {flat_self.get(k, MISSING)!r} vs {flat_other.get(k, MISSING)!r}"
                              for k in diff[:4])
            more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
            raise ValueError(
                f"{other_label}: extractor settings differ from those {label} was trained on "
                f"({label} vs {other_label}: {shown}{more}); re-extract the features with "
                f"the checkpoint's settings")
