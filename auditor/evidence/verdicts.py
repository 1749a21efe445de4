"""Shared verdicts several checks read: the label-error mask, the confident joint, and the ambiguity verdict.

Computed once per scan on the shared evidence (``Evidence.label_issues``, ``confident_joint``, ``ambiguity``),
so label_errors, ambiguous and class_overlap agree on them without importing one another. Their settings are
the ``[evidence]`` section's (``LabelIssueParams``, ``AmbiguityParams``).

Ambiguity: two out-of-sample views of the class evidence are pooled log-linearly (the cross-validated
regression's probabilities and class closeness), temperature-scaled to the dataset, and a class is
plausible for an image when its share relative to the top class is improbably high for a clean image of
that top class, with a Bonferroni bar (see ``split_of`` and ``checks/ambiguous.py``); zero-shot class
prompts, when present, are judged alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from auditor.core.config import AmbiguityParams, LabelIssueParams
from auditor.core.slow_imports import cleanlab_count, cleanlab_filter
from auditor.evidence.class_neighbours import similarity_probabilities
from auditor.evidence.probabilities import by_rows, fit_temperature, softmax
from auditor.evidence.robust import bonferroni_bar, median_spread


def judged_classes(sizes: np.ndarray, params: LabelIssueParams) -> np.ndarray:
    """Boolean per class (``sizes``: embedded images per class): large enough for the classifier's verdict on
    its images, in images (``min_class_images``) and beside the median class (``min_class_fraction_of_median``)."""
    median = float(np.median(sizes)) if len(sizes) else 0.0
    return np.asarray(sizes >= max(params.min_class_images, params.min_class_fraction_of_median * median))


def confident_counts(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """cleanlab's calibrated confident joint in images (given class x true class): what ``label_issue_mask`` and
    ``confident_joint`` both start from, counted once (each cleanlab call would count it again)."""
    return np.asarray(cleanlab_count.compute_confident_joint(labels, pred_probs, calibrate=True))


def label_issue_mask(labels: np.ndarray, pred_probs: np.ndarray, filter_by: str,
                     counts: np.ndarray | None = None, unclaimed: bool = False,
                     classifier: np.ndarray | None = None) -> np.ndarray:
    """Boolean per row: cleanlab flags the given label (or, with ``unclaimed``, ``implausible_labels`` does, on
    ``pred_probs`` or on ``classifier``, the classifier's own probabilities before the k-NN vote is blended in).
    One place, so every check agrees on it. ``counts``: ``confident_counts`` of the same rows, if made."""
    # "confident_learning" counts its own joint (it needs which images were counted off the diagonal), and warns
    # when handed one.
    given = None if filter_by == "confident_learning" else counts
    flagged = np.asarray(cleanlab_filter.find_label_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1,
                                                           confident_joint=given), dtype=bool)
    if not unclaimed:
        return flagged
    flagged |= implausible_labels(labels, pred_probs)
    return flagged | implausible_labels(labels, classifier) if classifier is not None else flagged


def implausible_labels(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Boolean per row: the top class is another, and the given class's probability is no higher than its mean
    over the rows labelled otherwise.

    Confident learning counts an image labelled ``i`` as class ``j`` only when ``p_j`` reaches the mean ``p_j``
    of the images labelled ``j``; where the classes are learnt well that mean is high, and an image that two
    views of the evidence place in different wrong classes (sample_data's circle filed as a square: the
    regression says circle, its neighbours partly star) reaches no class's mean, so the count of its pair is
    zero and nothing is pruned. The complementary question reads the same probabilities from the given
    class's side: an image whose own class gets what that class gets on a typical image of another class is
    confidently not of it. Both bars are means of the dataset's own out-of-sample probabilities; no constant.

    Asked of the classifier's probabilities too (``label_issue_mask``), each view against its own bar: the
    vote of that circle's neighbours (star, circle and square) lifts its square from the classifier's 0.016 to
    0.055, above the 0.037 squares get on other images in the blend; the classifier alone gives squares 0.034
    there. On the robustness collections (README, "Label errors") that added planted flips and kept precision,
    and took sample_data to all five of its planted label errors.
    """
    rows = np.arange(len(labels))
    classes = pred_probs.shape[1]
    others = np.array([pred_probs[labels != c, c].mean() if (labels != c).any() else 0.0 for c in range(classes)])
    return np.asarray((pred_probs.argmax(axis=1) != labels) & (pred_probs[rows, labels] <= others[labels]))


def confident_joint(labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """cleanlab's calibrated joint of given vs true class (sums to 1), as ``cleanlab.count.estimate_joint``."""
    counts = confident_counts(labels, pred_probs) if counts is None else counts
    return np.asarray(counts / max(float(counts.sum()), 1e-300))


# Temperatures searched when calibrating (probabilities are raised to this power, then renormalised).
_TEMPERATURE_BOUNDS = (0.05, 100.0)


def fit_sharpness(pred_probs: np.ndarray, labels: np.ndarray) -> float:
    """The power ``t`` for which ``pred_probs ** t`` (renormalised) best explains the given labels.

    ``t > 1`` sharpens probabilities a heavily regularised model left too flat; ``t < 1`` softens
    overconfident ones. It is the usual temperature scaling, written on log-probabilities.
    """
    return fit_temperature(np.log(pred_probs), labels, _TEMPERATURE_BOUNDS)


def pooled(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """Log-linear pool: ``first ** (1 - weight) * second ** weight``, renormalised per row.

    A class keeps mass only where both views give it some, so one view's stray mass on an unrelated
    class is damped, while a class both views find plausible stays plausible.
    """
    return by_rows(first.shape, lambda rows: softmax((1.0 - weight) * np.log(first[rows])
                                                       + weight * np.log(second[rows])))


def sharpen(pred_probs: np.ndarray, power: float) -> np.ndarray:
    return by_rows(pred_probs.shape, lambda rows: softmax(np.log(pred_probs[rows]) * power))


@dataclass(frozen=True)
class Split:
    """One view's verdict: which classes are plausible for each image, and how evenly split it is."""

    probs: np.ndarray
    order: np.ndarray  # classes by descending probability, per image
    plausible: np.ndarray  # bool (n, classes)
    evenness: np.ndarray  # second / top probability
    typical: float  # median evenness
    bar_z: float  # the robust z a class's ratio to the top class must reach to be plausible

    @property
    def candidates(self) -> np.ndarray:
        return np.asarray(self.plausible.sum(axis=1) >= 2)


# The smallest spread (natural-log units) a reference ratio may have: a class whose correct images all
# split identically would otherwise make any hair's difference infinitely surprising.
_MIN_LOG_SPREAD = 1e-3


def split_of(probs: np.ndarray, labels: np.ndarray, params: AmbiguityParams) -> Split:
    """Which classes are plausible for each image: the top class, and every class whose share of the
    evidence is improbably high for a clean image of either class of the pair.

    The reference for a pair of classes (the image's top ``a``, another ``c``) is how much of the other
    class the images the classifier gets right show: ``log(p_c / p_a)`` over correct images labelled
    ``a`` and ``log(p_a / p_c)`` over correct images labelled ``c``. A robust z-score (median, 1.4826
    MAD) says how unusual an image's ``log(p_c / p_a)`` is, and the bar is Bonferroni's for
    ``false_alarms`` chance flags among all images. Log ratios make the bar independent of the
    temperature the evidence was scaled to; per-pair references make it follow how confident the
    classifier is on this dataset and how close these two classes are in it (two look-alike classes are
    often split a little; that is no sign of an ambiguous image).

    Only a class with at least ``min_relative_probability`` of the top class's probability can be plausible,
    so only the (top class, class) pairs some image comes that close on are judged: the work follows those
    close pairs (a handful per image), not every pair of classes (K^2 references, each O(N), took minutes at
    1,000 classes).
    """
    count, classes = probs.shape
    # int32 and by rows: the N x classes order is the largest array here (1M x 100 classes: 0.4 GB).
    order = by_rows(probs.shape, lambda rows: np.argsort(-probs[rows], axis=1, kind="stable"), np.int32)
    rows = np.arange(count)
    top_class = order[:, 0]
    top = probs[rows, top_class]
    evenness = probs[rows, order[:, 1]] / top
    log_top = _log_probability(top)
    correct = top_class == labels
    bar = bonferroni_bar(params.false_alarms, count)
    plausible = np.zeros((count, classes), dtype=bool)
    plausible[rows, top_class] = True
    close_rows, close_classes = _close_entries(probs, top, top_class, params.min_relative_probability)
    if len(close_rows):
        reference = _PairReference(probs, labels, correct, log_top, order, params.min_reference_images)
        pairs, pair_of = np.unique(top_class[close_rows].astype(np.int64) * classes + close_classes,
                                   return_inverse=True)
        pair_top, pair_class = np.divmod(pairs, classes)
        # A pair with too few correct images of its own is judged on the shared fallback: all such at once.
        own = reference.correct_images(pair_top) + reference.correct_images(pair_class) >= params.min_reference_images
        shared = ~own[pair_of]
        if reference.fallback is not None and shared.any():
            _judge(plausible, probs, log_top, close_rows[shared], close_classes[shared], reference.fallback, bar)
        entries = np.flatnonzero(~shared)
        entries = entries[np.argsort(pair_of[entries], kind="stable")]
        starts = np.flatnonzero(np.r_[True, np.diff(pair_of[entries]) != 0]) if len(entries) else np.zeros(0, int)
        for group in np.split(entries, starts[1:]) if len(entries) else ():
            a, c = int(top_class[close_rows[group[0]]]), int(close_classes[group[0]])
            judged = reference.centre_spread(a, c)
            assert judged is not None  # the pair has enough correct images of its own
            _judge(plausible, probs, log_top, close_rows[group], close_classes[group], judged, bar)
    return Split(probs, order, plausible, evenness, float(np.median(evenness)), bar)


def _judge(plausible: np.ndarray, probs: np.ndarray, log_top: np.ndarray, images: np.ndarray, columns: np.ndarray,
           reference: tuple[float, float], bar: float) -> None:
    """Marks, in place, each (image, column) whose log ratio to the image's top class reaches ``bar`` robust
    z-scores above ``reference`` (centre, spread)."""
    centre, spread = reference
    ratio = _log_probability(probs[images, columns]) - log_top[images]
    plausible[images, columns] = (ratio - centre) / spread >= bar


def _log_probability(values: np.ndarray) -> np.ndarray:
    """``log(p)`` with zero probabilities floored at 1e-300 (a log ratio stays finite)."""
    return np.asarray(np.log(np.maximum(values, 1e-300)))


def _close_entries(probs: np.ndarray, top: np.ndarray, top_class: np.ndarray,
                   min_relative: float) -> tuple[np.ndarray, np.ndarray]:
    """(image, class) of every class other than the image's top with at least ``min_relative`` of the top's
    probability: the only candidates to be plausible. Read by rows (no N x classes temporary)."""
    found_rows, found_classes = [], []
    for start in range(0, len(probs), _CLOSE_ROWS):
        block = probs[start:start + _CLOSE_ROWS]
        near = block >= min_relative * top[start:start + _CLOSE_ROWS, None]
        near[np.arange(len(block)), top_class[start:start + _CLOSE_ROWS]] = False
        image, column = np.nonzero(near)
        found_rows.append(start + image)
        found_classes.append(column)
    if not found_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(found_rows), np.concatenate(found_classes).astype(np.int64)


# Rows per step when looking for close classes (a bool block of 8,192 x 10,000 classes is 80 MB).
_CLOSE_ROWS = 8192


class _PairReference:
    """The robust centre and spread of a pair's log ratios over the images the classifier gets right."""

    def __init__(self, probs: np.ndarray, labels: np.ndarray, correct: np.ndarray, log_top: np.ndarray,
                 order: np.ndarray, min_images: int) -> None:
        self.probs, self.log_top, self.min_images = probs, log_top, min_images
        right = np.flatnonzero(correct)
        # Too few correct images of a pair: it is judged against every correct image's runner-up ratio (read
        # at the runner-up class).
        runner_up = self._ratio_at(right, order[right, 1])
        self.fallback = median_spread(runner_up, _MIN_LOG_SPREAD) if len(runner_up) >= min_images else None
        self.right = right[np.argsort(labels[right], kind="stable")]
        self.bounds = np.searchsorted(labels[self.right], np.arange(probs.shape[1] + 1))

    def correct_images(self, classes: np.ndarray) -> np.ndarray:
        """Correct images labelled each of ``classes``."""
        return np.asarray(self.bounds[classes + 1] - self.bounds[classes])

    def centre_spread(self, a: int, c: int) -> tuple[float, float] | None:
        """Centre and spread for images whose top class is ``a``, judged on class ``c``; None: no reference."""
        of_a = self.right[self.bounds[a]:self.bounds[a + 1]]
        of_c = self.right[self.bounds[c]:self.bounds[c + 1]]
        reference = np.concatenate([self._ratio_at(of_a, np.full(len(of_a), c)),
                                    self._ratio_at(of_c, np.full(len(of_c), a))
                                    - self._ratio_at(of_c, np.full(len(of_c), c))])
        if len(reference) >= self.min_images:
            return median_spread(reference, _MIN_LOG_SPREAD)
        return self.fallback

    def _ratio_at(self, images: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """``log(p_column / p_top)`` of each of ``images`` at its column."""
        return np.asarray(_log_probability(self.probs[images, columns]) - self.log_top[images])


@dataclass(frozen=True)
class Ambiguity:
    """Which ``labelled`` images are ambiguous and between which classes (``Evidence.ambiguity``)."""

    embedded: Split  # the pooled embedding views
    zero_shot: Split | None  # the class prompts, when the scan computed them
    power: float  # sharpening power fitted to the pooled views
    by_embeddings: np.ndarray  # bool per image: the embedding views find it split
    by_zero_shot: np.ndarray  # bool per image: the prompts alone find it split (given label plausible)
    excluded: np.ndarray  # bool: split, but a label error whose given label is implausible
    # Flagged image index -> class indices named, the given label first, then the competing classes.
    named: dict[int, tuple[int, ...]]

    def pair_counts(self) -> Counter[tuple[int, int]]:
        """Ambiguous images per unordered class pair (an image naming three classes counts for each pair)."""
        counts: Counter[tuple[int, int]] = Counter()
        for classes in self.named.values():
            counts.update(tuple(sorted(pair)) for pair in combinations(classes, 2))  # type: ignore[misc]
        return counts


def ambiguity(
    labels: np.ndarray,
    regression_probs: np.ndarray,
    closeness: Callable[[], np.ndarray],
    label_issues: np.ndarray,
    zero_shot_similarity: np.ndarray | None,
    params: AmbiguityParams,
) -> Ambiguity:
    """The ambiguity verdict over labelled images (``labels``: class index per image).

    ``closeness``: each image's similarity to each class (computed only when ``closeness_weight`` > 0);
    ``label_issues``: the label-error verdict (``label_issue_mask``); ``zero_shot_similarity``: cosine to
    each class prompt, or None.
    """
    rows = np.arange(len(labels))
    evidence = regression_probs
    if params.closeness_weight > 0:
        evidence = pooled(evidence, similarity_probabilities(closeness(), labels), params.closeness_weight)
    power = fit_sharpness(evidence, labels) if params.calibrate else 1.0
    sharpened = sharpen(evidence, power)
    del evidence  # the split reads the sharpened copy only (N x classes: 0.8 GB at 1M x 100 classes)
    embedded = split_of(sharpened, labels, params)
    given_plausible = embedded.plausible[rows, labels]
    excluded = embedded.candidates & label_issues & ~given_plausible
    by_embeddings = embedded.candidates & ~excluded

    zero_shot: Split | None = None
    by_zero_shot = np.zeros(len(labels), dtype=bool)
    if params.zero_shot and zero_shot_similarity is not None:
        zero_shot = split_of(similarity_probabilities(zero_shot_similarity, labels), labels, params)
        # Label-free evidence that leaves out the given label is a label question, not ambiguity.
        by_zero_shot = zero_shot.candidates & zero_shot.plausible[rows, labels]

    named: dict[int, tuple[int, ...]] = {}
    for i in np.flatnonzero(by_embeddings | by_zero_shot):
        view = embedded if by_embeddings[i] else zero_shot
        assert view is not None
        plausible = view.plausible[i].copy()
        if zero_shot is not None and by_zero_shot[i]:
            plausible |= zero_shot.plausible[i]
        # The reporting view's order first, then any class only the other view found plausible.
        in_order = view.order[i][plausible[view.order[i]]]  # vectorised: a row holds every class
        competing = [int(c) for c in in_order if c != labels[i]]
        competing += [int(c) for c in np.flatnonzero(plausible) if c != labels[i] and c not in competing]
        named[int(i)] = (int(labels[i]), *competing)
    return Ambiguity(embedded, zero_shot, power, by_embeddings, by_zero_shot, excluded, named)
