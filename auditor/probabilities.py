"""Out-of-sample predicted class probabilities from embeddings (the input to confident learning).

Each image's probabilities come from a classifier that never saw that image (stratified K-fold), so
a mislabelled image cannot vouch for its own label. The classifier is a multinomial logistic
regression on standardised embeddings, fitted full-batch with L-BFGS in float32: the gradient is two
matrix products, so 100k x 512-d embeddings with 100 classes fit in well under a minute per fold on
two cores, where scikit-learn's float64 solver takes several. Fold assignment is seeded and the fit
starts from zero, so the same inputs and seed give the same probabilities. Identical embeddings
(copies of one image) always share a fold.

Order independence: every computation here runs on the rows sorted by content (SHA-256 of the
embedding bytes, then the label), and the results are put back in the caller's order. Fold assignment,
the floating-point summation order of the fits and the tie-breaking of neighbour searches therefore
depend on what the images are, never on file names or positions: renaming or reordering files changes
no probability.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from auditor import progress
from auditor.config import REGULARISATION_GRID, ProbabilityParams, SearchParams
from auditor.similarity import SearchLog, nearest, unit_rows
from auditor.slow_imports import scipy_optimize

__all__ = ["REGULARISATION_GRID", "ProbabilityParams"]  # re-exported: they were defined here

# Probability given to a class the fold's model never saw (a class too small to be in every fold),
# before renormalising: such a class cannot be predicted, but cleanlab needs strictly positive rows.
_UNSEEN_CLASS_PROBABILITY = 1e-6
# Below this many multiply-adds per gradient (images x dimensions x classes) a fit runs on one BLAS thread:
# threads cost more than they save on small matrices, and on a busy machine their spin-waiting made a
# 210-image fit 17x slower (49 s -> 2.8 s measured here). Large fits keep every thread.
_ONE_THREAD_BELOW = 50_000_000
# Rows per step of the k-NN vote's tally and of each classifier pass (bounds their temporaries).
_VOTE_BATCH = 65_536
_ROW_BATCH = 65_536
# The k-NN vote searches this many neighbours beyond ``knn_neighbours`` to skip an image's own copies; the
# results are n x k, so a group of thousands of identical frames must not set k (an image with more copies
# than this gets fewer votes than knn_neighbours, plus the prior).
_MAX_COPIES_SKIPPED = 50
# The regularisation is chosen, and each fold's fit started, on a seeded subsample of this many images,
# so that cost stays fixed as n grows (below it, on every image, from zero, as before).
_SUBSAMPLE = 20_000


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

    Cost grows linearly with n at a fixed number of classes: the regularisation is chosen on a subsample
    of at most ``_SUBSAMPLE`` images, each fold's fit starts from a fit on that subsample's images outside
    the fold (never from a model that saw the fold), and every fit stops after ``max_iter`` passes. The
    rows are held once, grouped by fold, so a fold's training images are two views of that one copy.
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
    # Content order, then grouped by fold (stable): one copy of the rows, each fold a contiguous block.
    by_fold = np.argsort(assignment, kind="stable")
    order, assignment = order[by_fold], assignment[by_fold]
    features = np.ascontiguousarray(np.asarray(embeddings)[order], dtype=np.float32)
    labels = np.asarray(labels)[order]
    bounds = np.searchsorted(assignment, np.arange(folds + 1))
    subsample = _subsample(n, params.seed)
    if params.regularisation_c is None:
        progress.step("classifier: choosing the regularisation")
    c_value = params.regularisation_c or _select_c(
        features[subsample], labels[subsample], assignment[subsample], params)
    for fold in range(folds):
        progress.step(f"classifier fold {fold + 1}/{folds}")
        lo, hi = int(bounds[fold]), int(bounds[fold + 1])
        if lo == hi:
            continue
        train_labels_all = np.concatenate([labels[:lo], labels[hi:]])
        present, train_labels = np.unique(train_labels_all, return_inverse=True)
        if len(present) == 0:
            # Every image in this fold (copies of one image share a fold): nothing left to learn from,
            # so the row stays uniform -- no evidence either way.
            continue
        if len(present) == 1:
            probs[lo:hi, present] = 1.0
            continue
        blocks = [features[:lo], features[hi:]]
        scaling = _Scaling.of(blocks)
        start = None
        if len(subsample) < n:
            start = _subsample_start(features[subsample], labels[subsample], assignment[subsample] != fold,
                                     present, c_value, params)
        weights, bias = _fit_softmax(blocks, train_labels, len(present), c_value, params, scaling, start)
        probs[lo:hi, present] = softmax(scaling.logits(features[lo:hi], weights, bias))
    probs = np.clip(probs, _UNSEEN_CLASS_PROBABILITY, None)
    restored = np.empty_like(probs)
    restored[order] = probs / probs.sum(axis=1, keepdims=True)
    return restored


def _subsample(n: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``_SUBSAMPLE`` rows (all of them for smaller data), seeded."""
    if n <= _SUBSAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=_SUBSAMPLE, replace=False))


def _subsample_start(
    features: np.ndarray, labels: np.ndarray, outside: np.ndarray, present: np.ndarray, c_value: float,
    params: ProbabilityParams,
) -> np.ndarray | None:
    """Starting parameters for a fold: a fit on the subsample's rows outside the fold (None when those rows
    lack a class the fold's training rows have, so the parameters would not line up)."""
    sub_present, sub_labels = np.unique(labels[outside], return_inverse=True)
    if not np.array_equal(sub_present, present):
        return None
    blocks = [features[outside]]
    weights, bias = _fit_softmax(blocks, sub_labels, len(present), c_value, params, _Scaling.of(blocks))
    return np.concatenate([weights.ravel(), bias]).astype(np.float64)


def blended_probabilities(
    embeddings: np.ndarray, labels: np.ndarray, regression: np.ndarray, params: ProbabilityParams,
    search: SearchParams | None = None, log: SearchLog | None = None,
) -> np.ndarray:
    """The regression's probabilities averaged with a leave-one-out k-NN vote (label-error evidence).

    A linear model and a local vote err differently (one sees global structure, the other local
    clusters), so their blend is better calibrated for confident learning. Ambiguity uses the
    regression alone: a local vote turns an image between two classes into a vote for one of them.
    """
    n, n_classes = regression.shape
    if params.knn_neighbours == 0 or params.knn_weight == 0 or n <= params.knn_neighbours:
        return regression
    order = content_order(np.asarray(embeddings, dtype=np.float32), labels)
    unit = unit_rows(embeddings, order)
    votes = np.empty((n, n_classes), dtype=np.float64)
    votes[order] = knn_vote_probabilities(unit, np.asarray(labels)[order], n_classes, params.knn_neighbours,
                                          identical_rows(embeddings, order), search or SearchParams(), log)
    return (1.0 - params.knn_weight) * regression + params.knn_weight * votes


def knn_vote_probabilities(
    unit: np.ndarray, labels: np.ndarray, n_classes: int, neighbours: int, groups: np.ndarray,
    search: SearchParams, log: SearchLog | None = None,
) -> np.ndarray:
    """Leave-one-out similarity-weighted k-NN class votes of unit rows: out of sample by construction.

    Copies of an image (same ``groups`` id) never vote for each other.
    """
    progress.step("k-NN vote")
    n = len(unit)
    copies = min(int(np.bincount(groups).max()) if len(groups) else 1, _MAX_COPIES_SKIPPED)
    similarity, found = nearest(unit, min(n, neighbours + copies), search, "knn_vote", log)
    votes = np.zeros((n, n_classes), dtype=np.float64)
    for start in range(0, n, _VOTE_BATCH):
        stop = min(n, start + _VOTE_BATCH)
        rows = np.arange(start, stop)
        hits, sims = found[start:stop], similarity[start:stop]
        valid = (hits >= 0) & (groups[np.maximum(hits, 0)] != groups[rows, None])
        # Keep the first ``neighbours`` valid hits of each row.
        valid &= np.cumsum(valid, axis=1) <= neighbours
        weight = np.where(valid, np.clip(sims, 0.0, None).astype(np.float64) ** 3, 0.0)
        neighbour_labels = labels[np.maximum(hits, 0)]
        for column in range(hits.shape[1]):
            np.add.at(votes, (rows, neighbour_labels[:, column]), weight[:, column])
    prior = np.bincount(labels, minlength=n_classes) / n
    # A little prior mass keeps an image with no (or weak) neighbours from a hard 0/1 vote.
    votes += 0.1 * prior
    return np.asarray(votes / votes.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class _Scaling:
    """Per-dimension standardisation of the training rows, ``x * inverse - shift``, applied inside the fit
    rather than to a standardised copy of the rows (at 1M x 512 a copy is 2 GB)."""

    inverse: np.ndarray
    shift: np.ndarray

    @classmethod
    def of(cls, blocks: list[np.ndarray]) -> _Scaling:
        """Zero mean, unit variance per dimension over the rows of ``blocks``, accumulated in float64."""
        count = sum(len(block) for block in blocks)
        total = np.zeros(blocks[0].shape[1])
        squares = np.zeros(blocks[0].shape[1])
        for block in blocks:
            for start in range(0, len(block), _ROW_BATCH):
                chunk = block[start : start + _ROW_BATCH].astype(np.float64)
                total += chunk.sum(axis=0)
                squares += np.square(chunk).sum(axis=0)
        mean = total / count
        scale = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        scale[scale < 1e-8] = 1.0
        return cls((1.0 / scale).astype(np.float32), (mean / scale).astype(np.float32))

    def raw(self, weights: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights and bias acting on unstandardised rows."""
        return weights * self.inverse[:, None], bias - self.shift @ weights

    def logits(self, rows: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        raw_weights, raw_bias = self.raw(weights, bias)
        return np.asarray(rows @ raw_weights + raw_bias)


def _select_c(features: np.ndarray, labels: np.ndarray, assignment: np.ndarray, params: ProbabilityParams) -> float:
    """The grid C with the lowest log-loss on fold 0 (images of classes absent from training ignored)."""
    test = assignment == 0
    present, train_labels = np.unique(labels[~test], return_inverse=True)
    column = {label: k for k, label in enumerate(present)}
    scored = np.array([label in column for label in labels[test]])
    if len(present) < 2 or not scored.any():
        return REGULARISATION_GRID[len(REGULARISATION_GRID) // 2]
    blocks = [features[~test]]
    scaling = _Scaling.of(blocks)
    test_x = features[test][scored]
    test_labels = np.array([column[label] for label in labels[test][scored]])
    best, best_loss, start = REGULARISATION_GRID[0], np.inf, None
    for c_value in REGULARISATION_GRID:
        weights, bias = _fit_softmax(blocks, train_labels, len(present), c_value, params, scaling, start)
        start = np.concatenate([weights.ravel(), bias]).astype(np.float64)
        probs = softmax(scaling.logits(test_x, weights, bias))
        loss = float(-np.log(np.clip(probs[np.arange(len(test_labels)), test_labels], 1e-12, None)).mean())
        if loss < best_loss:
            best, best_loss = c_value, loss
    return best


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; a ``-inf`` logit gets probability 0, and a row of only ``-inf`` becomes uniform."""
    peak = logits.max(axis=1, keepdims=True)
    exp = np.exp(logits - np.where(np.isfinite(peak), peak, 0.0))
    totals = exp.sum(axis=1, keepdims=True)
    return np.asarray(np.where(totals > 0, exp / np.where(totals > 0, totals, 1.0), 1.0 / logits.shape[1]))


def fit_temperature(scores: np.ndarray, labels: np.ndarray, bounds: tuple[float, float]) -> float:
    """The factor ``t`` for which ``softmax(t * scores)`` best explains ``labels`` (maximum likelihood).

    Temperature scaling: it makes scores on any scale (log-probabilities, cosines) as confident as they
    have earned on these labels. ``scores`` may hold ``-inf`` (a class that cannot be), never at a label.
    """

    rows = np.arange(len(labels))

    def negative_log_likelihood(temperature: float) -> float:
        scaled = scores * temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        return float(-(scaled[rows, labels] - np.log(np.exp(scaled).sum(axis=1))).mean())

    return float(scipy_optimize.minimize_scalar(negative_log_likelihood, bounds=bounds, method="bounded").x)


def _fit_softmax(
    blocks: list[np.ndarray], labels: np.ndarray, n_classes: int, c_value: float, params: ProbabilityParams,
    scaling: _Scaling, start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (d, k) and bias (k,) on standardised rows minimising mean log-loss + ||W||^2 / (2 C n), by
    L-BFGS. The training rows are ``blocks`` stacked (views, never copied); ``labels`` follow that order.
    Each pass reads the rows in batches, so temporaries stay small whatever n and k."""

    n = sum(len(block) for block in blocks)
    dim = blocks[0].shape[1]
    penalty = 1.0 / (c_value * n)
    batches = [(block[s : s + _ROW_BATCH], offset + s)
               for block, offset in zip(blocks, np.cumsum([0] + [len(b) for b in blocks[:-1]]), strict=True)
               for s in range(0, len(block), _ROW_BATCH)]

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = flat[: dim * n_classes].reshape(dim, n_classes).astype(np.float32)
        bias = flat[dim * n_classes:].astype(np.float32)
        raw_weights, raw_bias = scaling.raw(weights, bias)
        log_loss = 0.0
        raw_gradient = np.zeros((dim, n_classes), dtype=np.float64)
        residual_total = np.zeros(n_classes, dtype=np.float64)
        for rows, first in batches:
            truth = labels[first : first + len(rows)]
            picked = np.arange(len(rows))
            logits = rows @ raw_weights + raw_bias
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            totals = exp.sum(axis=1, keepdims=True)
            log_loss += np.log(totals[:, 0], dtype=np.float64).sum() - logits[picked, truth].astype(np.float64).sum()
            residual = exp / totals
            residual[picked, truth] -= 1.0
            residual /= n
            raw_gradient += rows.T @ residual
            residual_total += residual.sum(axis=0, dtype=np.float64)
        # The gradient for standardised rows x * inverse - shift, from the one for raw rows.
        grad_weights = (raw_gradient * scaling.inverse[:, None] - np.outer(scaling.shift, residual_total)
                        + penalty * weights)
        value = log_loss / n + 0.5 * penalty * float(np.square(weights, dtype=np.float64).sum())
        return value, np.concatenate([grad_weights.ravel(), residual_total])

    if start is None:
        start = np.zeros(dim * n_classes + n_classes, dtype=np.float64)
    threads = 1 if n * dim * n_classes < _ONE_THREAD_BELOW else None
    with threadpool_limits(limits=threads, user_api="blas"):
        result = scipy_optimize.minimize(
            loss_and_gradient, start, jac=True, method="L-BFGS-B",
            options={"maxiter": params.max_iter, "gtol": params.tolerance, "ftol": 1e-10},
        )
    flat = result.x
    return (flat[: dim * n_classes].reshape(dim, n_classes).astype(np.float32),
            flat[dim * n_classes:].astype(np.float32))
