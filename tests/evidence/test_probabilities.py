"""The label-error classifier: leave-one-out linear discriminant analysis, one eigendecomposition (probabilities.py)."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.core.config import ProbabilityParams
from auditor.evidence import probabilities
from auditor.evidence.probabilities import fit_temperature, out_of_sample_probabilities


def _clusters(per_class: int, classes: int, dim: int, seed: int = 0,
              spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    return (centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))).astype(np.float32), labels


def test_no_image_vouches_for_its_own_label() -> None:
    """Random labels on noise: a model that had seen an image's label would fit it (60 dimensions, 120 images);
    held out, the given label gets no more than chance."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(120, 60)).astype(np.float32)
    labels = rng.integers(3, size=120)
    for shrinkage in (None, 0.01):
        probs = out_of_sample_probabilities(vectors, labels, 3, ProbabilityParams(shrinkage=shrinkage))
        assert probs[np.arange(120), labels].mean() < 0.4
        assert (probs.argmax(axis=1) == labels).mean() < 0.5


def test_a_flipped_label_is_not_believed() -> None:
    vectors, labels = _clusters(per_class=40, classes=3, dim=20)
    given = labels.copy()
    given[[3, 50, 90]] = [1, 2, 0]
    probs = out_of_sample_probabilities(vectors, given, 3, ProbabilityParams())
    assert (probs.argmax(axis=1) == labels).all()
    assert (probs[[3, 50, 90], given[[3, 50, 90]]] < 0.05).all()


def test_statistics_are_the_class_means_counts_and_within_class_scatter() -> None:
    vectors, labels = _clusters(per_class=30, classes=4, dim=6, seed=5, spread=2.0)
    labels[:3] = 3  # uneven classes
    order = np.argsort(labels, kind="stable")
    vectors, labels = vectors[order], labels[order]
    stats = probabilities._Statistics.of(vectors, labels, 5)  # class 4 has no image
    rows = vectors.astype(np.float64)
    means = np.stack([rows[labels == k].mean(axis=0) for k in range(4)])
    scatter = sum((rows[labels == k] - means[k]).T @ (rows[labels == k] - means[k]) for k in range(4))
    np.testing.assert_allclose(stats.means[:4], means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.scatter, scatter, rtol=1e-4, atol=1e-4)
    assert stats.counts.tolist() == [*np.bincount(labels).tolist(), 0]
    assert stats.dof == len(labels) - 4


def test_reordering_rows_changes_no_probability() -> None:
    vectors, labels = _clusters(per_class=25, classes=4, dim=12, seed=9, spread=3.0)
    vectors[10] = vectors[60]  # a copy under another label
    first = out_of_sample_probabilities(vectors, labels, 4, ProbabilityParams())
    shuffle = np.random.default_rng(1).permutation(len(labels))
    second = out_of_sample_probabilities(vectors[shuffle], labels[shuffle], 4, ProbabilityParams())
    np.testing.assert_array_equal(second, first[shuffle])


def test_copies_are_left_out_together() -> None:
    """Ten copies of one image filed under the wrong class: each is judged by models that saw none of them."""
    vectors, labels = _clusters(per_class=30, classes=2, dim=8, seed=2)
    vectors[:10] = vectors[40]
    labels[:10] = 0
    labels[40] = 0
    probs = out_of_sample_probabilities(vectors, labels, 2, ProbabilityParams())
    assert (probs[[*range(10), 40], 1] > 0.5).all()  # 11 of 60 labels wrong: a soft, but clear, verdict


def test_dimensions_outnumbering_images() -> None:
    """36 images in 300 dimensions: the covariance is singular, the shrinkage keeps it usable."""
    vectors, labels = _clusters(per_class=12, classes=3, dim=300, seed=4, spread=2.0)
    given = labels.copy()
    given[5] = 1
    probs = out_of_sample_probabilities(vectors, given, 3, ProbabilityParams())
    assert np.isfinite(probs).all()
    assert probs.argmax(axis=1)[5] == 0
    assert (probs.argmax(axis=1) == labels).mean() > 0.9


@pytest.mark.parametrize("case", ["two images", "identical rows", "a class of one image", "constant dimension"])
def test_degenerate_inputs(case: str) -> None:
    rng = np.random.default_rng(0)
    if case == "two images":
        vectors, labels, classes = rng.normal(size=(2, 4)).astype(np.float32), np.array([0, 1]), 2
    elif case == "identical rows":  # one group: left out together, nothing left to learn from
        vectors, labels, classes = np.ones((12, 4), dtype=np.float32), np.array([0, 1] * 6), 2
    elif case == "a class of one image":
        vectors, labels = _clusters(per_class=10, classes=2, dim=5)
        vectors, labels, classes = np.vstack([vectors, vectors[:1] + 9]), np.append(labels, 2), 3
    else:
        vectors, labels = _clusters(per_class=10, classes=3, dim=5)
        vectors[:, 2] = 1.5
        classes = 3
    probs = out_of_sample_probabilities(vectors, labels, classes, ProbabilityParams())
    assert probs.shape == (len(labels), classes)
    assert np.isfinite(probs).all() and (probs > 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    if case == "two images":  # judged by a model that saw only the other image, or none: never its own label
        assert probs[0, 0] <= 0.5 and probs[1, 1] <= 0.5
    if case == "identical rows":
        np.testing.assert_allclose(probs, 0.5)
    if case == "a class of one image":  # its held-out model has no class 2, so nothing can call its image class 2
        assert probs[-1, 2] < 1e-3


def test_least_shrinkage_follows_the_images_per_dimension() -> None:
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(5000, 1))
    many = (factor + 0.5 * rng.normal(size=(5000, 6))).astype(np.float32)  # strongly correlated, many images
    few = rng.normal(size=(20, 200)).astype(np.float32)  # independent, dimensions outnumber images
    for vectors, low, high in ((many, 0.0, 0.05), (few, 0.5, 1.0)):
        labels = np.zeros(len(vectors), dtype=np.int64)
        stats = probabilities._Statistics.of(vectors, labels, 1)
        assert low <= stats.least_shrinkage() <= high


def test_temperature_is_the_maximum_likelihood_one() -> None:
    rng = np.random.default_rng(0)
    grid = np.geomspace(1e-4, 1e3, 20_000)
    for scale in (0.01, 1.0, 1e4):  # soft, moderate and saturated scores
        scores = rng.normal(size=(400, 5)) * scale
        labels = rng.integers(5, size=400)
        scores[np.arange(400), labels] += 1.5 * scale
        scores[np.arange(20), (labels[:20] + 1) % 5] = -np.inf  # impossible classes, never at a label

        def loss(t: float, scores: np.ndarray = scores, labels: np.ndarray = labels) -> float:
            scaled = np.where(np.isfinite(scores), scores * t, -np.inf)
            peak = scaled.max(axis=1, keepdims=True)
            totals = np.log(np.exp(scaled - peak).sum(axis=1)) + peak[:, 0]
            return float((totals - scaled[np.arange(400), labels]).mean())

        best = grid[int(np.argmin([loss(t) for t in grid]))]
        fitted = fit_temperature(scores, labels, (1e-4, 1e3))
        assert loss(fitted) <= loss(best) + 1e-9
        assert fitted == pytest.approx(best, rel=2e-3)


def _refit_logits(rows: np.ndarray, labels: np.ndarray, left_out: np.ndarray, classes: int, shrinkage: float,
                  scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The logits of ``rows[left_out[0]]`` from a discriminant refitted on every row not in ``left_out``."""
    keep = np.ones(len(rows), dtype=bool)
    keep[left_out] = False
    kept, given = rows[keep], labels[keep]
    present = [k for k in range(classes) if (given == k).any()]
    means = {k: kept[given == k].mean(axis=0) for k in present}
    scatter = sum((kept[given == k] - means[k]).T @ (kept[given == k] - means[k]) for k in present)
    correlation = scatter / max(len(kept) - len(present), 1) / np.outer(scale, scale)
    shrunk = (1 - shrinkage) * correlation + shrinkage * np.eye(len(scale))
    logits = np.full(classes, -np.inf)
    if len(present) == 1:
        logits[present] = 0.0
        return logits
    for k in present:
        centred = (means[k] - centre) / scale
        whitened = np.linalg.solve(shrunk, centred)
        logits[k] = ((rows[left_out[0]] - centre) / scale) @ whitened - 0.5 * centred @ whitened
        logits[k] += np.log((given == k).sum() / len(given))
    return logits


@pytest.mark.parametrize("shrinkage", [0.01, 0.3, 0.9])
def test_held_out_logits_are_those_of_a_refit_without_the_image_and_its_copies(shrinkage: float) -> None:
    """Every image's closed-form logits (Sherman-Morrison; Woodbury for copies under several labels) equal a
    discriminant refitted on every row but the image and its copies (same per-dimension scale): with uneven
    classes, a class of two, copies under one label, copies under two labels, and a class that is only copies
    (leaving them out leaves the class without images)."""
    vectors, labels = _clusters(per_class=15, classes=3, dim=7, seed=6, spread=2.0)
    extra = np.vstack([vectors[:2] + 5.0, vectors[20:21], vectors[20:21], vectors[35:36], vectors[35:36] + 9.0,
                       vectors[35:36] + 9.0])
    vectors = np.vstack([vectors, extra])
    labels = np.append(labels, [3, 3, 1, 1, 1, 4, 4])  # 20: three copies; 35 (class 2): a copy under class 1
    order = np.argsort(labels, kind="stable")
    vectors, labels = vectors[order], labels[order]
    groups = probabilities.identical_rows(vectors)
    rows = vectors.astype(np.float64)
    out = np.empty((len(rows), 5))
    params = ProbabilityParams(shrinkage=shrinkage)
    evidence = probabilities._held_out_logits(vectors, labels, groups, 5, params, out)
    centre = rows.mean(axis=0)
    scale = np.sqrt(sum(((rows[labels == k] - rows[labels == k].mean(axis=0)) ** 2).sum(axis=0)
                        for k in range(5)) / (len(rows) - 5))
    for i in range(len(rows)):
        copies = np.flatnonzero(groups == groups[i])
        copies = np.r_[i, copies[copies != i]]
        expected = _refit_logits(rows, labels, copies, 5, shrinkage, scale, centre)
        np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-5)  # float32 statistics
        assert evidence[i] == np.isfinite(expected[labels[i]]) and np.isfinite(expected).sum() >= 2
    # The Woodbury path was taken: one image has a copy under another label.
    assert sorted(len(set(labels[groups == group])) for group in np.unique(groups))[-2:] == [1, 2]
    assert not evidence[labels == 4].any()  # class 4 is two copies of one image: nothing left to judge them


def test_temperature_of_many_images_follows_their_contents_not_their_order() -> None:
    """Above ``_TEMPERATURE_ROWS`` the fit reads a sample (bounded memory at 1M images x 100 classes): chosen by
    the scores themselves, so reordering the images gives the same temperature, close to the full fit's."""
    rng = np.random.default_rng(1)
    count = 3 * probabilities._TEMPERATURE_ROWS
    scores = rng.normal(size=(count, 6))
    labels = rng.integers(6, size=count)
    scores[np.arange(count), labels] += 1.0
    scores[np.arange(50), (labels[:50] + 1) % 6] = -np.inf
    fitted = fit_temperature(scores, labels, (1e-3, 1e3))
    shuffled = rng.permutation(count)
    assert fit_temperature(scores[shuffled], labels[shuffled], (1e-3, 1e3)) == fitted
    cap = probabilities._TEMPERATURE_ROWS
    try:
        probabilities._TEMPERATURE_ROWS = count
        every = fit_temperature(scores, labels, (1e-3, 1e3))
    finally:
        probabilities._TEMPERATURE_ROWS = cap
    assert fitted == pytest.approx(every, rel=0.05)
    assert fitted != every  # the sample was taken (else this test measures nothing)
