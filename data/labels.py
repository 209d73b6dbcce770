"""The label layout: the four video-level classes of the paper (Sec. 3.1) as two modality bits.

    label = 1 * visual_modified + 2 * audio_modified
    0 real, 1 visual_only, 2 audio_only, 3 both

The order is part of every checkpoint. Everything that turns a label into "which modality
was forged" (metadata, MTLR targets, frame scores, routing, video scores, the synthetic
set) asks this module, so the layout is written down once.
"""
from __future__ import annotations

from typing import Sequence

LABELS: tuple[str, ...] = ("real", "visual_only", "audio_only", "both")
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

REAL = 0  # index of the authentic class
MODALITY_BITS: dict[str, int] = {"visual": 1, "audio": 2}  # bit of each modality in a label


def label_from_flags(visual_modified: bool, audio_modified: bool) -> int:
    """4-class label index from the two per-modality 'modified' flags."""
    return MODALITY_BITS["visual"] * int(bool(visual_modified)) + \
        MODALITY_BITS["audio"] * int(bool(audio_modified))


def is_modified(label, modality: str):
    """Whether `label` marks `modality` as forged; works on an int or an integer tensor / array
    of labels (returns the same kind, truthy where modified)."""
    return label & MODALITY_BITS[modality]


def classes_modifying(modality: str) -> tuple[int, ...]:
    """Class indices in which `modality` is forged: visual (1, 3), audio (2, 3)."""
    return tuple(i for i in range(len(LABELS)) if is_modified(i, modality))


def fake_probability(class_probs: Sequence[float]) -> float:
    """Probability that anything in the video is forged: 1 - p(real)."""
    return 1.0 - float(class_probs[REAL])


def modality_probabilities(class_probs: Sequence[float]) -> dict[str, float]:
    """P(modality forged) per modality: the sum over the classes that modify it."""
    return {modality: sum(float(class_probs[i]) for i in classes_modifying(modality))
            for modality in MODALITY_BITS}


def branch_of(label: int) -> str:
    """The frame-score branch that localizes a video of class `label`: the one forged
    modality, else the joint branch (both modalities, or none: a real video still gets
    proposals so that recall is measurable)."""
    forged = [m for m in MODALITY_BITS if is_modified(label, m)]
    return forged[0] if len(forged) == 1 else "joint"
