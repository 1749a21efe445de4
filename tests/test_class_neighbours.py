"""Class closeness: per-class nearest-member similarity, self excluded, and its probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.class_neighbours import class_neighbourhoods, similarity_probabilities


def test_mean_of_k_nearest_members_excludes_the_vector_itself() -> None:
    # Angles on the unit circle: cosines are easy to state.
    angles = np.array([0.0, 0.1, 0.3, 3.0, 3.1])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    members = [np.array([0, 1, 2]), np.array([3, 4])]
    result = class_neighbourhoods(vectors, members, k=2)
    # Vector 0 in class 0: its two nearest others are 1 and 2, never itself.
    assert result.similarity[0, 0] == pytest.approx((np.cos(0.1) + np.cos(0.3)) / 2, abs=1e-6)
    # Class 1 has only two members, so k=2 becomes 1 other member for vector 3.
    assert result.similarity[3, 1] == pytest.approx(np.cos(0.1), abs=1e-6)
    # Vector 3 against class 0: the two most similar of 0, 1, 2.
    assert result.similarity[3, 0] == pytest.approx((np.cos(2.7) + np.cos(2.9)) / 2, abs=1e-6)
    assert result.nearest.tolist() == [1, 0, 1, 4, 3]


def test_class_without_another_member_is_nan_and_gets_no_probability() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    result = class_neighbourhoods(vectors, [np.array([0, 1]), np.array([2])], k=3)
    assert np.isnan(result.similarity[2, 1])  # the only member of class 1 is vector 2 itself
    assert not np.isnan(result.similarity[0, 1])
    probs = similarity_probabilities(result.similarity, np.array([0, 0, 1]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[2, 1] < 1e-3


def test_probabilities_follow_similarity_and_sharpen_with_separable_labels() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=300)
    similarity = 0.5 + 0.3 * np.eye(3)[labels] + rng.normal(scale=0.02, size=(300, 3))
    probs = similarity_probabilities(similarity, labels)
    assert (probs.argmax(axis=1) == labels).all()
    # The fitted temperature makes cleanly separated classes confident, not a flat 0.4/0.3/0.3.
    assert probs[np.arange(300), labels].mean() > 0.9
