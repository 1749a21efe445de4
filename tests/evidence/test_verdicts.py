"""The ambiguity split judges only the close (top class, class) pairs: it must agree with judging every pair."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.core.config import AmbiguityParams
from auditor.evidence.robust import bonferroni_bar, median_spread
from auditor.evidence.verdicts import split_of


def every_pair_plausible(probs: np.ndarray, labels: np.ndarray, params: AmbiguityParams) -> np.ndarray:
    """The dense reference: every (top class, class) pair's reference built and every image judged on it."""
    count, classes = probs.shape
    rows = np.arange(count)
    order = np.argsort(-probs, axis=1, kind="stable")
    top_class = order[:, 0]
    top = probs[rows, top_class]
    ratios = np.log(np.maximum(probs, 1e-300))
    ratios -= ratios[rows, top_class][:, None]
    correct = top_class == labels
    fallback = ratios[correct, order[correct, 1]]
    bar = bonferroni_bar(params.false_alarms, count)
    beyond = np.zeros((count, classes), dtype=bool)
    for a in np.unique(top_class):
        mine = np.flatnonzero(top_class == a)
        for c in range(classes):
            if c == a:
                continue
            of_a, of_c = correct & (labels == a), correct & (labels == c)
            reference = np.concatenate([ratios[of_a, c], ratios[of_c, a] - ratios[of_c, c]])
            if len(reference) < params.min_reference_images:
                reference = fallback
            if len(reference) < params.min_reference_images:
                continue
            centre, spread = median_spread(reference, 1e-3)
            beyond[mine, c] = (ratios[mine, c] - centre) / spread >= bar
    plausible = beyond & (probs >= params.min_relative_probability * top[:, None])
    plausible[rows, top_class] = True
    return plausible


def mixed_probabilities(count: int, classes: int, seed: int,
                        sizes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities as a classifier gives them: mostly confident in the label, some images split between two
    classes, some wrong; ``sizes`` (images per class) makes some classes tiny."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=count) if sizes is None else np.repeat(np.arange(classes), sizes)
    rows = np.arange(len(labels))
    logits = rng.normal(0.0, 0.5, size=(len(labels), classes))
    logits[rows, labels] += rng.uniform(5.0, 8.0, size=len(labels))
    split = rng.random(len(labels)) < 0.05
    other = rng.integers(classes, size=len(labels))
    logits[rows[split], other[split]] = logits[rows[split], labels[split]] - rng.uniform(0.0, 1.0, int(split.sum()))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True), labels


@pytest.mark.parametrize("seed", range(4))
def test_close_pairs_agree_with_every_pair(seed: int) -> None:
    probs, labels = mixed_probabilities(600, 7, seed)
    params = AmbiguityParams(min_relative_probability=0.05)
    split = split_of(probs, labels, params)
    expected = every_pair_plausible(probs, labels, params)
    assert np.array_equal(split.plausible, expected)
    assert split.candidates.sum() > 10  # the comparison covers images judged ambiguous


def test_tiny_classes_fall_back_alike() -> None:
    # Classes of 1-3 images have too few correct images for their own reference: the fallback is used.
    sizes = np.array([200, 150, 3, 2, 1, 1, 120, 2])
    probs, labels = mixed_probabilities(0, len(sizes), 7, sizes)
    params = AmbiguityParams()
    split = split_of(probs, labels, params)
    assert np.array_equal(split.plausible, every_pair_plausible(probs, labels, params))
    assert split.candidates.any()


def test_one_image_classes_agree() -> None:
    # As many classes as images: every pair falls back to the runner-up reference.
    probs, labels = mixed_probabilities(0, 60, 3, np.ones(60, dtype=np.int64))
    params = AmbiguityParams(min_reference_images=3)
    split = split_of(probs, labels, params)
    assert np.array_equal(split.plausible, every_pair_plausible(probs, labels, params))
    assert split.candidates.any()
