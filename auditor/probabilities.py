"""Out-of-sample predicted class probabilities from embeddings (the input to confident learning).

Each image's probabilities come from a classifier that never saw that image (stratified K-fold), so
a mislabelled image cannot vouch for its own label. Identical embeddings (copies of one image) always
share a fold.

The classifier is linear discriminant analysis: each class a Gaussian around its mean, one within-class
covariance shared by all, shrunk towards its own diagonal, its logits temperature-scaled to the labels
(the discriminant's raw posteriors are far too confident when dimensions are many). Its fit is closed-form,
so its whole cost is one pass over the rows: per fold, the count, sum and scatter (Gram matrix) of each
class's rows; a fold's model is the totals minus the fold's own statistics, never a refit. The shrinkage
is chosen by held-out log-loss on a few thousand images, from the dataset's least sensible shrinkage
upwards. At 20,000 x 512-d images with 100 classes that is about 2 CPU-seconds, where the multinomial
logistic regression it replaced (L-BFGS, 12 fits of ~17 passes each) took about 16; on the benchmark
collections its label-error and ambiguity verdicts are as good (README, "Scale" and the robustness table).

Order independence: every computation here runs on the rows sorted by content (SHA-256 of the
embedding bytes, then the label), and the results are put back in the caller's order. Fold assignment,
the floating-point summation order of the fits and the tie-breaking of neighbour searches therefore
depend on what the images are, never on file names or positions: renaming or reordering files changes
no probability.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from auditor import progress
from auditor.config import ProbabilityParams, SearchParams
from auditor.similarity import SearchLog, nearest, unit_rows

__all__ = ["ProbabilityParams", "blas_threads"]  # ProbabilityParams re-exported: it was defined here

# Probability given to a class the fold's model never saw (a class too small to be in every fold),
# before renormalising: such a class cannot be predicted, but cleanlab needs strictly positive rows.
_UNSEEN_CLASS_PROBABILITY = 1e-6
# Below this many multiply-adds (images x dimensions x dimensions or classes) a matrix product runs on one BLAS
# thread: threads cost more than they save on small matrices, and on a busy machine their spin-waiting made a
# 210-image fit 17x slower (49 s -> 2.8 s measured here) and the statistics of 1,000 x 512-d images (2.6e8) 3.5x
# more CPU-costly, where on an idle 2-core machine a second thread saves a few milliseconds. Large products keep
# every thread.
_ONE_THREAD_BELOW = 1_000_000_000
# Vectors per step of the k-NN vote's tally and its neighbours' expansion (bounds their temporaries).
_VOTE_BATCH = 65_536
# A temperature is fitted on a sample of this many images (all of them on a smaller dataset), so its cost and
# memory stay fixed as n grows: seeded for the discriminant's logits (rows already in content order), chosen by
# the scores' contents in ``fit_temperature`` itself.
_TEMPERATURE_ROWS = 20_000
# Images per step of ``by_rows``.
_TRANSFORM_ROWS = 65_536
# Newton's method for a temperature stops after this many steps, or when a step moves it by less than this
# fraction of itself.
_NEWTON_STEPS = 50
_TEMPERATURE_TOLERANCE = 1e-7


@cache
def _blas() -> ThreadpoolController:
    """The loaded BLAS libraries, found once: each ``threadpool_limits`` scans the process's shared libraries
    again (about 7 ms, three times per fit)."""
    return ThreadpoolController()


def blas_threads(limit: int | None) -> AbstractContextManager[Any]:
    """At most ``limit`` BLAS threads inside the ``with`` block (None: every thread). Small problems want one:
    on a busy machine BLAS threads spin-wait for each other."""
    limiter: AbstractContextManager[Any] = _blas().limit(limits=limit, user_api="blas")
    return limiter


def fold_assignment(labels: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Fold index per image, stratified: each class is shuffled and dealt round-robin over the folds.

    Each class starts dealing at a random fold, so classes smaller than ``folds`` (even singletons)
    spread over different folds instead of all landing in fold 0. Images sharing a ``groups`` value
    are dealt as one (under their first member's label) and so share a fold.
    """
    if groups is None:
        groups = np.arange(len(labels))
    _, first, group_of = np.unique(groups, return_index=True, return_inverse=True)
    group_labels = labels[first]
    rng = np.random.default_rng(seed)
    group_fold = np.empty(len(first), dtype=np.int64)
    for label in np.unique(group_labels):
        members = rng.permutation(np.flatnonzero(group_labels == label))
        start = int(rng.integers(folds))
        group_fold[members] = (start + np.arange(len(members))) % folds
    return group_fold[group_of]


def content_order(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The permutation that sorts rows by content: SHA-256 of the embedding bytes, then the label."""
    rows = np.ascontiguousarray(features)
    keys = [hashlib.sha256(row.tobytes()).digest() for row in rows]
    return np.array(sorted(range(len(keys)), key=lambda i: (keys[i], int(labels[i]))), dtype=np.int64)


def identical_rows(matrix: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Group id per row (of ``matrix[rows]``, read in place), equal for rows with identical bytes (copies of
    one image embed identically); ids are numbered in order of first appearance."""
    # Keyed by a 128-bit digest, not the row's bytes: a dict of 1M rows' bytes would copy the matrix again.
    seen: dict[bytes, int] = {}
    picked = range(len(matrix)) if rows is None else rows
    return np.array([seen.setdefault(hashlib.blake2b(np.ascontiguousarray(matrix[i]).data, digest_size=16).digest(),
                                     len(seen)) for i in picked], dtype=np.int64)


def out_of_sample_probabilities(
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int, params: ProbabilityParams
) -> np.ndarray:
    """(n, n_classes) probabilities; ``labels`` are ints in [0, n_classes).

    Cost grows linearly with n at a fixed number of classes and dimension: one pass over the rows for the
    fold statistics, one for the held-out logits; the shrinkage and the temperature are chosen on samples
    of fixed size. The rows are held once (float32), grouped by fold and by label within a fold.
    """
    n = len(labels)
    probs = np.full((n, n_classes), _UNSEEN_CLASS_PROBABILITY, dtype=np.float64)
    if n < 2:
        # Nothing to learn from; only the prior over the one observed label is left.
        probs[np.arange(n), labels] = 1.0
        return np.asarray(probs / probs.sum(axis=1, keepdims=True))
    order = content_order(np.asarray(embeddings, dtype=np.float32), labels)
    folds = min(params.folds, n)
    # Copies of one image must share a fold, or one copy's label would vouch for the other's.
    groups = identical_rows(embeddings, order)
    assignment = fold_assignment(np.asarray(labels)[order], folds, params.seed, groups)
    # Content order, then grouped by fold and by label within a fold (stable): one copy of the rows, each fold
    # a contiguous block, each class within it too.
    by_fold = np.lexsort((np.asarray(labels)[order], assignment))
    order, assignment, groups = order[by_fold], assignment[by_fold], groups[by_fold]
    features = np.ascontiguousarray(np.asarray(embeddings)[order], dtype=np.float32)
    labels = np.asarray(labels)[order]
    bounds = np.searchsorted(assignment, np.arange(folds + 1))
    evidence = np.flatnonzero(_discriminant_logits(features, labels, groups, bounds, n_classes, params, probs))
    del features  # the fold-ordered copy of the rows (1M x 512: 2 GB) is not needed past the logits
    # One temperature for every fold's logits, fitted to the labels of the images they are evidence about
    # (a seeded sample of them on a large dataset: one number needs no more).
    if len(evidence) > _TEMPERATURE_ROWS:
        evidence = np.sort(np.random.default_rng(params.seed).choice(evidence, _TEMPERATURE_ROWS, replace=False))
    temperature = 1.0
    if len(evidence):
        temperature = fit_temperature(probs[evidence], labels[evidence], _LOGIT_TEMPERATURE_BOUNDS)
    for start in range(0, n, _STAT_BATCH):
        probs[start:start + _STAT_BATCH] = softmax(probs[start:start + _STAT_BATCH] * temperature)
    # In place: at 1M x 100 classes each copy of the probabilities is 0.8 GB.
    np.clip(probs, _UNSEEN_CLASS_PROBABILITY, None, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)
    restored = np.empty_like(probs)
    restored[order] = probs
    return restored


@dataclass(frozen=True)
class DistinctNeighbours:
    """One self-search over the distinct vectors among some rows: copies of an image embed identically, so each
    vector is searched once. The vectors are searched in content order (SHA-256 of their bytes), so ties break
    by what the images are, never by file order. Shared by the k-NN vote and the semantic duplicates method.
    """

    # (rows,) for each row searched, the position of its vector among the distinct vectors.
    position: np.ndarray
    # (vectors, k) each distinct vector's nearest distinct vectors (positions), nearest first, itself
    # included; -1 where none was found.
    index: np.ndarray
    # (vectors, k) float32 cosine similarities of those.
    value: np.ndarray
    # "exact" or "cell_join" (``similarity.nearest``).
    search: str

    def members_nearest(self, position: np.ndarray, width: int, own: bool) -> tuple[np.ndarray, np.ndarray]:
        """For each distinct vector, its ``width`` nearest members: ``position`` gives each member's vector,
        and the members of a vector follow one another in their order in ``position``. Each neighbouring
        vector, nearest first, contributes all its members; its own members too when ``own`` (else copies are
        skipped). Returns (vectors, width) member indices (-1: none) and cosines (-inf: none)."""
        count = len(self.index)
        grouped = np.argsort(position, kind="stable")
        starts = np.searchsorted(position[grouped], np.arange(count + 1))
        sizes = np.diff(starts)
        found = np.full((count, width), -1, dtype=np.int64)
        value = np.full((count, width), -np.inf, dtype=np.float32)
        for start in range(0, count, _VOTE_BATCH):
            stop = min(count, start + _VOTE_BATCH)
            hits = self.index[start:stop]
            contributed = np.where(hits >= 0, sizes[np.maximum(hits, 0)], 0)
            if not own:
                contributed[hits == np.arange(start, stop)[:, None]] = 0
            before = np.cumsum(contributed, axis=1) - contributed
            taken = np.clip(width - before, 0, contributed)
            rows, columns = np.nonzero(taken)  # row by row, nearest first
            counts = taken[rows, columns]
            rows, columns = np.repeat(rows, counts), np.repeat(columns, counts)
            offset = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
            slot = before[rows, columns] + offset
            found[start + rows, slot] = grouped[starts[hits[rows, columns]] + offset]
            value[start + rows, slot] = self.value[start:stop][rows, columns]
        return found, value

    def of_members(self, position: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each member's ``k`` nearest other members (``members_nearest``: its copies first), as (members, k)
        member indices (-1: none) and float64 cosines."""
        found, value = self.members_nearest(position, k + 1, own=True)
        found, value = found[position], value[position]
        keep = found != np.arange(len(position))[:, None]
        keep &= np.cumsum(keep, axis=1) <= k
        return found[keep].reshape(len(position), k), value[keep].reshape(len(position), k).astype(np.float64)


def distinct_neighbours(
    matrix: np.ndarray, rows: np.ndarray, k: int, search: SearchParams, log: SearchLog | None, name: str,
    groups: np.ndarray | None = None,
) -> DistinctNeighbours:
    """The ``k`` nearest distinct vectors (itself included) of each distinct vector among ``matrix[rows]``, by
    cosine (``similarity.nearest``: exact up to ``search.exact_max_vectors`` vectors). ``groups``: the rows'
    ``identical_rows`` ids when the caller has them."""
    groups = identical_rows(matrix, rows) if groups is None else groups
    _, first, vector_of = np.unique(groups, return_index=True, return_inverse=True)
    first_rows = np.asarray(rows)[first]
    keys = [hashlib.sha256(np.ascontiguousarray(matrix[row], dtype=np.float32).tobytes()).digest()
            for row in first_rows]
    order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    unit = unit_rows(matrix, first_rows[order])
    trace = log if log is not None else SearchLog()
    value, index = nearest(unit, min(k, len(unit)), search, name, trace)
    return DistinctNeighbours(position[vector_of.ravel()], index, value, trace.records[-1]["method"])


def blended_probabilities(
    embeddings: np.ndarray, labels: np.ndarray, regression: np.ndarray, params: ProbabilityParams,
    search: SearchParams | None = None, log: SearchLog | None = None,
    shared: tuple[DistinctNeighbours, np.ndarray] | None = None,
) -> np.ndarray:
    """The regression's probabilities averaged with a leave-one-out k-NN vote (label-error evidence).

    A linear model and a local vote err differently (one sees global structure, the other local
    clusters), so their blend is better calibrated for confident learning. Ambiguity uses the
    regression alone: a local vote turns an image between two classes into a vote for one of them.

    ``shared``: a search over these rows' vectors (possibly among others, each of them some row's) and each
    row's position in it; without it the vote searches its own.
    """
    n, n_classes = regression.shape
    if params.knn_neighbours == 0 or params.knn_weight == 0 or n <= params.knn_neighbours:
        return regression
    if shared is None:
        found = distinct_neighbours(embeddings, np.arange(n), params.knn_neighbours + 1, search or SearchParams(),
                                    log, "knn_vote")
        shared = found, found.position
    votes = knn_vote_probabilities(np.asarray(labels), n_classes, params.knn_neighbours, *shared)
    # In place (the same sum, term for term): each (n, classes) temporary is 0.8 GB at 1M x 100 classes.
    votes *= params.knn_weight
    votes += (1.0 - params.knn_weight) * regression
    return votes


def knn_vote_probabilities(
    labels: np.ndarray, n_classes: int, neighbours: int, found: DistinctNeighbours, position: np.ndarray,
) -> np.ndarray:
    """Leave-one-out similarity-weighted k-NN class votes (weight: cosine cubed): out of sample by construction.

    Each row's ``neighbours`` nearest other rows vote; copies of an image (rows at one ``position``) never
    vote for each other and all get the same vote, so it is computed once per vector. Rows of a neighbouring
    vector vote in content order (by label), as they would in a search of every row sorted by content.
    """
    progress.step("k-NN vote")
    n = len(labels)
    members = np.lexsort((labels, position))  # content order: by vector, then label
    hits, similarity = found.members_nearest(position[members], neighbours, own=False)
    count = len(hits)
    votes = np.zeros((count, n_classes), dtype=np.float64)
    for start in range(0, count, _VOTE_BATCH):
        stop = min(count, start + _VOTE_BATCH)
        rows = np.arange(start, stop)
        valid = hits[start:stop] >= 0
        weight = np.where(valid, np.clip(similarity[start:stop], 0.0, None).astype(np.float64) ** 3, 0.0)
        neighbour_labels = labels[members[np.maximum(hits[start:stop], 0)]]
        for column in range(neighbours):
            np.add.at(votes, (rows, neighbour_labels[:, column]), weight[:, column])
    votes = votes[position]
    prior = np.bincount(labels, minlength=n_classes) / n
    # A little prior mass keeps an image with no (or weak) neighbours from a hard 0/1 vote.
    votes += 0.1 * prior
    return np.asarray(votes / votes.sum(axis=1, keepdims=True))


def by_rows(shape: tuple[int, ...], transform: Callable[[slice], np.ndarray], dtype: Any = np.float64) -> np.ndarray:
    """``transform(rows)`` for consecutive row slices, written into one new array: a per-image transform of
    N x classes values whose whole-array temporaries would be 0.8 GB each at 1M images x 100 classes."""
    out = np.empty(shape, dtype=dtype)
    for start in range(0, shape[0], _TRANSFORM_ROWS):
        rows = slice(start, start + _TRANSFORM_ROWS)
        out[rows] = transform(rows)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; a ``-inf`` logit gets probability 0, and a row of only ``-inf`` becomes uniform.

    One new array, worked in place: at 1M images x 100 classes each temporary is 0.8 GB."""
    peak = logits.max(axis=1, keepdims=True)
    exp = logits - np.where(np.isfinite(peak), peak, 0.0)
    np.exp(exp, out=exp)
    totals = exp.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    exp /= np.where(empty[:, None], 1.0, totals)
    exp[empty] = 1.0 / logits.shape[1]
    return np.asarray(exp)


def fit_temperature(scores: np.ndarray, labels: np.ndarray, bounds: tuple[float, float], start: float = 1.0) -> float:
    """The factor ``t`` in ``bounds`` for which ``softmax(t * scores)`` best explains ``labels`` (maximum
    likelihood).

    Temperature scaling: it makes scores on any scale (log-probabilities, cosines, discriminant logits) as
    confident as they have earned on these labels. ``scores`` may hold ``-inf`` (a class that cannot be),
    never at a label. The negative log-likelihood is convex in ``t`` (a log-sum-exp of functions linear in
    ``t``), and its first two derivatives are the mean over images of ``E[s] - s_label`` and ``Var[s]``
    under ``softmax(t * s)``, so Newton's method, halving any step that does not lower it, finds the
    minimum in a handful of passes over the scores (a bracketing search took about 25). ``start``: where the
    search starts (a nearby problem's answer saves passes; the minimum is the same).
    """
    lo, hi = bounds
    if len(labels) == 0:
        return min(max(start, lo), hi)
    if len(labels) > _TEMPERATURE_ROWS:
        # One number needs no more rows; at 1M x 100 classes each pass over every row holds 3 GB.
        picked = _content_rows(scores, _TEMPERATURE_ROWS)
        scores, labels = scores[picked], np.asarray(labels)[picked]
    rows = np.arange(len(labels))
    finite = np.isfinite(scores)
    every = bool(finite.all())  # the usual case: no masking needed in the passes below
    plain = scores if every else np.where(finite, scores, 0.0)
    squares = plain * plain
    at_label = plain[rows, labels]

    def value_slope_curvature(temperature: float) -> tuple[float, float, float]:
        scaled = plain * temperature if every else np.where(finite, plain * temperature, -np.inf)
        peak = scaled.max(axis=1, keepdims=True)
        weights = np.exp(scaled - peak)
        totals = weights.sum(axis=1)
        weights /= totals[:, None]
        mean = np.einsum("ij,ij->i", weights, plain)
        second = np.einsum("ij,ij->i", weights, squares)
        value = float((np.log(totals) + peak[:, 0] - temperature * at_label).mean())
        return value, float((mean - at_label).mean()), float(np.maximum(second - mean * mean, 0.0).mean())

    temperature = min(max(start, lo), hi)
    value, slope, curvature = value_slope_curvature(temperature)
    for _ in range(_NEWTON_STEPS):
        if slope == 0.0:
            break
        # Saturated scores (every row's softmax one-hot) have no curvature left to measure: step by a decade.
        step = slope / curvature if curvature > 0.0 else np.sign(slope) * 0.9 * temperature
        target = min(max(temperature - step, lo), hi)
        for _ in range(_NEWTON_STEPS):
            new_value, new_slope, new_curvature = value_slope_curvature(target)
            if new_value <= value or abs(target - temperature) <= _TEMPERATURE_TOLERANCE * temperature:
                break
            target = 0.5 * (target + temperature)
        converged = abs(target - temperature) <= _TEMPERATURE_TOLERANCE * temperature
        if new_value <= value:
            temperature, value, slope, curvature = target, new_value, new_slope, new_curvature
        if converged:
            break
    return float(temperature)


def _content_rows(scores: np.ndarray, size: int) -> np.ndarray:
    """``size`` rows chosen by their scores alone (evenly spaced along one seeded random direction, ``-inf``
    read as 0), so a sample of a large dataset follows its contents, never its file order."""
    direction = np.random.default_rng(0).standard_normal(size=scores.shape[1])
    projection = np.empty(len(scores))
    for start in range(0, len(scores), _STAT_BATCH):
        batch = scores[start:start + _STAT_BATCH]
        projection[start:start + _STAT_BATCH] = np.where(np.isfinite(batch), batch, 0.0) @ direction
    order = np.argsort(projection, kind="stable")
    return order[np.linspace(0, len(scores) - 1, num=size).round().astype(np.int64)]


# Shrinkage of the within-class covariance towards its own diagonal searched when ``shrinkage`` is unset (only
# the points at or above the dataset's least shrinkage, ``_FoldStatistics.least_shrinkage``): 0 trusts every
# estimated correlation between dimensions, 1 ignores them all. Each point costs one images x d x classes product
# after one eigendecomposition of the pooled within-class correlation (``_LeaveOneOut``).
SHRINKAGE_GRID = (0.001, 0.01, 0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0)
# Rows per step of the statistics pass (a float64 copy of this many rows is made at a time).
_STAT_BATCH = 8_192
# The shrinkage is chosen on this many images, each left out in turn (fewer on a smaller dataset): enough to
# tell the grid points apart, few enough that the choice costs a fixed amount whatever n.
_SELECTION_ROWS = 4_000
# Temperatures searched for the discriminant's logits (it is overconfident by orders of magnitude when
# dimensions outnumber images).
_LOGIT_TEMPERATURE_BOUNDS = (1e-6, 100.0)


def _class_sums(rows: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, d) float64 sums of ``rows`` per label; ``labels`` sorted (runs summed in place, no copy)."""
    sums = np.zeros((n_classes, rows.shape[1]))
    if len(rows):
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        sums[labels[starts]] = np.add.reduceat(rows, starts, axis=0, dtype=np.float64)
    return sums


@dataclass(frozen=True)
class _FoldStatistics:
    """What a linear discriminant needs of each fold's rows, from one pass over the data: per fold, the count
    per class, the sum per class and the Gram matrix of the rows' offsets from their class's mean over all
    rows. A fold's training statistics are the totals minus the fold's own (no refit, no second pass).
    Offsets from the class means rather than raw rows, so the within-class scatter is never a small
    difference of large numbers (and float32 products of them lose nothing that matters)."""

    means: np.ndarray  # (k, d) class means over every row
    counts: np.ndarray  # (folds, k)
    sums: np.ndarray  # (folds, k, d)
    grams: np.ndarray  # (folds, d, d)
    fourth: np.ndarray  # (d, d) sums over every row of squared offsets' products (for ``least_shrinkage``)

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, bounds: np.ndarray, n_classes: int) -> _FoldStatistics:
        """``features`` grouped by fold (``bounds``) and sorted by label within each fold."""
        folds, dim = len(bounds) - 1, features.shape[1]
        counts = np.zeros((folds, n_classes))
        totals = np.zeros((n_classes, dim))
        blocks = [(fold, start, min(start + _STAT_BATCH, int(bounds[fold + 1])))
                  for fold in range(folds) for start in range(int(bounds[fold]), int(bounds[fold + 1]), _STAT_BATCH)]
        for fold, start, stop in blocks:
            counts[fold] += np.bincount(labels[start:stop], minlength=n_classes)
            totals += _class_sums(features[start:stop], labels[start:stop], n_classes)
        means = totals / np.maximum(counts.sum(axis=0), 1)[:, None]
        centres = means.astype(features.dtype)
        sums = np.zeros((folds, n_classes, dim))
        grams = np.zeros((folds, dim, dim))
        fourth = np.zeros((dim, dim))
        for fold, start, stop in blocks:
            offsets = features[start:stop] - centres[labels[start:stop]]
            grams[fold] += offsets.T @ offsets
            squares = np.square(offsets)
            fourth += squares.T @ squares
            sums[fold] += _class_sums(offsets, labels[start:stop], n_classes)
        return cls(means, counts, sums, grams, fourth)

    def least_shrinkage(self) -> float:
        """Schaefer and Strimmer's (2005) estimate of the shrinkage of the within-class correlation towards the
        identity that estimates it best from these rows: the summed sampling variance of the off-diagonal
        correlations over their summed squares (near 1 when dimensions outnumber images, near 0 with many).

        Less shrinkage than this fits the noise of the correlation estimate; on a few dozen images a held-out
        log-loss measured on a few of them cannot tell (it chose a near-singular covariance that filed a
        misfiled drawing under its wrong label), so the search starts here. One figure for the whole
        dataset, from every row: a bound on a setting, never evidence about any one image.
        """
        n = float(self.counts.sum())
        dof = max(n - float((self.counts.sum(axis=0) > 0).sum()), 1.0)
        gram = self.grams.sum(axis=0)
        varying = np.diag(gram) > 0  # a dimension constant within every class has no correlations to estimate
        gram = gram[np.ix_(varying, varying)]
        fourth = self.fourth[np.ix_(varying, varying)]
        scale = np.outer(np.diag(gram), np.diag(gram))
        correlation = gram / np.sqrt(scale)
        spread = n / dof**3 * np.maximum(fourth * dof**2 / scale - correlation**2 * dof**2 / n, 0.0)
        off = ~np.eye(len(gram), dtype=bool)
        squares = float(np.square(correlation[off]).sum())
        return float(np.clip(spread[off].sum() / squares, 0.0, 1.0)) if squares > 0 else 1.0

    def discriminant(self, fold: int) -> _Discriminant:
        """The shared-covariance Gaussian model of every row outside ``fold``."""
        counts = self.counts.sum(axis=0) - self.counts[fold]
        present = np.flatnonzero(counts > 0)
        counts = counts[present]
        offsets = (self.sums.sum(axis=0) - self.sums[fold])[present] / counts[:, None]
        scatter = self.grams.sum(axis=0) - self.grams[fold] - (offsets * counts[:, None]).T @ offsets
        covariance = scatter / max(counts.sum() - len(present), 1.0)
        variance = np.diag(covariance).copy()
        floor = 1e-9 * float(variance.mean()) if variance.mean() > 0 else 1.0
        scale = np.sqrt(np.maximum(variance, floor))
        return _Discriminant(present, self.means[present] + offsets, np.log(counts / counts.sum()), scale,
                             covariance / np.outer(scale, scale))


@dataclass(frozen=True)
class _Discriminant:
    """Linear discriminant analysis of one fold's training rows: class means, priors and the within-class
    correlation (covariance over the per-dimension scales), so that a shrinkage costs one d x d solve."""

    present: np.ndarray  # class ids with training rows
    means: np.ndarray  # (len(present), d)
    log_priors: np.ndarray
    scale: np.ndarray  # per-dimension within-class standard deviation
    correlation: np.ndarray

    def linear(self, shrinkage: float, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights (d, classes) and bias of the rows' logits, the correlation shrunk towards the identity
        (the covariance towards its diagonal)."""
        centred = (self.means - centre) / self.scale
        shrunk = (1.0 - shrinkage) * self.correlation
        shrunk[np.diag_indices_from(shrunk)] += shrinkage
        whitened = np.linalg.solve(shrunk, centred.T)
        weights = whitened / self.scale[:, None]
        bias = -0.5 * np.einsum("kd,dk->k", centred, whitened) + self.log_priors - centre @ weights
        return weights, bias


def _logits(rows: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``rows @ weights + bias`` in float64, a batch of rows at a time."""
    out = np.empty((len(rows), weights.shape[1]))
    for start in range(0, len(rows), _STAT_BATCH):
        out[start:start + _STAT_BATCH] = rows[start:start + _STAT_BATCH].astype(np.float64) @ weights + bias
    return out


def _tempered_loss(logits: np.ndarray, labels: np.ndarray, start: float = 1.0) -> tuple[float, float]:
    """Mean log-loss of held-out logits against their labels at the temperature that fits them best, and that
    temperature (the search starts at ``start``)."""
    temperature = fit_temperature(logits, labels, _LOGIT_TEMPERATURE_BOUNDS, start)
    scaled = logits * temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    picked = scaled[np.arange(len(labels)), labels]
    return float((np.log(np.exp(scaled).sum(axis=1)) - picked).mean()), temperature


def _discriminant_logits(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, bounds: np.ndarray, n_classes: int,
    params: ProbabilityParams, out: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` (n, n_classes) with each row's logits from the discriminant of the other folds' rows
    (-inf for classes that model never saw; 0 for the only class when it saw one). Returns a bool per row:
    whether its logits are evidence about its label (its model saw its class and at least one other).

    ``features`` are grouped by fold (``bounds``) and sorted by label within a fold; ``groups``: equal for copies.
    """
    n, dim = features.shape
    with blas_threads(1 if n * dim * dim < _ONE_THREAD_BELOW else None):
        stats = _FoldStatistics.of(features, labels, bounds, n_classes)
    centre = (stats.means * stats.counts.sum(axis=0)[:, None]).sum(axis=0) / n
    # One thread for the d x d work: it is small, and on a busy machine BLAS threads spin-wait (an
    # eigendecomposition measured 18x slower with two threads than with one; the five folds' models at
    # 1,000 x 512-d, 7x more CPU).
    with blas_threads(1):
        models = [stats.discriminant(fold) for fold in range(len(bounds) - 1)]
        shrinkage = params.shrinkage
        if shrinkage is None:
            progress.step("classifier: choosing the shrinkage")
            least = stats.least_shrinkage()
            grid = sorted({least, *(value for value in SHRINKAGE_GRID if value > least)})
            shrinkage = _select_shrinkage(features, labels, groups, stats, centre, grid)
        # A fold whose training rows hold one class predicts it for every image (no evidence either way).
        linear = [model.linear(shrinkage, centre) if len(model.present) > 1 else None for model in models]
    evidence = np.zeros(n, dtype=bool)
    with blas_threads(1 if n * dim * n_classes < _ONE_THREAD_BELOW else None):
        for fold, model in enumerate(models):
            progress.step(f"classifier fold {fold + 1}/{len(models)}")
            lo, hi = int(bounds[fold]), int(bounds[fold + 1])
            out[lo:hi] = -np.inf
            out[lo:hi, model.present] = 0.0
            weights = linear[fold]
            if weights is not None:
                out[lo:hi, model.present] = _logits(features[lo:hi], *weights)
                seen = np.zeros(n_classes, dtype=bool)
                seen[model.present] = True
                evidence[lo:hi] = seen[labels[lo:hi]]
    return evidence


def _select_shrinkage(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, stats: _FoldStatistics, centre: np.ndarray,
    grid: list[float],
) -> float:
    """The ``grid`` shrinkage with the lowest leave-one-out log-loss (after temperature scaling) of the discriminant
    of every row, on at most ``_SELECTION_ROWS`` images spread evenly over the rows.

    Closed form, from one eigendecomposition of the pooled within-class correlation: leaving one image out
    moves its class's mean and prior and takes a rank-one term out of the scatter, so its held-out logits at
    every shrinkage follow from the full model's by the Sherman-Morrison formula (``_LeaveOneOut``). The
    K-fold models' own decompositions (one per fold, each a d x d eigendecomposition) are never needed: at
    1,000 x 512-d images that was most of the classifier's cost. The correlation is scaled by the pooled
    per-dimension spread of every row (a fold's model uses its own: a difference of one image in hundreds
    per dimension, immaterial to a choice among a handful of settings). An image with copies is not scored:
    a copy left in would vouch for it, where the folds keep copies together.
    """
    loo = _LeaveOneOut.of(features, labels, groups, stats, centre)
    if loo is None:
        return grid[len(grid) // 2]
    losses, temperature = [], 1.0
    for shrinkage in grid:  # neighbouring shrinkages want similar temperatures: each search starts at the last
        loss, temperature = _tempered_loss(loo.logits(shrinkage), loo.truth, temperature)
        losses.append(loss)
    return grid[int(np.argmin(losses))]


@dataclass(frozen=True)
class _LeaveOneOut:
    """The pooled discriminant in the eigenbasis of its within-class correlation, and what leaving each scored
    image out changes: the logits of image ``i`` under the model of every row but ``i``, at any shrinkage.

    With ``E = s I + (1 - s) R`` (``R`` the correlation of the rows left) and standardised rows ``z``, class
    means ``m``, the logit of class ``c`` is ``z' E^-1 m_c - m_c' E^-1 m_c / 2 + log prior_c``. Leaving out
    ``z`` (label ``y``, offset ``o = z - m_y``, ``n_y`` images) sets ``m_y -= o / (n_y - 1)``, takes
    ``n_y / (n_y - 1) o o'`` out of the scatter and one image out of the degrees of freedom and the priors.
    """

    rotated: np.ndarray  # (r, d) scored rows, standardised, in the eigenbasis
    means: np.ndarray  # (k, d) class means, standardised, in the eigenbasis (every class, absent ones zero)
    values: np.ndarray  # (d,) eigenvalues of the pooled correlation
    truth: np.ndarray  # (r,) labels of the scored rows
    counts: np.ndarray  # (k,) images per class, all rows
    dof: float  # degrees of freedom of the pooled scatter (images - classes present)

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, groups: np.ndarray, stats: _FoldStatistics,
           centre: np.ndarray) -> _LeaveOneOut | None:
        counts = stats.counts.sum(axis=0)
        present = counts > 0
        dof = float(counts.sum() - present.sum())
        # Scored: images without copies, whose class keeps an image when they leave, in a dataset of two
        # classes or more.
        copies = np.bincount(groups)[groups] > 1
        scorable = np.flatnonzero(~copies & (counts[labels] >= 2))
        if present.sum() < 2 or dof < 2 or len(scorable) == 0:
            return None
        if len(scorable) > _SELECTION_ROWS:
            scorable = scorable[np.linspace(0, len(scorable) - 1, _SELECTION_ROWS).astype(np.int64)]
        gram = stats.grams.sum(axis=0)
        variance = np.diag(gram) / dof
        floor = 1e-9 * float(variance.mean()) if variance.mean() > 0 else 1.0
        scale = np.sqrt(np.maximum(variance, floor))
        values, vectors = np.linalg.eigh(gram / np.outer(scale, scale) / dof)
        rows = (features[scorable].astype(np.float64) - centre) / scale
        means = np.where(present[:, None], (stats.means - centre) / scale, 0.0)
        return cls(rows @ vectors, means @ vectors, np.maximum(values, 0.0), labels[scorable], counts, dof)

    def logits(self, shrinkage: float) -> np.ndarray:
        """(r, k) logits of each scored image under the model of every other row (-inf: a class with none)."""
        rows, means, truth = self.rotated, self.means, self.truth
        index = np.arange(len(truth))
        left = self.dof - 1.0
        inverse = 1.0 / (shrinkage + (1.0 - shrinkage) * self.values * (self.dof / left))
        projected = (rows * inverse) @ means.T  # z' E^-1 m_c
        cross = (means * inverse) @ means.T  # m_a' E^-1 m_c
        own = np.einsum("rd,rd,d->r", rows, rows, inverse)  # z' E^-1 z
        size = self.counts[truth]
        step = 1.0 / (size - 1.0)  # the class mean moves by -step * o
        weight = (1.0 - shrinkage) * size / (size - 1.0) / left  # E_left = E - weight * o o'
        at_label = projected[index, truth]
        offset_means = projected - cross[truth]  # o' E^-1 m_c
        offset_row = own - at_label  # o' E^-1 z
        offset_own = own - 2.0 * at_label + cross[truth, truth]  # o' E^-1 o
        keep = 1.0 / (1.0 - weight * offset_own)
        linear = projected + (weight * keep * offset_row)[:, None] * offset_means
        square = np.diag(cross)[None, :] + (weight * keep)[:, None] * offset_means**2
        # The given class: its mean m_y - step * o.
        moved = offset_means[index, truth] - step * offset_own  # o' E^-1 m_y(left)
        linear[index, truth] = at_label - step * offset_row + weight * keep * offset_row * moved
        square[index, truth] = (cross[truth, truth] - 2.0 * step * offset_means[index, truth]
                                + step**2 * offset_own + weight * keep * moved**2)
        counts = np.broadcast_to(self.counts, linear.shape).copy()
        counts[index, truth] -= 1.0
        with np.errstate(divide="ignore"):
            priors = np.log(counts / counts.sum(axis=1, keepdims=True))
        return np.asarray(np.where(counts > 0, linear - 0.5 * square + priors, -np.inf))
