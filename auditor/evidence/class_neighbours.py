"""How close each image comes to each class: mean cosine similarity to the class's nearest members.

Two checks read this. An image that shows two classes sits near the members of both, where a
classifier trained on the labels may still commit to one (``ambiguous`` pools the two views). An
image that belongs to no class is far from the nearest members of *every* class (``outliers``);
asking per class, rather than for the nearest images overall, means a few junk images filed under
different classes cannot shelter each other, as they would in a global neighbour search.

Vectors are distinct contents: an image never counts as its own neighbour, and the caller folds
identical embeddings (copies) into one vector so a copied blank frame cannot vouch for itself.
Up to ``[search] exact_max_vectors`` vectors, every vector is searched against every class, exactly
(O(n^2 d) in all). Beyond, a vector's closeness is computed only to the classes within its reach (its
nearest few dozen vectors, one global search) and estimated for the classes beyond it, which are farther
than every class within: the closest class (outliers) is always computed, and the softmax over classes
(ambiguous) keeps the far classes' share. How close the result comes to exact closeness to every class is
measured on a sample and recorded in run.json (``_restricted``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.core import progress
from auditor.core.config import SearchParams
from auditor.core.slow_imports import faiss
from auditor.evidence.probabilities import by_rows, fit_temperature, softmax
from auditor.evidence.similarity import SearchLog, content_sample, nearest, unit_rows

# Queries per faiss search call, to bound the memory of the result arrays.
_QUERY_BATCH = 16_384
# Above the exact size, each image's reach: its this-many-times-k nearest other vectors (one global search).
_REACH_PER_NEIGHBOUR = 4
# Similarities computed two ways (a per-class search vs exact) agree to about this.
_TOLERANCE = 1e-5
# A class's own line from landmark cosine to closeness needs this many sampled pairs beyond reach (else pooled).
_MIN_CALIBRATION = 20
# Landmarks per class for the estimate beyond reach (spherical k-means centres of the class's members: a class
# is several modes, and its nearest members lie in the mode nearest the image), trained on this many members
# each, in this many k-means iterations.
_LANDMARKS = 32
_TRAIN_PER_LANDMARK = 20
_KMEANS_ITERATIONS = 10
# Vectors per step of the estimate (their cosines to every landmark: 2,048 x 100 classes x 32 = 26 MB).
_LANDMARK_BATCH = 2048


@dataclass(frozen=True)
class ClassNeighbourhoods:
    # (n_vectors, n_classes) float32: mean cosine similarity to the ``k`` nearest other members of each
    # class (fewer when the class is smaller); NaN when the class has no member besides the vector itself.
    # Above ``[search] exact_max_vectors``, a class beyond the vector's reach holds an estimate below every
    # class within it (``_restricted``); the closest class is always computed.
    similarity: np.ndarray
    # (n_vectors,) index of the most similar other vector in any class, -1 when there is none.
    nearest: np.ndarray


def class_neighbourhoods(
    vectors: np.ndarray, members: list[np.ndarray], k: int, search: SearchParams | None = None,
    log: SearchLog | None = None, rows: np.ndarray | None = None,
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
) -> ClassNeighbourhoods:
    """``members[c]`` holds the indices of the vectors that belong to class ``c`` (a vector may be in several);
    with ``rows``, the vectors are ``vectors[rows]`` (picked without a second copy). ``neighbours``: (values,
    indices) of each vector's nearest vectors, itself included, nearest first (-1: none found), from a search
    the caller ran anyway (the k-NN vote's); above the exact size they are the reach, else it is searched here.

    Up to ``[search] exact_max_vectors`` vectors (or with one class), every vector is searched against every
    class. Beyond, only the classes within each vector's reach are (``_restricted``): one search of every
    class is n x N in all however the classes are cut, and at 1M x 100 classes it did not finish in 20 CPU-minutes.
    """
    settings = search or SearchParams()
    unit = unit_rows(vectors, rows)
    member_ids = [np.asarray(ids, dtype=np.int64) for ids in members]
    records = SearchLog()
    restricted = len(unit) > settings.exact_max_vectors and len(member_ids) >= 2
    if not restricted:
        result = _every_class(unit, member_ids, k, settings, records)
        neighbourhoods = ClassNeighbourhoods(result.similarity, result.nearest)
    else:
        neighbourhoods = _restricted(unit, member_ids, k, settings, records, neighbours)
    if log is not None:
        log.records.extend(_summarised(records.records, restricted))
    return neighbourhoods


@dataclass(frozen=True)
class _EveryClass:
    similarity: np.ndarray
    nearest: np.ndarray
    # (queries, classes) the similarity of the k-th (last counted) nearest other member; NaN: none.
    last: np.ndarray


def _every_class(
    unit: np.ndarray, members: list[np.ndarray], k: int, settings: SearchParams, records: SearchLog,
    query_rows: np.ndarray | None = None, exact: bool = False,
) -> _EveryClass:
    """Every query (``unit[query_rows]``, default every row) against every class; ``exact`` forces brute force
    (the sampled reference of the restricted search)."""
    queries = unit if query_rows is None else unit[query_rows]
    own = np.arange(len(unit)) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    n = len(queries)
    similarity = np.full((n, len(members)), np.nan, dtype=np.float32)
    last = np.full((n, len(members)), np.nan, dtype=np.float32)
    best = np.full(n, -np.inf, dtype=np.float32)
    nearest_other = np.full(n, -1, dtype=np.int64)
    for column, member_ids in enumerate(members):
        if query_rows is None:
            progress.step(f"class closeness {column + 1}/{len(members)}")
        if len(member_ids) == 0:
            continue
        # One class's index at a time: the per-class copies together hold the vectors once.
        sims, found = nearest(unit_rows(unit, member_ids), k + 1, settings, f"class_closeness[{column}]", records,
                              queries=queries, seed=column, exact_max=len(unit) if exact else None)
        _fold(similarity[:, column], last[:, column], best, nearest_other, sims, found, member_ids, own, k)
    return _EveryClass(similarity, nearest_other, last)


def _fold(
    similarity: np.ndarray, last: np.ndarray, best: np.ndarray, nearest_other: np.ndarray, sims: np.ndarray,
    found: np.ndarray, member_ids: np.ndarray, own: np.ndarray, k: int, values: np.ndarray | None = None,
) -> None:
    """One class's search results (rows aligned with ``own``, each query's own vector id) folded in place:
    the mean of the first ``k`` hits other than the query itself, the last of them, and the nearest other
    vector so far. ``values``: (queries, k) receives the counted hits' similarities (NaN beyond them)."""
    for start in range(0, len(found), _QUERY_BATCH):
        stop = min(len(found), start + _QUERY_BATCH)
        hits, sims_batch = found[start:stop], sims[start:stop]
        ids = member_ids[np.maximum(hits, 0)]
        valid = (hits >= 0) & (ids != own[start:stop, None])
        valid &= np.cumsum(valid, axis=1) <= k
        counts = valid.sum(axis=1)
        totals = np.where(valid, sims_batch, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            similarity[start:stop] = np.where(counts > 0, totals / counts, np.nan)
        last[start:stop] = np.where(counts > 0, np.where(valid, sims_batch, np.inf).min(axis=1), np.nan)
        if values is not None:
            ranks = np.cumsum(valid, axis=1) - 1
            rows, cols = np.nonzero(valid)
            values[start + rows, ranks[rows, cols]] = sims_batch[rows, cols]
        # The first valid hit is the class's nearest other member.
        first = np.argmax(valid, axis=1)
        rows_all = np.arange(stop - start)
        top = np.where(counts > 0, sims_batch[rows_all, first], -np.inf)
        closer = top > best[start:stop]
        best[start:stop][closer] = top[closer]
        nearest_other[start:stop][closer] = ids[rows_all, first][closer]


@dataclass(frozen=True)
class _Membership:
    """The classes of each vector as compressed rows: ``classes[offsets[v]:offsets[v + 1]]``."""

    offsets: np.ndarray
    classes: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, members: list[np.ndarray], count: int) -> _Membership:
        sizes = np.array([len(ids) for ids in members], dtype=np.int64)
        vectors = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
        order = np.argsort(vectors, kind="stable")
        offsets = np.zeros(count + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(vectors, minlength=count))
        return cls(offsets, np.repeat(np.arange(len(members)), sizes)[order], sizes)

    def expand(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``vectors``, class) for each membership of each vector (-1: no vector, no class)."""
        ids = np.maximum(vectors, 0)
        counts = np.where(vectors >= 0, self.offsets[ids + 1] - self.offsets[ids], 0)
        position = np.repeat(np.arange(len(vectors)), counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return position, self.classes[self.offsets[ids[position]] + within]


@dataclass(frozen=True)
class _Reach:
    """Closeness within each vector's reach, and what the sampled check and run.json read."""

    similarity: np.ndarray
    nearest: np.ndarray
    # (sampled, classes, k) the similarities each sampled vector's closeness averaged (NaN beyond them).
    sample_values: np.ndarray
    # (n,) similarity of the farthest of each vector's reach (NaN: none found): no class beyond is closer.
    edge: np.ndarray
    reach: int
    listed_pairs: int
    searched_pairs: int
    # Vectors compared with every class (their closest class within reach was not surely the closest).
    completed: int


def _restricted(
    unit: np.ndarray, members: list[np.ndarray], k: int, settings: SearchParams, records: SearchLog,
    neighbours: tuple[np.ndarray, np.ndarray] | None,
) -> ClassNeighbourhoods:
    """Closeness to the classes within each vector's reach, computed; to the rest, estimated.

    A vector's reach is its ``_REACH_PER_NEIGHBOUR`` x k nearest other vectors (one global search). A class
    with no member among them has every member below the farthest of them (the reach's edge), so its
    closeness, a mean of member similarities, is below the edge too. Where a class fills k places of the
    reach, its closeness is read off the reach list itself; the remaining (vector, class) pairs -- the
    vector's own classes and the classes with fewer than k members in reach -- are grouped by class, and
    each class is searched by the vectors that need it only. A vector whose closest class so found is no
    nearer than its edge (an outlier among scattered classes, or a reach with no class member) is then
    compared with every class: so the closest class, which ``outliers`` reads, is always among those
    computed (given the searches' measured recall). A class beyond the reach gets an estimate, capped at the
    edge (``_estimate_beyond_reach``). Cost: one global search plus the pairs actually searched, not n
    searches of every class.

    How often the restriction could be wrong is measured, not assumed: for a content-chosen sample of
    ``[search] recall_queries`` vectors, closeness to every class is computed exactly, and run.json records
    how often the exact closest class and the exact top two were computed, the median share of the sampled
    images' closeness-probability mass on the classes computed, recall@k of the closeness computed, and the
    estimate's error. Should the closest class be computed for fewer than ``min_recall`` of the sample (the
    searches missed), every class is searched. Memory: the (n, classes)
    float32 result (1M x 100 classes: 400 MB) and the reach list (1M x 28 neighbours: 340 MB); nothing n x n.
    """
    membership = _Membership.of(members, len(unit))
    sample = content_sample(unit, settings.recall_queries, len(members))
    started = time.perf_counter()
    if neighbours is None:
        progress.step("class closeness: each image's reach")
        reach = min(_REACH_PER_NEIGHBOUR * k, len(unit) - 1)
        neighbours = nearest(unit, reach + 1, settings, "class_closeness_reach", records, seed=len(members))
    found = _within_reach(unit, membership, members, k, neighbours, settings, records, sample)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    reference = _every_class(unit, members, k, settings, SearchLog(), query_rows=sample, exact=True)
    check = _sampled_check(found, reference, membership, sample, k, settings)
    record: dict[str, Any] = {
        "search": "class_closeness", "method": "within_reach", "vectors": len(unit), "classes": len(members),
        "k": k, "reach": found.reach, "pairs_read_off_reach": found.listed_pairs,
        "pairs_searched": found.searched_pairs, "completed_against_every_class": found.completed,
        "seconds": round(seconds, 3), "min_recall": settings.min_recall, "sample": len(sample),
        "sample_seconds": round(time.perf_counter() - started, 3), **check,
    }
    if check["closest_within_reach"] < settings.min_recall:
        record["method"] = "every_class"
        record["fallback"] = (f"the closest class was computed for {check['closest_within_reach']:.3f} of sampled "
                              f"images (< {settings.min_recall}): every class searched")
        every = _every_class(unit, members, k, settings, records)
        records.records.append(record)
        return ClassNeighbourhoods(every.similarity, every.nearest)
    record.update(_estimate_beyond_reach(unit, members, membership, found, reference, sample))
    records.records.append(record)
    return ClassNeighbourhoods(found.similarity, found.nearest)


def _within_reach(
    unit: np.ndarray, membership: _Membership, members: list[np.ndarray], k: int,
    neighbours: tuple[np.ndarray, np.ndarray], settings: SearchParams, records: SearchLog, sample: np.ndarray,
) -> _Reach:
    count, classes = len(unit), len(members)
    sims, found = neighbours
    reach = found.shape[1] - 1
    keep = (found >= 0) & (found != np.arange(count)[:, None])
    keep &= np.cumsum(keep, axis=1) <= reach
    similarity = np.full((count, classes), np.nan, dtype=np.float32)
    best = np.full(count, -np.inf, dtype=np.float32)
    nearest_other = np.full(count, -1, dtype=np.int64)
    edge = np.where(keep, sims, np.inf).min(axis=1)
    edge[~np.isfinite(edge)] = np.nan
    sample_of = np.full(count, -1, dtype=np.int64)
    sample_of[sample] = np.arange(len(sample))
    sample_values = np.full((len(sample), classes, k), np.nan, dtype=np.float32)
    pending_rows: list[np.ndarray] = []
    pending_classes: list[np.ndarray] = []
    listed = 0
    for start in range(0, count, _QUERY_BATCH):
        stop = min(count, start + _QUERY_BATCH)
        rows, ranks = np.nonzero(keep[start:stop])  # row-major: each row's neighbours nearest first
        neighbour, value = found[start:stop][rows, ranks], sims[start:stop][rows, ranks]
        position, member_of = membership.expand(neighbour)
        # The nearest neighbour that belongs to a class: the nearest other vector in any class.
        if len(position):
            first_rows, first = np.unique(rows[position], return_index=True)
            best[start + first_rows] = value[position[first]]
            nearest_other[start + first_rows] = neighbour[position[first]]
        own_position, own_class = membership.expand(np.arange(start, stop))
        # (row, class) entries: reach members nearest first, then the vector's own classes (no value).
        pair = np.concatenate([rows[position] * classes + member_of, own_position * classes + own_class])
        is_own = np.r_[np.zeros(len(position), dtype=bool), np.ones(len(own_position), dtype=bool)]
        values = np.r_[value[position], np.full(len(own_position), np.nan, dtype=np.float32)]
        order = np.argsort(pair, kind="stable")
        pair, is_own, values = pair[order], is_own[order], values[order]
        new = np.r_[True, pair[1:] != pair[:-1]]
        group = np.cumsum(new) - 1
        rank = np.arange(len(pair)) - np.flatnonzero(new)[group]
        counted = ~is_own & (rank < k)
        in_reach = np.bincount(group, weights=~is_own)
        member = np.bincount(group, weights=is_own) > 0
        used = np.bincount(group, weights=counted)
        total = np.bincount(group, weights=np.where(counted, values, 0.0))
        pair_row, pair_class = np.divmod(pair[new], classes)
        # Read off the reach when it holds the class's k nearest other members (or all of them).
        resolved = in_reach >= np.minimum(k, membership.sizes[pair_class] - member)
        with np.errstate(invalid="ignore", divide="ignore"):
            similarity[start + pair_row[resolved], pair_class[resolved]] = (total / used)[resolved]
        listed += int(resolved.sum())
        pending_rows.append(start + pair_row[~resolved])
        pending_classes.append(pair_class[~resolved])
        sampled = counted & resolved[group] & (sample_of[start + pair_row[group]] >= 0)
        sample_values[sample_of[start + pair_row[group[sampled]]], pair_class[group[sampled]], rank[sampled]] = \
            values[sampled]
    del sims, found, keep
    rows_needed, classes_needed = np.concatenate(pending_rows), np.concatenate(pending_classes)
    state = (similarity, best, nearest_other, sample_of, sample_values)
    _search_pairs(unit, members, k, settings, records, rows_needed, classes_needed, state)
    # A vector whose closest class within reach is no nearer than the reach's edge (an outlier among
    # scattered classes, or one whose reach holds no class member) could be nearer a class beyond it: it is
    # compared with every class, so that "not near" always means nearer classes were seen.
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isnan(similarity), -np.inf, similarity), axis=1)
        uncertain = np.flatnonzero(~(top >= edge - _TOLERANCE))
    completed_rows, completed_classes = [], []
    for start in range(0, len(uncertain), _QUERY_BATCH):
        rows = uncertain[start:start + _QUERY_BATCH]
        others = np.broadcast_to(membership.sizes, (len(rows), classes)).copy()
        position, own_class = membership.expand(rows)
        np.subtract.at(others, (position, own_class), 1)
        pair_row, pair_class = np.nonzero((others > 0) & np.isnan(similarity[rows]))
        completed_rows.append(rows[pair_row])
        completed_classes.append(pair_class)
    if completed_rows:
        _search_pairs(unit, members, k, settings, records, np.concatenate(completed_rows),
                      np.concatenate(completed_classes), state)
    searched = len(rows_needed) + sum(len(rows) for rows in completed_rows)
    return _Reach(similarity, nearest_other, sample_values, edge, reach, listed, searched, len(uncertain))


def _search_pairs(
    unit: np.ndarray, members: list[np.ndarray], k: int, settings: SearchParams, records: SearchLog,
    rows: np.ndarray, classes: np.ndarray,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Closeness of the (vector ``rows[i]``, class ``classes[i]``) pairs, written into ``state``: each class
    searched once, by the vectors that need it."""
    similarity, best, nearest_other, sample_of, sample_values = state
    order = np.argsort(classes, kind="stable")
    rows, classes = rows[order], classes[order]
    bounds = np.searchsorted(classes, np.arange(len(members) + 1))
    for column, member_ids in enumerate(members):
        queries = rows[bounds[column]:bounds[column + 1]]
        if len(queries) == 0:
            continue
        progress.step(f"class closeness {column + 1}/{len(members)}: {len(queries):,} images within reach")
        sims, found = nearest(unit_rows(unit, member_ids), k + 1, settings, f"class_closeness[{column}]", records,
                              queries=unit[queries], seed=column)
        column_similarity = np.full(len(queries), np.nan, dtype=np.float32)
        last = np.full(len(queries), np.nan, dtype=np.float32)
        best_here, nearest_here = best[queries], nearest_other[queries]
        values = np.full((len(queries), k), np.nan, dtype=np.float32)
        _fold(column_similarity, last, best_here, nearest_here, sims, found, member_ids, queries, k, values)
        similarity[queries, column] = column_similarity
        best[queries], nearest_other[queries] = best_here, nearest_here
        sampled = sample_of[queries] >= 0
        sample_values[sample_of[queries[sampled]], column] = values[sampled]


def _sampled_check(
    found: _Reach, reference: _EveryClass, membership: _Membership, sample: np.ndarray, k: int,
    settings: SearchParams,
) -> dict[str, Any]:
    """How the restricted closeness of the sampled vectors compares with their exact closeness to every class."""
    exact, restricted = reference.similarity, found.similarity[sample]
    known = ~np.isnan(exact)
    judged = known.sum(axis=1) >= 1
    # Tie-aware: the closest (and second) class counts as computed when a computed class is as close, exactly.
    everywhere = -np.sort(-np.where(known, exact, -np.inf), axis=1)
    computed_only = -np.sort(-np.where(known & ~np.isnan(restricted), exact, -np.inf), axis=1)
    closest_in = computed_only[:, 0] >= everywhere[:, 0] - _TOLERANCE
    two = known.sum(axis=1) >= 2
    second_in = closest_in.copy()
    if exact.shape[1] > 1:
        second_in &= computed_only[:, 1] >= everywhere[:, 1] - _TOLERANCE
    # Closeness-probability mass (median over the sample) on the classes computed, temperature fitted to the
    # sample's exact closeness and each vector's first class.
    position, member_class = membership.expand(sample)
    labels = np.full(len(sample), -1, dtype=np.int64)
    labels[position[::-1]] = member_class[::-1]
    labelled = (labels >= 0) & judged
    mass = 1.0
    if labelled.any():
        probs = similarity_probabilities(exact[labelled], labels[labelled])
        kept = ~np.isnan(restricted[labelled]) | ~known[labelled]
        mass = float(np.median(np.where(kept, probs, 0.0).sum(axis=1)))
    # Recall@k of the closeness computed: counted similarities at least the exact k-th (ties count).
    member = np.zeros(exact.shape, dtype=bool)
    member[position, member_class] = True
    needed = np.minimum(k, membership.sizes[None, :] - member)
    computed = ~np.isnan(restricted) & known
    hits = (found.sample_values >= reference.last[:, :, None] - _TOLERANCE).sum(axis=2)
    hit_total = np.minimum(hits, needed)[computed].sum()
    recall = float(hit_total / max(int(needed[computed].sum()), 1))
    return {
        "closest_within_reach": round(float(closest_in[judged].mean()) if judged.any() else 1.0, 4),
        "top2_within_reach": round(float(second_in[two].mean()) if two.any() else 1.0, 4),
        "probability_mass_within_reach": round(mass, 4),
        "recall": round(recall, 4),
    }


def _estimate_beyond_reach(
    unit: np.ndarray, members: list[np.ndarray], membership: _Membership, found: _Reach, reference: _EveryClass,
    sample: np.ndarray,
) -> dict[str, Any]:
    """Fill in, in place, the closeness of each vector to the classes beyond its reach with an estimate, and
    measure it on the sample.

    Leaving them out would not do: with many classes, a softmax fitted to the labels is flat enough that the
    classes beyond an image's reach together hold most of its closeness probability (88% median at 100k
    vectors in 100 classes, ``benchmarks/checks_at_scale.py``), so the probabilities ``ambiguous`` pools
    would change wholesale. The estimate: the vector's cosine to the class's mean direction, mapped to
    closeness by a line fitted per class on the sample's exact closeness to the classes beyond its reach
    (pooled over classes where a class has too few such pairs), and capped at the reach's edge, which bounds
    the true value: so an estimate never exceeds a class within reach, and the closest class, which
    ``outliers`` reads, is never an estimate. run.json records the estimate's mean absolute error and how far
    the closeness probabilities of the sample move from the exact ones (total variation, median and 99th
    percentile).
    """
    classes = len(members)
    width = _LANDMARKS
    landmarks = np.zeros((classes * width, unit.shape[1]), dtype=np.float32)
    for column, member_ids in enumerate(members):
        if len(member_ids) == 0:
            continue
        rows = unit_rows(unit, member_ids[content_sample(unit[member_ids], width * _TRAIN_PER_LANDMARK, column)])
        if len(rows) <= width:
            centres = rows
        else:
            kmeans = faiss.Kmeans(unit.shape[1], width, niter=_KMEANS_ITERATIONS, seed=column, spherical=True,
                                  min_points_per_centroid=1)
            kmeans.train(rows)
            centres = np.asarray(kmeans.centroids)
        # A class with fewer members than landmarks repeats its last ones (the maximum is unchanged).
        landmarks[column * width:(column + 1) * width] = centres[np.minimum(np.arange(width), len(centres) - 1)]

    def nearest_landmark(rows: np.ndarray) -> np.ndarray:
        return np.asarray((rows @ landmarks.T).reshape(len(rows), classes, width).max(axis=2))

    exact = reference.similarity
    before = found.similarity[sample].copy()
    beyond = np.isnan(before) & ~np.isnan(exact)
    cosines = nearest_landmark(unit[sample])
    slope, intercept = np.zeros(classes), np.zeros(classes)
    if beyond.any():
        slope[:], intercept[:] = np.polyfit(cosines[beyond], exact[beyond], 1)
    for column in range(classes):
        rows = beyond[:, column]
        if rows.sum() >= _MIN_CALIBRATION and np.ptp(cosines[rows, column]) > 0:
            slope[column], intercept[column] = np.polyfit(cosines[rows, column], exact[rows, column], 1)
    estimated = 0
    for start in range(0, len(unit), _LANDMARK_BATCH):
        stop = min(len(unit), start + _LANDMARK_BATCH)
        block = found.similarity[start:stop]
        others = np.broadcast_to(membership.sizes, block.shape).copy()
        position, own_class = membership.expand(np.arange(start, stop))
        np.subtract.at(others, (position, own_class), 1)
        fill = np.isnan(block) & (others > 0) & ~np.isnan(found.edge[start:stop, None])
        if fill.any():
            guess = np.minimum(nearest_landmark(unit[start:stop]) * slope + intercept, found.edge[start:stop, None])
            block[fill] = guess[fill]
            estimated += int(fill.sum())
    after = found.similarity[sample]
    error = np.abs(after - exact)[beyond]
    position, member_class = membership.expand(sample)
    labels = np.full(len(sample), -1, dtype=np.int64)
    labels[position[::-1]] = member_class[::-1]
    labelled = (labels >= 0) & (~np.isnan(exact)).any(axis=1)
    distance = np.zeros(0)
    if labelled.any():
        distance = 0.5 * np.abs(similarity_probabilities(after[labelled], labels[labelled])
                                - similarity_probabilities(exact[labelled], labels[labelled])).sum(axis=1)
    return {
        "pairs_estimated": estimated,
        "estimate_mean_abs_error": round(float(error.mean()), 4) if len(error) else 0.0,
        "probability_distance_median": round(float(np.median(distance)), 4) if len(distance) else 0.0,
        "probability_distance_p99": round(float(np.percentile(distance, 99)), 4) if len(distance) else 0.0,
    }


def _summarised(records: list[dict[str, Any]], restricted: bool = False) -> list[dict[str, Any]]:
    """Approximate per-class searches as they are; the exact ones (every class, on small data) as one record."""
    exact = [r for r in records if r["method"] == "exact" and "fallback" not in r]
    merged = [r for r in records if r not in exact]
    if exact:
        # Above the exact size the searches cover only the pairs within reach ("class_closeness[*]"), and
        # "class_closeness" is the record of the whole (method "within_reach").
        merged.insert(0, {"search": "class_closeness[*]" if restricted else "class_closeness", "method": "exact",
                          "classes": len(exact),
                          "vectors": sum(r["vectors"] for r in exact),
                          "queries": sum(r["queries"] for r in exact) if restricted else exact[0]["queries"],
                          "k": max(r["k"] for r in exact), "seconds": round(sum(r["seconds"] for r in exact), 3)})
    return merged




def similarity_probabilities(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class probabilities from class similarities: a softmax whose temperature best explains the labels.

    Similarities are cosines on an encoder-specific scale; one temperature fitted by maximum likelihood
    against the given labels turns them into probabilities as confident as they have earned on this
    dataset. A class with no other member (NaN) gets only the probability floor; images whose own class
    has no other member say nothing about the temperature and are left out of the fit.
    """

    scores = similarity.astype(np.float64)
    scores[np.isnan(scores)] = -np.inf
    informative = np.isfinite(scores[np.arange(len(labels)), labels])
    temperature = 1.0
    if informative.all():  # the usual case: no copy of the scores
        temperature = fit_temperature(scores, labels, (0.1, 1000.0))
    elif informative.any():
        temperature = fit_temperature(scores[informative], labels[informative], (0.1, 1000.0))
    # A vector with no known class at all (nothing to compare with) gets a flat row.
    def floored(rows: slice) -> np.ndarray:
        probs = np.clip(softmax(scores[rows] * temperature), 1e-6, None)
        return np.asarray(probs / probs.sum(axis=1, keepdims=True))

    return by_rows(scores.shape, floored)
