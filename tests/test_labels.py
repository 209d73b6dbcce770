"""data/labels.py: the four classes as two modality bits."""
import numpy as np

from data.labels import (LABELS, branch_of, classes_modifying, fake_probability, is_modified,
                         label_from_flags, modality_probabilities)


def test_classes_are_modality_bits():
    assert [label_from_flags(v, a) for v, a in ((0, 0), (1, 0), (0, 1), (1, 1))] == [0, 1, 2, 3]
    assert LABELS == ("real", "visual_only", "audio_only", "both")
    assert classes_modifying("visual") == (1, 3) and classes_modifying("audio") == (2, 3)
    assert [bool(is_modified(np.arange(4), "audio")[i]) for i in range(4)] == [False, False, True, True]
    assert [branch_of(i) for i in range(4)] == ["joint", "visual", "audio", "joint"]


def test_probabilities_from_the_class_layout():
    probs = [0.1, 0.2, 0.3, 0.4]
    assert fake_probability(probs) == 1.0 - 0.1
    assert modality_probabilities(probs) == {"visual": 0.2 + 0.4, "audio": 0.3 + 0.4}
