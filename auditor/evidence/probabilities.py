"""Out-of-sample predicted class probabilities from embeddings (the input to confident learning).

Each image's probabilities come from a classifier that never saw that image or any copy of it (identical
embeddings), so a mislabelled image cannot vouch for its own label: exact leave-one-out (leave-copies-out).

The classifier is linear discriminant analysis: each class a Gaussian around its mean, one within-class
covariance shared by all, shrunk towards its own diagonal, its logits temperature-scaled to the labels
(the discriminant's raw posteriors are far too confident when dimensions are many). Its fit is closed-form:
one pass over the rows gives each class's count and mean and the within-class scatter, one eigendecomposition
of the scatter gives the model, and leaving an image out changes it by a rank-one term, so every image's
held-out logits, at any shrinkage, come from that one decomposition (``_LeaveOut``) without any refit. The
shrinkage is chosen by held-out log-loss on a few thousand images, from the dataset's least sensible
shrinkage upwards. At 1,000 x 512-d images that is one 512 x 512 eigendecomposition where five K-fold models
took five solves more; at 20,000 x 512-d with 100 classes about 2 CPU-seconds, where the multinomial logistic
regression it replaced (L-BFGS, 12 fits of ~17 passes each) took about 16; on the benchmark collections its
label-error and ambiguity verdicts are as good (README, "Scale" and the robustness table).

Order independence: every computation here runs on the rows sorted by content (SHA-256 of the
embedding bytes, then the label), and the results are put back in the caller's order. Leave-one-out has no
fold assignment to draw; the floating-point summation order of the fits, the rows the shrinkage and the
temperature are chosen on and the tie-breaking of neighbour searches depend on what the images are, never
on file names or positions: renaming or reordering files changes no probability."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.core import progress
from auditor.core.config import ProbabilityParams, SearchParams
from auditor.core.slow_imports import blas_controller
from auditor.evidence.similarity import SearchLog, nearest, unit_rows

__all__ = ["ProbabilityParams", "blas_threads"]  # ProbabilityParams re-exported: it was defined here

# Probability given to a class an image's held-out model has no image of (its only images are that image and its
# copies), before renormalising: such a class cannot be predicted, but cleanlab needs strictly positive rows.
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


def blas_threads(limit: int | None) -> AbstractContextManager[Any]:
    """At most ``limit`` BLAS threads inside the ``with`` block (None: every thread). Small problems want one:
    on a busy machine BLAS threads spin-wait for each other."""
    limiter: AbstractContextManager[Any] = blas_controller().limit(limits=limit, user_api="blas")
    return limiter


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
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int, params: ProbabilityParams,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """(n, n_classes) probabilities; ``labels`` are ints in [0, n_classes). ``groups``: the rows'
    ``identical_rows`` ids (equal for copies) when the caller has them.

    Cost grows linearly with n at a fixed number of classes and dimension: one pass over the rows for the
    statistics, one for the held-out logits; the shrinkage and the temperature are chosen on samples of fixed
    size. The rows are held once (float32), grouped by label.
    """
    n = len(labels)
    probs = np.full((n, n_classes), _UNSEEN_CLASS_PROBABILITY, dtype=np.float64)
    if n < 2:
        # Nothing to learn from; only the prior over the one observed label is left.
        probs[np.arange(n), labels] = 1.0
        return np.asarray(probs / probs.sum(axis=1, keepdims=True))
    order = content_order(np.asarray(embeddings, dtype=np.float32), labels)
    groups = identical_rows(embeddings, order) if groups is None else np.asarray(groups)[order]
    # Content order, then grouped by label (stable): one copy of the rows, each class a contiguous block.
    by_label = np.argsort(np.asarray(labels)[order], kind="stable")
    order, groups = order[by_label], groups[by_label]
    features = np.ascontiguousarray(np.asarray(embeddings)[order], dtype=np.float32)
    labels = np.asarray(labels)[order]
    evidence = np.flatnonzero(_held_out_logits(features, labels, groups, n_classes, params, probs))
    del features  # the label-ordered copy of the rows (1M x 512: 2 GB) is not needed past the logits
    # One temperature for every image's logits, fitted to the labels of the images they are evidence about
    # (on a large dataset, a sample spread evenly over them in content order: one number needs no more).
    if len(evidence) > _TEMPERATURE_ROWS:
        evidence = evidence[np.linspace(0, len(evidence) - 1, _TEMPERATURE_ROWS).astype(np.int64)]
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
# the points at or above the dataset's least shrinkage, ``_Statistics.least_shrinkage``): 0 trusts every
# estimated correlation between dimensions, 1 ignores them all. Each point costs one images x d x classes product
# after the one eigendecomposition of the within-class correlation (``_LeaveOut``).
SHRINKAGE_GRID = (0.001, 0.01, 0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0)
# Rows per step of the statistics pass and of the held-out logits (a float64 copy of this many rows is made at a
# time).
_STAT_BATCH = 8_192
# The shrinkage is chosen on this many images (fewer on a smaller dataset): enough to tell the grid points
# apart, few enough that the choice costs a fixed amount whatever n.
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
class _Statistics:
    """What a linear discriminant needs of the rows, from one pass over them: the count and mean of each class
    and the Gram matrix of the rows' offsets from their class's mean (the within-class scatter). Offsets
    rather than raw rows, so the scatter is never a small difference of large numbers (and float32 products
    of them lose nothing that matters)."""

    means: np.ndarray  # (k, d) class means
    counts: np.ndarray  # (k,)
    scatter: np.ndarray  # (d, d)
    fourth: np.ndarray  # (d, d) sums over every row of squared offsets' products (for ``least_shrinkage``)

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, n_classes: int) -> _Statistics:
        """``features`` sorted by label."""
        dim = features.shape[1]
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        blocks = [slice(start, start + _STAT_BATCH) for start in range(0, len(labels), _STAT_BATCH)]
        totals = np.zeros((n_classes, dim))
        for rows in blocks:
            totals += _class_sums(features[rows], labels[rows], n_classes)
        means = totals / np.maximum(counts, 1)[:, None]
        centres = means.astype(features.dtype)
        scatter = np.zeros((dim, dim))
        fourth = np.zeros((dim, dim))
        for rows in blocks:
            offsets = features[rows] - centres[labels[rows]]
            scatter += offsets.T @ offsets
            squares = np.square(offsets)
            fourth += squares.T @ squares
        return cls(means, counts, scatter, fourth)

    @property
    def dof(self) -> float:
        """Degrees of freedom of the scatter: images less the classes that have some."""
        return float(self.counts.sum() - (self.counts > 0).sum())

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
        dof = max(self.dof, 1.0)
        varying = np.diag(self.scatter) > 0  # a dimension constant within every class has no correlations
        every = bool(varying.all())  # the usual case: no copies of the d x d matrices
        gram = self.scatter if every else self.scatter[np.ix_(varying, varying)]
        fourth = self.fourth if every else self.fourth[np.ix_(varying, varying)]
        variances = np.diag(gram)
        inverse = np.outer(1.0 / variances, 1.0 / variances)
        squares = np.square(gram)
        squares *= inverse  # squared correlations
        spread = fourth * inverse
        spread -= squares / n
        np.maximum(spread, 0.0, out=spread)
        # Sums over the off-diagonal entries: the whole sums less the diagonal's.
        total = float(squares.sum() - np.trace(squares))
        variance = (float(spread.sum() - np.trace(spread))) * n / dof
        return float(np.clip(variance / total, 0.0, 1.0)) if total > 0 else 1.0


def _tempered_loss(logits: np.ndarray, labels: np.ndarray, start: float = 1.0) -> tuple[float, float]:
    """Mean log-loss of held-out logits against their labels at the temperature that fits them best, and that
    temperature (the search starts at ``start``)."""
    temperature = fit_temperature(logits, labels, _LOGIT_TEMPERATURE_BOUNDS, start)
    scaled = logits * temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    picked = scaled[np.arange(len(labels)), labels]
    return float((np.log(np.exp(scaled).sum(axis=1)) - picked).mean()), temperature


def _held_out_logits(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_classes: int, params: ProbabilityParams,
    out: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` (n, n_classes) with each row's logits from the discriminant of every row but its own and its
    copies' (-inf for classes that model has no image of; 0 for the only class when it has one). Returns a bool
    per row: whether its logits are evidence about its label (its model has its class and at least one other).

    ``features`` are sorted by label; ``groups``: equal for copies (``identical_rows``).
    """
    n, dim = features.shape
    with blas_threads(1 if n * dim * dim < _ONE_THREAD_BELOW else None):
        stats = _Statistics.of(features, labels, n_classes)
    centre = stats.counts @ stats.means / n
    # Per row, its copies under its own label (itself included); copies under several labels are left out
    # together, one group at a time (``_LeaveOut.group_logits``).
    pairs, pair_of, pair_sizes = np.unique(groups * n_classes + labels, return_inverse=True, return_counts=True)
    removed = pair_sizes[pair_of.ravel()].astype(np.float64)
    mixed = np.bincount(pairs // n_classes, minlength=n)[groups] > 1
    # One thread for the d x d work: it is small, and on a busy machine BLAS threads spin-wait (an
    # eigendecomposition measured 18x slower with two threads than with one).
    with blas_threads(1):
        model = _LeaveOut.of(stats, centre)
        # A dataset no larger than the shrinkage's sample is rotated once, for the choice and the logits both.
        every = model.rotate(features) if n <= _SELECTION_ROWS else None

        def rotated(rows: np.ndarray | slice) -> np.ndarray:
            """Rows by index, standardised and in the eigenbasis."""
            return model.rotate(features[rows]) if every is None else every[rows]

        shrinkage = params.shrinkage
        if shrinkage is None:
            progress.step("classifier: choosing the shrinkage")
            least = stats.least_shrinkage()
            grid = sorted({least, *(value for value in SHRINKAGE_GRID if value > least)})
            shrinkage = _select_shrinkage(model, rotated, labels, removed, mixed, grid)
    evidence = np.zeros(n, dtype=bool)
    with blas_threads(1 if n * dim * dim < _ONE_THREAD_BELOW else None):
        for start in range(0, n, _STAT_BATCH):
            block = slice(start, min(n, start + _STAT_BATCH))
            progress.step(f"classifier: held-out logits {block.stop:,}/{n:,}")
            out[block], evidence[block] = model.logits(shrinkage, rotated(block), labels[block], removed[block])
    if mixed.any():
        rows = np.flatnonzero(mixed)
        rows = rows[np.argsort(groups[rows], kind="stable")]
        for members in np.split(rows, np.flatnonzero(np.diff(groups[rows])) + 1):
            taken = np.bincount(labels[members], minlength=n_classes).astype(np.float64)
            out[members], alive = model.group_logits(shrinkage, rotated(members[:1])[0], taken)
            evidence[members] = alive[labels[members]] & (alive.sum() >= 2)
    return evidence


def _select_shrinkage(
    model: _LeaveOut, rotated: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, removed: np.ndarray,
    mixed: np.ndarray, grid: list[float],
) -> float:
    """The ``grid`` shrinkage with the lowest held-out log-loss (after temperature scaling) on at most
    ``_SELECTION_ROWS`` images spread evenly over the rows (content order within each label): each judged, as
    every image is, by the discriminant of every other row (``_LeaveOut``). Images whose copies carry other
    labels are not scored (their logits take one small solve each). ``rotated``: rows by index, in the model's
    eigenbasis (``_LeaveOut.rotate``)."""
    counts = model.counts
    scorable = np.flatnonzero(~mixed & (counts[labels] > removed))
    if (counts > 0).sum() < 2 or len(scorable) == 0:
        return grid[len(grid) // 2]
    if len(scorable) > _SELECTION_ROWS:
        scorable = scorable[np.linspace(0, len(scorable) - 1, _SELECTION_ROWS).astype(np.int64)]
    rows, truth = rotated(scorable), labels[scorable]
    losses, temperature = [], 1.0
    for shrinkage in grid:  # neighbouring shrinkages want similar temperatures: each search starts at the last
        logits, _ = model.logits(shrinkage, rows, truth, removed[scorable])
        loss, temperature = _tempered_loss(logits, truth, temperature)
        losses.append(loss)
    return grid[int(np.argmin(losses))]


@dataclass(frozen=True)
class _LeaveOut:
    """Linear discriminant analysis of every row, in the eigenbasis of its within-class correlation, and the
    logits of any image under the discriminant of every row but it and its copies, at any shrinkage, from
    that one eigendecomposition.

    With standardised rows ``z`` (``rotate``), class means ``m``, and ``E = s I + (1 - s) S / f`` (``S`` the
    within-class scatter of the rows left, ``f`` its degrees of freedom), the logit of class ``c`` is
    ``z' E^-1 m_c - m_c' E^-1 m_c / 2 + log prior_c``. Leaving out ``g`` copies of ``z`` under label ``y``
    (``n_y`` images, offset ``o = z - m_y``) sets ``m_y -= g o / (n_y - g)``, takes ``g n_y / (n_y - g) o o'``
    out of the scatter and ``g`` images out of the degrees of freedom and the priors: a rank-one change of
    ``E``, so the held-out logits follow from the full model's by the Sherman-Morrison formula (copies under
    several labels: one rank-one term per label, ``group_logits``). The per-dimension scale that standardises
    the rows is the pooled within-class spread of every row, the held-out image included (it moves that
    scale by one image in ``n`` per dimension; refitting it per image would cost an eigendecomposition each).
    """

    vectors: np.ndarray  # (d, d) eigenvectors of the standardised within-class scatter
    values: np.ndarray  # (d,) its eigenvalues
    means: np.ndarray  # (k, d) class means, standardised, in the eigenbasis (classes with no image: zero)
    counts: np.ndarray  # (k,) images per class
    centre: np.ndarray  # (d,) mean of every row
    scale: np.ndarray  # (d,) pooled within-class standard deviation per dimension

    @classmethod
    def of(cls, stats: _Statistics, centre: np.ndarray) -> _LeaveOut:
        variance = np.diag(stats.scatter) / max(stats.dof, 1.0)
        floor = 1e-9 * float(variance.mean()) if variance.mean() > 0 else 1.0
        scale = np.sqrt(np.maximum(variance, floor))
        values, vectors = np.linalg.eigh(stats.scatter / np.outer(scale, scale))
        means = np.where((stats.counts > 0)[:, None], (stats.means - centre) / scale, 0.0) @ vectors
        return cls(vectors, np.maximum(values, 0.0), means, stats.counts, centre, scale)

    def rotate(self, rows: np.ndarray) -> np.ndarray:
        """Rows standardised (float64) and expressed in the eigenbasis."""
        return np.asarray(((rows.astype(np.float64) - self.centre) / self.scale) @ self.vectors)

    def _left(self, removed: np.ndarray, vanished: np.ndarray) -> np.ndarray:
        """Degrees of freedom of the rows left when ``removed`` images go and ``vanished`` classes with them."""
        present = float((self.counts > 0).sum())
        return np.asarray(np.maximum(self.counts.sum() - removed - (present - vanished), 1.0))

    def logits(self, shrinkage: float, rotated: np.ndarray, truth: np.ndarray,
               removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, k) logits of each ``rotated`` image (label ``truth``, ``removed`` copies of it under that label,
        itself included) under the model of every other row (-inf: a class with none), and whether they are
        evidence about its label."""
        size = self.counts[truth]
        remaining = size - removed
        present = (self.counts > 0).sum() - (remaining == 0)
        left = self._left(removed, remaining == 0)
        out = np.empty((len(truth), len(self.counts)))
        for value in np.unique(left):  # one degree of freedom for almost every image: one pass
            rows = np.flatnonzero(left == value)
            out[rows] = self._rank_one(shrinkage, rotated[rows], truth[rows], removed[rows], float(value))
        lone = np.flatnonzero(present == 1)  # one class left: it is all the model can say, and says nothing
        if len(lone):
            alive = np.broadcast_to(self.counts > 0, (len(lone), len(self.counts))).copy()
            alive[np.arange(len(lone)), truth[lone]] = remaining[lone] > 0
            out[lone] = np.where(alive, 0.0, -np.inf)
        return out, (remaining > 0) & (present >= 2)

    def _rank_one(self, shrinkage: float, rows: np.ndarray, truth: np.ndarray, removed: np.ndarray,
                  left: float) -> np.ndarray:
        """``logits`` for images whose models all have ``left`` degrees of freedom (one inverse of ``E``)."""
        means = self.means
        index = np.arange(len(truth))
        inverse = 1.0 / (shrinkage + (1.0 - shrinkage) * self.values / left)
        whitened = means * inverse
        projected = rows @ whitened.T  # z' E^-1 m_c
        cross = whitened @ means.T  # m_a' E^-1 m_c
        own = np.square(rows) @ inverse  # z' E^-1 z
        size = self.counts[truth]
        remaining = size - removed
        gone = remaining <= 0  # the class leaves with them: its mean and scatter no longer matter
        kept = np.where(gone, 1.0, remaining)
        step = np.where(gone, 0.0, removed / kept)  # the class mean moves by -step * o
        weight = np.where(gone, 0.0, (1.0 - shrinkage) * removed * size / kept / left)  # E_left = E - w o o'
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
        counts[index, truth] = remaining
        with np.errstate(divide="ignore", invalid="ignore"):
            priors = np.log(counts / counts.sum(axis=1, keepdims=True))
        return np.asarray(np.where(counts > 0, linear - 0.5 * square + priors, -np.inf))

    def group_logits(self, shrinkage: float, rotated: np.ndarray, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (k,) of one image (``rotated``) under the model of every row but its copies, ``taken[c]`` of
        them under label ``c``, and which classes that model has images of. Each label's copies move that
        class's mean and take one rank-one term out of the scatter: the Woodbury identity, with one small
        solve (a term per label)."""
        remaining = self.counts - taken
        alive = remaining > 0
        logits = np.full(len(self.counts), -np.inf)
        if alive.sum() < 2:
            logits[alive] = 0.0
            return logits, alive
        left = float(self._left(np.array(taken.sum()), np.array(float(((self.counts > 0) & ~alive).sum()))))
        inverse = 1.0 / (shrinkage + (1.0 - shrinkage) * self.values / left)
        moved = np.flatnonzero((taken > 0) & alive)
        offsets = rotated - self.means[moved]
        means = self.means.copy()
        means[moved] -= (taken[moved] / remaining[moved])[:, None] * offsets
        weights = (1.0 - shrinkage) * taken[moved] * self.counts[moved] / remaining[moved] / left
        terms = np.sqrt(weights)[:, None] * offsets
        core = np.eye(len(moved)) - (terms * inverse) @ terms.T  # E_left = D - U'U: (D - U'U)^-1 by Woodbury
        through_means = terms @ (means * inverse).T  # U D^-1 m_c
        through_row = terms @ (rotated * inverse)  # U D^-1 z
        solved = np.linalg.solve(core, through_means) if len(moved) else through_means
        linear = (means * inverse) @ rotated + through_row @ solved
        square = np.einsum("kd,kd,d->k", means, means, inverse) + (through_means * solved).sum(axis=0)
        with np.errstate(divide="ignore"):
            priors = np.log(np.where(alive, remaining, 0.0) / remaining[alive].sum())
        logits[alive] = (linear - 0.5 * square + priors)[alive]
        return logits, alive
