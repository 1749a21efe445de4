"""Class closeness: per-class nearest-member similarity, self excluded, and its probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from auditor.core.config import SearchParams
from auditor.evidence import class_neighbours
from auditor.evidence.class_neighbours import class_neighbourhoods, similarity_probabilities
from auditor.evidence.similarity import SearchLog, nearest, unit_rows


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


def _clustered(count: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Classes made of tight modes (as image embeddings are), 2% of labels flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, 32))
    modes = centres[:, None, :] + 0.7 * rng.standard_normal((classes, 5, 32))
    labels = np.arange(count) % classes
    vectors = modes[labels, rng.integers(5, size=count)] + 0.3 * rng.standard_normal((count, 32))
    flipped = rng.random(count) < 0.02
    return vectors.astype(np.float32), np.where(flipped, (labels + 1) % classes, labels)


def _records(log: SearchLog, method: str) -> list[dict[str, Any]]:
    return [r for r in log.records if r["search"] == "class_closeness" and r["method"] == method]


def test_above_the_exact_size_closeness_is_computed_within_each_images_reach() -> None:
    vectors, labels = _clustered(1500, 6)
    members = [np.flatnonzero(labels == c) for c in range(6)]
    log = SearchLog()
    restricted = class_neighbourhoods(vectors, members, k=4, search=SearchParams(exact_max_vectors=300), log=log)
    every = class_neighbourhoods(vectors, members, k=4, search=SearchParams(exact_max_vectors=1500))
    computed = np.isclose(restricted.similarity, every.similarity, atol=1e-5)
    # Far classes are estimated rather than searched; the image's own class never is.
    assert computed.sum() < 0.5 * computed.size
    assert computed[np.arange(1500), labels].mean() >= 0.99
    # An estimate stays below the closest class, which is computed: the outlier isolation and the nearest
    # other image agree with the every-class search.
    assert np.isclose(restricted.similarity.max(axis=1), every.similarity.max(axis=1), atol=1e-5).mean() >= 0.99
    assert (restricted.nearest == every.nearest).mean() >= 0.99
    # Estimates come close, so the probabilities ambiguous reads barely move.
    assert np.percentile(np.abs(restricted.similarity - every.similarity), 99) < 0.2
    moved = 0.5 * np.abs(similarity_probabilities(restricted.similarity, labels)
                         - similarity_probabilities(every.similarity, labels)).sum(axis=1)
    assert np.median(moved) < 0.02 and np.percentile(moved, 99) < 0.15
    # run.json records how often the restriction could be wrong, measured against exact closeness.
    [record] = _records(log, "within_reach")
    assert record["closest_within_reach"] >= 0.99 and record["recall"] >= 0.99
    assert record["sample"] == 1000 and record["pairs_searched"] < 1500 * 6 and record["pairs_estimated"] > 0
    assert record["probability_distance_median"] < 0.02
    assert {"top2_within_reach", "probability_mass_within_reach", "completed_against_every_class", "reach",
            "estimate_mean_abs_error", "probability_distance_p99"} <= record.keys()


def test_an_image_whose_reach_may_hide_its_closest_class_is_compared_with_every_class() -> None:
    # Points on a circle. 200 unlabelled vectors packed around angle 0 fill every reach there; ten classes each
    # have one member among them and 20 at angle 1.0; class 0 lies at angle -0.3, nearer than any of those
    # classes' k nearest, but with no member within any reach around 0.
    rng = np.random.default_rng(1)
    angles = np.r_[rng.normal(0, 0.01, 210), rng.normal(-0.3, 0.01, 60), rng.normal(1.0, 0.01, 200)]
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    members = [np.arange(210, 270)] + [np.r_[200 + j, 270 + 20 * j + np.arange(20)] for j in range(10)]
    log = SearchLog()
    result = class_neighbourhoods(vectors, members, k=3, search=SearchParams(exact_max_vectors=50), log=log)
    every = class_neighbourhoods(vectors, members, k=3, search=SearchParams(exact_max_vectors=470))
    [record] = _records(log, "within_reach")
    assert record["completed_against_every_class"] >= 200
    assert np.allclose(result.similarity[:210], every.similarity[:210], atol=1e-5)
    assert (np.nanargmax(result.similarity[:210], axis=1) == 0).all()
    assert record["closest_within_reach"] == 1.0


def test_an_image_with_no_class_in_reach_is_compared_with_every_class() -> None:
    # 100 unlabelled vectors far from both classes: their reach holds no class member, yet their closeness to
    # each class is computed (an outlier must not look infinitely far for want of a search).
    rng = np.random.default_rng(2)
    angles = np.r_[rng.normal(0, 0.01, 100), rng.normal(1.5, 0.02, 150), rng.normal(-1.5, 0.02, 150)]
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    members = [np.arange(100, 250), np.arange(250, 400)]
    log = SearchLog()
    result = class_neighbourhoods(vectors, members, k=3, search=SearchParams(exact_max_vectors=50), log=log)
    every = class_neighbourhoods(vectors, members, k=3, search=SearchParams(exact_max_vectors=400))
    [record] = _records(log, "within_reach")
    assert record["closest_within_reach"] == 1.0
    assert not np.isnan(result.similarity[:100]).any()
    assert np.allclose(result.similarity[:100], every.similarity[:100], atol=1e-5)


def test_when_the_sample_finds_closest_classes_missed_every_class_is_searched(monkeypatch: Any) -> None:
    # A reach search gone wrong (every vector's "nearest" are vectors of another class, as near as itself):
    # nothing within the reach looks uncertain, but the exact sample shows the closest class missed.
    vectors, labels = _clustered(1200, 4)
    members = [np.flatnonzero(labels == c) for c in range(4)]
    real = class_neighbours.nearest

    def misleading(base: np.ndarray, k: int, settings: SearchParams, name: str, log: SearchLog | None = None,
                   queries: np.ndarray | None = None, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        if name != "class_closeness_reach":
            return real(base, k, settings, name, log, queries, **kwargs)
        other = members[1][np.arange(len(base)) % len(members[1])]
        found = np.stack([np.arange(len(base))] + [np.roll(other, shift) for shift in range(1, k)], axis=1)
        return np.ones(found.shape, dtype=np.float32), found

    monkeypatch.setattr(class_neighbours, "nearest", misleading)
    log = SearchLog()
    result = class_neighbourhoods(vectors, members, k=4, search=SearchParams(exact_max_vectors=300), log=log)
    monkeypatch.setattr(class_neighbours, "nearest", real)
    every = class_neighbourhoods(vectors, members, k=4, search=SearchParams(exact_max_vectors=1200))
    [record] = _records(log, "every_class")
    assert record["closest_within_reach"] < 0.99 and "fallback" in record
    assert np.allclose(result.similarity, every.similarity, atol=1e-5, equal_nan=True)


def test_a_search_the_caller_already_ran_serves_as_the_reach() -> None:
    vectors, labels = _clustered(1500, 6)
    members = [np.flatnonzero(labels == c) for c in range(6)]
    settings = SearchParams(exact_max_vectors=300)
    own_log, given_log = SearchLog(), SearchLog()
    own = class_neighbourhoods(vectors, members, k=4, search=settings, log=own_log)
    shared = nearest(unit_rows(vectors), 17, settings, "shared", seed=6)
    given = class_neighbourhoods(vectors, members, k=4, search=settings, log=given_log, neighbours=shared)
    assert np.allclose(own.similarity, given.similarity, atol=1e-6) and (own.nearest == given.nearest).all()
    # No reach search of its own when one is given.
    assert "class_closeness_reach" in {r["search"] for r in own_log.records}
    assert "class_closeness_reach" not in {r["search"] for r in given_log.records}
