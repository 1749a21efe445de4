"""Neighbour search, and the data's own yardstick for "closer than anything unrelated".

Every check that asks who an image's nearest neighbours are (the k-NN vote, class closeness, duplicates)
searches through ``nearest``. Up to a configured size (``[search] exact_max_vectors``) the search is
exact: brute force, O(N^2 d) in all -- about 27 s for 100k 512-d vectors on two cores, 45 min for 1M.
Beyond it, embeddings are searched by a cell join (k-means cells, each cell's queries against the members
of the cells nearest it, by matrix products) and hashes by a faiss inverted-file index; either measures
its own recall against brute force on a sample of queries (cost: sample x N x d), searching more cells
until the recall reaches the configured target, or searching exactly when it cannot; run.json
``searches`` records what each search did. Nothing here holds an N x N matrix: queries run in batches.

Duplicate detection then judges each close pair against this dataset, not against a fixed number
(see ``NeighbourNull``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from auditor.core import progress
from auditor.core.config import SearchParams
from auditor.core.slow_imports import faiss
from auditor.evidence.robust import median_spread

# Queries per faiss search call, to bound the memory of the result arrays.
_QUERY_BATCH = 65_536
# A cell join searches at most this many queries against this many gathered candidate rows at once (one
# matrix product: 2,048 x 8,192 float32 similarities, 64 MB, and 16 MB of gathered 512-d rows per thread).
_JOIN_QUERIES = 2048
_JOIN_BLOCK = 8192
# Cells whose centroid similarities to every other cell are sorted at once (bounds that temporary).
_ORDER_BATCH = 1024
# faiss wants about this many training points per inverted-file cell.
_TRAIN_PER_CELL = 40
# k-means iterations training the cells (faiss's default 25 costs 2.5x as much for little better cells).
_KMEANS_ITERATIONS = 10
# An inverted-file search probing more than 1/this of the cells saves too little over brute force.
_FALLBACK_SHARE = 2
# Inner products of float32 unit vectors computed two ways (index vs brute force) agree to about this.
_RECALL_TOLERANCE = 1e-5
# Smallest spread a robust scale may have, in log-distance units (5%): when every image's nearest
# neighbour is equally far (a colour ramp, flat frames), nothing is "improbably close" by a hair.
_MIN_LOG_SCALE = 0.05
# Distances are floored here before taking logs (pixel-different images can embed identically).
_MIN_DISTANCE = 1e-4


@dataclass(frozen=True)
class Neighbours:
    """Each item's ``k`` nearest other items, nearest first: ``index`` (-1: none found) and ``value``
    (cosine for embeddings, Hamming bits for hashes), and the search used ("exact" or "ivf")."""

    index: np.ndarray
    value: np.ndarray
    search: str


@dataclass
class SearchLog:
    """What each neighbour search did, in order, for run.json ``searches``: method, size, parameters and,
    for approximate searches, the recall measured against exact search."""

    records: list[dict[str, Any]] = field(default_factory=list)


def unit_rows(vectors: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """A new contiguous float32 array of the rows (``rows``: these, in this order) scaled to length 1, so
    inner products are cosines. One copy of the picked rows is all it allocates (1M x 512: 2 GB)."""
    unit = np.ascontiguousarray(vectors if rows is None else vectors[rows], dtype=np.float32)
    if np.shares_memory(unit, vectors):
        unit = unit.copy()
    norms = np.sqrt(np.einsum("ij,ij->i", unit, unit))
    unit /= np.maximum(norms, 1e-12)[:, None]
    return unit


def _inverted_file_cells(count: int) -> int:
    """About 4 sqrt(N) cells, but never more than the training set can support."""
    return max(1, min(int(4 * np.sqrt(count)), count // _TRAIN_PER_CELL))


def _join_cells(count: int) -> int:
    """About sqrt(N) cells of about sqrt(N) vectors each, but never more than the training set can support.

    Coarse cells: a join's cost is the share of the base each query searches, and at the same share coarse
    cells found as many neighbours as cells 2x or 4x finer (measured here, 200,000 clustered and 100,000
    isotropic 512-d vectors), while k-means and assigning every vector to a cell cost in proportion to the
    cells (at 1M, estimated from their multiply-adds at the ~70 GFLOP per CPU-second measured here: 4 sqrt(N)
    cells about 90 + 60 CPU-s, sqrt(N) 6 + 15), and large blocks keep the matrix products efficient."""
    return max(1, min(int(np.sqrt(count)), count // _TRAIN_PER_CELL))


def content_sample(data: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` row positions chosen, and ordered, by the rows' contents alone: evenly spaced along one seeded
    random direction. Renaming or reordering files must change no finding, and both the index's k-means
    (its training rows and their order) and the recall sample decide results above the exact-search size;
    a sample by position would follow the file order."""
    direction = np.random.default_rng(seed).standard_normal(size=data.shape[1], dtype=np.float32)
    order = np.argsort(data @ direction, kind="stable")  # uint8 codes are promoted to float32 here
    return order[np.linspace(0, len(data) - 1, num=min(size, len(data))).round().astype(np.int64)]


def _training_sample(data: np.ndarray, cells: int, seed: int) -> np.ndarray:
    sample: np.ndarray = data[content_sample(data, cells * _TRAIN_PER_CELL, seed)]
    return sample


def _exact(base: np.ndarray, queries: np.ndarray, k: int, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """Brute force, in query batches; the base is read in place (no index copy of it)."""
    values = np.empty((len(queries), k), dtype=np.int32 if binary else np.float32)
    found = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), _QUERY_BATCH):
        batch = slice(start, start + _QUERY_BATCH)
        if binary:
            # knn_hamming: ~60x faster than IndexBinaryFlat.search for k ~ 20 (measured, 5,000 x 128 bits).
            values[batch], found[batch] = faiss.knn_hamming(queries[batch], base, k)
        else:
            values[batch], found[batch] = faiss.knn(queries[batch], base, k, metric=faiss.METRIC_INNER_PRODUCT)
    return values, found


def _batched(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A binary index's search of every query, in batches written into preallocated results."""
    values = np.empty((len(queries), k), dtype=np.int32)
    found = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), _QUERY_BATCH):
        batch = slice(start, start + _QUERY_BATCH)
        values[batch], found[batch] = index.search(queries[batch], k)
    return values, found


def _recall(values: np.ndarray, found: np.ndarray, truth: np.ndarray, rows: np.ndarray | None, binary: bool) -> float:
    """Recall@k with ties counted: a hit is any result at least as near as the exact k-th neighbour (copies
    and equal Hamming distances tie, so which of them a search returns says nothing about its quality).
    With ``rows`` (a self-search) each query's own row is left out of the count."""
    if binary:
        hits = (found >= 0) & (values <= truth[:, -1:])
    else:
        hits = (found >= 0) & (values >= truth[:, -1:] - _RECALL_TOLERANCE)
    k = values.shape[1]
    if rows is None:
        return float(np.minimum(hits.sum(axis=1), k).mean() / k)
    if k < 2:
        return 1.0
    own = (hits & (found == rows[:, None])).any(axis=1)
    return float(np.minimum(hits.sum(axis=1) - own, k - 1).mean() / (k - 1))


def _cells(base: np.ndarray, cells: int, seed: int) -> np.ndarray:
    """Unit centroids of ``cells`` spherical k-means cells, trained on a content-keyed sample of ``base``."""
    kmeans = faiss.Kmeans(base.shape[1], cells, niter=_KMEANS_ITERATIONS, seed=seed, spherical=True)
    kmeans.train(np.ascontiguousarray(_training_sample(base, cells, seed), dtype=np.float32))
    return np.asarray(kmeans.centroids, dtype=np.float32)


def _assigned(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The cell of each row: its most similar centroid, in query batches."""
    cell = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), _QUERY_BATCH):
        batch = slice(start, start + _QUERY_BATCH)
        cell[batch] = faiss.knn(rows[batch], centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)[1][:, 0]
    return cell


def _cell_order(centroids: np.ndarray, width: int) -> np.ndarray:
    """(cells, ``width``): for each cell, the cells whose centroids are most similar to its own, itself first
    (stable order, so the recall measured and the join agree on which cells a query cell searches)."""
    order = np.empty((len(centroids), width), dtype=np.int64)
    for start in range(0, len(centroids), _ORDER_BATCH):
        stop = min(len(centroids), start + _ORDER_BATCH)
        similarity = centroids[start:stop] @ centroids.T
        similarity[np.arange(stop - start), np.arange(start, stop)] = np.inf
        order[start:stop] = np.argsort(-similarity, axis=1, kind="stable")[:, :width]
    return order


def _top(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values and their columns, largest first (equal values: the earlier column first)."""
    if similarity.shape[1] > k:
        columns = np.argpartition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
        columns.sort(axis=1)
    else:
        columns = np.broadcast_to(np.arange(similarity.shape[1]), similarity.shape)
    values = np.take_along_axis(similarity, columns, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(columns, order, axis=1)


def _join_cell(
    base: np.ndarray, queries: np.ndarray, rows: np.ndarray, candidates: np.ndarray, k: int,
    values: np.ndarray, found: np.ndarray,
) -> None:
    """The ``k`` nearest ``candidates`` of each of ``queries[rows]``, written into ``values`` / ``found``: the
    candidates gathered in blocks of at most ``_JOIN_BLOCK`` rows, each searched by one matrix product, the
    best ``k`` so far kept."""
    for start in range(0, len(rows), _JOIN_QUERIES):
        picked = rows[start : start + _JOIN_QUERIES]
        block_queries = queries[picked]
        best = np.full((len(picked), 0), -np.inf, dtype=np.float32)
        best_rows = np.zeros((len(picked), 0), dtype=np.int64)
        for low in range(0, len(candidates), _JOIN_BLOCK):
            chunk = candidates[low : low + _JOIN_BLOCK]
            top, columns = _top(block_queries @ base[chunk].T, k)
            best, merged = _top(np.concatenate([best, top], axis=1), k)
            best_rows = np.take_along_axis(np.concatenate([best_rows, chunk[columns]], axis=1), merged, axis=1)
        values[picked, : best.shape[1]] = best
        found[picked, : best.shape[1]] = best_rows


def _joined(
    base: np.ndarray, queries: np.ndarray, k: int, base_cell: np.ndarray, query_cell: np.ndarray,
    order: np.ndarray, joined: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest among the members of the ``joined`` cells nearest its own cell: per query
    cell, brute force (matrix products) of its queries against those members. Values are exact inner
    products; -1 / -inf where fewer than k were there. The cells are shared among the BLAS library's threads,
    each product running on one thread: small products spread over threads spend more time waiting for
    each other than computing (on a busy machine, 5-10x the CPU time per multiply-add, measured here)."""
    cells = len(order)
    members = np.argsort(base_cell, kind="stable")
    member_bounds = np.searchsorted(base_cell[members], np.arange(cells + 1))
    grouped = np.argsort(query_cell, kind="stable")
    query_bounds = np.searchsorted(query_cell[grouped], np.arange(cells + 1))
    values = np.full((len(queries), k), -np.inf, dtype=np.float32)
    found = np.full((len(queries), k), -1, dtype=np.int64)

    def join(cell: int) -> None:
        candidates = np.concatenate([members[member_bounds[c] : member_bounds[c + 1]] for c in order[cell, :joined]])
        _join_cell(base, queries, grouped[query_bounds[cell] : query_bounds[cell + 1]], candidates, k, values, found)

    workers = max([pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"], default=1)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        # list(): re-raises a worker's exception here.
        list(pool.map(join, np.flatnonzero(np.diff(query_bounds)).tolist()))
    return values, found


def _cell_join(
    base: np.ndarray, queries: np.ndarray, k: int, settings: SearchParams, record: dict[str, Any],
    cells: int, seed: int, self_search: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The approximate float search, a "cell join": spherical k-means cells of ``base`` (trained on a
    content-chosen sample), each query in the cell of its nearest centroid, and each query cell searched
    exactly against the members of the ``m`` cells whose centroids are nearest its own (``_joined``): large
    matrix products, where an inverted-file index scans its lists one query at a time (~120 against ~7
    GFLOP/s measured here). The similarities found are exact; only recall can suffer.

    ``m`` is the fewest cells whose recall@k on the recall sample reaches ``settings.min_recall``. That recall is
    known for every ``m`` before any join runs: a join searches its candidate cells exhaustively, so it finds
    a true neighbour exactly when that neighbour's cell is among the ``m`` its query's cell joins. When no
    ``m`` up to half the cells reaches it, the search is exact. The recall recorded is measured again on the join's own
    results for the sample (where it falls short, the search is exact too)."""
    centroids = _cells(base, cells, seed)
    base_cell = _assigned(base, centroids)
    query_cell = base_cell if self_search else _assigned(queries, centroids)
    most = max(1, cells // _FALLBACK_SHARE)
    order = _cell_order(centroids, most)
    sample = content_sample(queries, settings.recall_queries, seed)
    truth, truth_found = _exact(base, queries[sample], k, False)
    # Rank, among the cells its query's cell joins, of the cell of each exact neighbour (``most``: beyond).
    rank = np.full((len(sample), cells), most, dtype=np.int64)
    rank[np.arange(len(sample))[:, None], order[query_cell[sample]]] = np.arange(most)
    neighbour_rank = np.take_along_axis(rank, base_cell[np.maximum(truth_found, 0)], axis=1)
    del rank
    own = sample if self_search else None
    # The fewest cells that reach the target: every m costs one look at the ranks, so none is skipped (doubling
    # could join up to twice the cells needed); run.json shows m = 1, 2, 4, ... below it, and it.
    tried: list[dict[str, Any]] = []
    for joined in range(1, most + 1):
        recall = _recall(truth, np.where(neighbour_rank < joined, truth_found, -1), truth, own, False)
        reached = recall >= settings.min_recall
        if reached or joined & (joined - 1) == 0 or joined == most:
            tried.append({"cells_joined": joined, "recall": recall})
        if reached:
            break
    record.update(cells=cells, cells_joined=joined, recall=recall, recall_queries=len(sample),
                  min_recall=settings.min_recall, tried=tried)
    if recall >= settings.min_recall:
        values, found = _joined(base, queries, k, base_cell, query_cell, order, joined)
        record["recall"] = _recall(values[sample], found[sample], truth, own, False)
        if record["recall"] >= settings.min_recall:
            record["method"] = "cell_join"
            return values, found
        recall = record["recall"]
    record["method"] = "exact"
    record["fallback"] = (f"recall {recall:.3f} < {settings.min_recall} joining {joined} of {cells} cells: "
                          "searched exactly")
    return _exact(base, queries, k, False)


def nearest(
    base: np.ndarray, k: int, settings: SearchParams, name: str, log: SearchLog | None = None,
    queries: np.ndarray | None = None, *, binary: bool = False, exact_max: int | None = None,
    nprobe: int | None = None, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``base`` rows of each query -- of each base row itself when ``queries`` is None (the
    row itself included) -- as (values, indices), nearest first; index -1 where the search found none.

    Values are inner products of float32 rows, or Hamming distances of uint8 codes when ``binary``. Exact while
    queries x base rows is at most ``exact_max`` squared (default ``settings.exact_max_vectors``: a search of
    every row against every row is exact up to that many rows). Beyond, float rows are searched by a cell join
    (``_cell_join``) and binary codes by a faiss inverted-file index of about 4 sqrt(N) cells that probes
    ``nprobe`` cells per query at first. Either way the recall@k is measured against brute force on
    ``settings.recall_queries`` content-chosen queries, and the cells searched per query double until it
    reaches ``settings.min_recall`` (the join takes the fewest cells that reach it); when that would search more
    than half the cells, the search is exact (little would be saved). ``log`` gets one record of what was done.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    self_search = queries is None
    query_rows = base if queries is None else queries
    count = len(base)
    k = min(k, count)
    limit = settings.exact_max_vectors if exact_max is None else exact_max
    record: dict[str, Any] = {"search": name, "vectors": count, "queries": len(query_rows), "k": k}
    progress.step(f"neighbour search over {count:,} {'image hashes' if binary else 'vectors'}")
    # Exact while the search costs no more than an all-pairs search of ``limit`` vectors: one class's members
    # searched by every image (class closeness) count as the work they are, not as a small index.
    cells = _inverted_file_cells(count) if binary else _join_cells(count)
    if count * len(query_rows) <= limit * limit or cells < 2 or k == 0:
        values, found = _exact(base, query_rows, k, binary)
        record["method"] = "exact"
    elif not binary:
        values, found = _cell_join(base, query_rows, k, settings, record, cells, seed, self_search)
    else:
        dim = base.shape[1]
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(dim * 8), dim * 8, cells)
        index.cp.seed = seed
        index.cp.niter = _KMEANS_ITERATIONS
        index.train(_training_sample(base, cells, seed))
        index.add(base)
        sample = content_sample(query_rows, settings.recall_queries, seed)
        truth, _ = _exact(base, query_rows[sample], k, binary)
        probe = min(nprobe or 1, cells)
        tried: list[dict[str, Any]] = []
        while True:
            index.nprobe = probe
            sample_values, sample_found = index.search(query_rows[sample], k)
            recall = _recall(sample_values, sample_found, truth, sample if self_search else None, binary)
            tried.append({"nprobe": probe, "recall": recall})
            if recall >= settings.min_recall or probe >= cells or 2 * probe * _FALLBACK_SHARE > cells:
                break
            probe = min(2 * probe, cells)
        record.update(cells=cells, nprobe=probe, recall=recall, recall_queries=len(sample),
                      min_recall=settings.min_recall, tried=tried)
        if recall >= settings.min_recall:
            record["method"] = "ivf"
            values, found = _batched(index, query_rows, k)
        else:
            del index
            record["method"] = "exact"
            record["fallback"] = (f"recall {recall:.3f} < {settings.min_recall} at {probe} of {cells} cells: "
                                  "searched exactly")
            values, found = _exact(base, query_rows, k, binary)
    record["seconds"] = round(time.perf_counter() - started, 3)
    # CPU time of the whole process meanwhile, every thread's: on a shared machine wall time includes waiting.
    record["cpu_seconds"] = round(time.process_time() - cpu_started, 3)
    if log is not None:
        log.records.append(record)
    return values, found


def _drop_self(values: np.ndarray, found: np.ndarray, k: int, search: str, own: np.ndarray | None = None) -> Neighbours:
    """From a self-search for ``k`` + 1, each row's ``k`` nearest others (itself, or if absent the farthest,
    dropped); ``own``: each query's own row (default: query i is row i)."""
    rows = (np.arange(len(found)) if own is None else np.asarray(own))[:, None]
    keep = found != rows
    keep &= np.cumsum(keep, axis=1) <= k
    return Neighbours(found[keep].reshape(len(found), k), values[keep].reshape(len(found), k).astype(np.float64),
                      search)


def hamming_neighbours(
    codes: np.ndarray, k: int, exact_max: int, nprobe: int, settings: SearchParams | None = None,
    log: SearchLog | None = None, name: str = "hamming",
) -> Neighbours:
    """Each binary code's ``k`` nearest other codes by Hamming distance (``nearest``: exact up to ``exact_max``)."""
    rows = np.ascontiguousarray(codes, dtype=np.uint8)
    return _nearest_others(rows, k, True, exact_max, nprobe, settings, log, name, 0)


def pair_bits(codes: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamming distance in bits between ``codes[left]`` and ``codes[right]`` (uint8 rows): popcounts of 64-bit
    words when the width allows (the duplicates check judges 1M x 20 neighbour pairs by hash distance)."""
    if codes.shape[1] % 8 == 0:
        words = np.ascontiguousarray(codes).view(np.uint64)
        return np.asarray(np.bitwise_count(words[left] ^ words[right]).sum(axis=1))
    return np.asarray(np.bitwise_count(codes[left] ^ codes[right]).sum(axis=1))


def hamming_neighbours_of(codes: np.ndarray, rows: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest other codes of each of ``codes[rows]``, exactly: brute force, len(rows) x N popcounts
    (~1.2 ns each here), for a sample of images or the few that need their neighbourhood."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    k = min(k, len(codes) - 1)
    values, found = _exact(codes, codes[rows], k + 1, True)
    return _drop_self(values, found, k, "exact", own=rows)


def hamming_cross_neighbours(codes: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest of ``codes`` to each query row i, other than ``codes[i]``, exactly (brute force,
    len(queries) x N popcounts): each image's mirrored hash against every other image's hash."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    k = min(k, len(codes) - 1)
    values, found = _exact(codes, np.ascontiguousarray(queries, dtype=np.uint8), k + 1, True)
    return _drop_self(values, found, k, "exact")


def _nearest_others(
    rows: np.ndarray, k: int, binary: bool, exact_max: int, nprobe: int, settings: SearchParams | None,
    log: SearchLog | None, name: str, seed: int,
) -> Neighbours:
    k = min(k, len(rows) - 1)
    trace = log if log is not None else SearchLog()
    values, found = nearest(rows, k + 1, settings or SearchParams(), name, trace, binary=binary,
                            exact_max=exact_max, nprobe=nprobe, seed=seed)
    return _drop_self(values, found, k, trace.records[-1]["method"])


def chord_distance(cosine: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit vectors, ``sqrt(2 - 2 cos)``: proportional to the angle for close
    pairs, so ratios of distances mean the same at any scale (``1 - cos`` would square them)."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(cosine, dtype=np.float64), 0.0, None))


@dataclass(frozen=True)
class NeighbourNull:
    """How close an image's nearest *unrelated* neighbour is in this dataset, for one distance.

    Two robust z-scores judge a pair at distance ``d`` (larger: more surprising):

    - global: ``log d`` against the median and MAD of every image's nearest-neighbour log distance.
      Most images have no copy, so this is the distribution of the closest unrelated pair an image has;
      a copy sits far below it.
    - local: ``log(d / reference)`` against the same statistics of ``log(d1 / reference)``, where an
      image's reference is its ``reference_rank``-th nearest neighbour, not counting neighbours that
      already pass the global test (so a burst of several copies does not hide itself). A copy stands
      out from the image's own neighbourhood; a look-alike in a crowd of look-alikes does not.
    """

    centre: float
    scale: float
    ratio_centre: float
    ratio_scale: float
    reference: np.ndarray
    global_min_z: float

    @classmethod
    def fit(cls, distances: np.ndarray, reference_rank: int, global_min_z: float) -> NeighbourNull:
        """``distances``: (n, k) sorted distances to each item's nearest neighbours (NaN: none)."""
        logs = np.log(np.maximum(distances, _MIN_DISTANCE))
        nearest = logs[:, 0]
        centre, scale = median_spread(nearest[np.isfinite(nearest)], _MIN_LOG_SCALE)
        reference = _references(logs, centre, scale, global_min_z, reference_rank)
        ratios = nearest - reference
        ratio_centre, ratio_scale = median_spread(ratios[np.isfinite(ratios)], _MIN_LOG_SCALE)
        return cls(centre, scale, ratio_centre, ratio_scale, reference, global_min_z)

    def references(self, distances: np.ndarray, reference_rank: int) -> np.ndarray:
        """The log reference distance of items outside the fit, from their (n, k) sorted neighbour distances:
        the same rank rule, under this null's global test."""
        logs = np.log(np.maximum(distances, _MIN_DISTANCE))
        return _references(logs, self.centre, self.scale, self.global_min_z, reference_rank)

    def z_global(self, distance: np.ndarray) -> np.ndarray:
        return np.asarray((self.centre - np.log(np.maximum(distance, _MIN_DISTANCE))) / self.scale)

    def z_local(self, distance: np.ndarray, item: np.ndarray) -> np.ndarray:
        ratio = np.log(np.maximum(distance, _MIN_DISTANCE)) - self.reference[item]
        return np.asarray((self.ratio_centre - ratio) / self.ratio_scale)

    def max_distance(self, min_z: float) -> float:
        """The largest distance with a global z of at least ``min_z`` (for run.json)."""
        return float(np.exp(self.centre - min_z * self.scale))

    def max_ratio(self, min_z: float) -> float:
        """The largest ``d / reference`` with a local z of at least ``min_z`` (for run.json)."""
        return float(np.exp(self.ratio_centre - min_z * self.ratio_scale))


def _references(logs: np.ndarray, centre: float, scale: float, global_min_z: float, reference_rank: int) -> np.ndarray:
    """Each item's log distance to its ``reference_rank``-th neighbour, not counting neighbours that pass the
    global test (NaN distances: none found)."""
    passing = np.isfinite(logs) & ((centre - logs) / scale >= global_min_z)
    width = logs.shape[1]
    rank = np.minimum(reference_rank - 1 + passing.sum(axis=1), width - 1)
    reference = logs[np.arange(len(logs)), rank]
    missing = ~np.isfinite(reference)
    # An item with fewer neighbours than that (IVF misses) uses its farthest one found.
    if missing.any():
        last = np.where(np.isfinite(logs), logs, -np.inf).max(axis=1)
        reference[missing] = last[missing]
    return np.asarray(reference)


def hex_codes(hashes: list[str]) -> np.ndarray:
    """Equal-length hex hash strings -> (n, bytes) uint8 array, the layout faiss binary indexes take."""
    if not hashes:
        return np.zeros((0, 0), dtype=np.uint8)
    return np.frombuffer(b"".join(bytes.fromhex(value) for value in hashes), dtype=np.uint8).reshape(
        len(hashes), -1
    )


def _block_keys(bits: np.ndarray, low: int, high: int) -> np.ndarray:
    """Bits ``low:high`` (at most 64) of each unpacked code as one integer per row."""
    packed = np.packbits(bits[:, low:high], axis=1)
    padded = np.zeros((len(bits), 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(">u8").ravel()


def _runs(sorted_keys: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """For offsets t = 1, 2, ...: the positions p of ``sorted_keys`` whose key p + t shares (one run of equal
    keys). Each array is at most N long, and all of them together hold one entry per pair sharing a key."""
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    run_end = np.repeat(ends, ends - starts)
    offset = 1
    active = np.flatnonzero(run_end - np.arange(len(sorted_keys)) > offset)
    while len(active):
        yield offset, active
        offset += 1
        active = active[run_end[active] - active > offset]


def _multi_index_keys(unpacked: np.ndarray, radius: int) -> list[np.ndarray]:
    """The block keys of multi-index hashing at ``radius``: ``radius`` + 1 disjoint blocks of the unpacked bits
    (more, of at most 64 bits each, for long codes at a small radius: the pigeonhole still holds)."""
    bits = unpacked.shape[1]
    edges = np.linspace(0, bits, radius + 2).round().astype(np.int64)
    if np.diff(edges).max() > 64:
        edges = np.arange(0, bits + 1, 64)
    return [_block_keys(unpacked, low, high) for low, high in zip(edges[:-1], edges[1:], strict=True)]


def _candidate_count(keys: list[np.ndarray]) -> int:
    """Candidate pairs the blocks give: pairs sharing a block's key, once per block they share."""
    total = 0
    for block in keys:
        _, sizes = np.unique(block, return_counts=True)
        total += int((sizes.astype(np.int64) * (sizes - 1) // 2).sum())
    return total


def hamming_reach(codes: np.ndarray, max_radius: int, max_candidates: int) -> tuple[int, int]:
    """The largest radius (at most ``max_radius``) at which multi-index hashing of ``codes`` verifies at most
    ``max_candidates`` candidate pairs, and that count; radius -1 when not even radius 0 is that cheap.
    Counting is a sort per block, so the radius is found by bisection (the count grows with the radius, up to
    the rounding of block edges) before any candidate is generated."""
    if len(codes) < 2 or max_radius < 0:
        return -1, 0
    unpacked = np.unpackbits(np.ascontiguousarray(codes, dtype=np.uint8), axis=1)
    low, high, counted = -1, min(max_radius, unpacked.shape[1] - 1), {-1: 0}
    while low < high:
        middle = (low + high + 1) // 2
        counted[middle] = _candidate_count(_multi_index_keys(unpacked, middle))
        if counted[middle] <= max_candidates:
            low = middle
        else:
            high = middle - 1
    return low, counted[low]


def hamming_pairs_within(
    codes: np.ndarray, radius: int, max_candidates: int, max_pairs: int | None = None
) -> tuple[np.ndarray | None, int]:
    """Every pair of rows (i < j) of binary ``codes`` at most ``radius`` Hamming bits apart: exactly, by
    multi-index hashing. Split each code into ``radius`` + 1 disjoint blocks; a pair within ``radius``
    differs in at most ``radius`` blocks, so it agrees exactly on one block at least (pigeonhole). Pairs
    sharing some block are the candidates; each is verified by popcount. No pair within the radius is missed.

    The candidates are counted from the block buckets before any is generated; when they exceed
    ``max_candidates`` (a large radius: short blocks, crowded buckets) it returns None and the caller searches
    another way; so it does, to bound memory, once more than ``max_pairs`` pairs lie within the radius (each
    block's copy of a pair counted). Returns (pairs or None, candidates counted).

    Not faiss's ``IndexBinaryMultiHash``: it does the same search one query at a time through hash tables,
    ~190 ns a candidate here (102 CPU-s for 1M random 128-bit codes at radius 8); sorting each block's keys
    and comparing neighbours in the sorted order verifies whole arrays of candidates at once (7 CPU-s).
    """
    count, width = codes.shape
    bits = width * 8
    if count < 2:
        return np.zeros((0, 2), dtype=np.int64), 0
    if radius + 1 > bits:
        return None, count * (count - 1) // 2
    keys = _multi_index_keys(np.unpackbits(codes, axis=1), radius)
    total = _candidate_count(keys)
    if total > max_candidates:
        return None, total
    padded = np.zeros((count, -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = codes
    columns = padded.view(np.uint64).T
    found: list[np.ndarray] = []
    kept = 0
    for block in keys:
        order = np.argsort(block, kind="stable")
        # The codes in this block's sorted order: candidates are then rows near each other in memory.
        words = [np.ascontiguousarray(column[order]) for column in columns]
        for offset, left in _runs(block[order]):
            right = left + offset
            distance = np.zeros(len(left), dtype=np.uint8)
            for column in words:
                distance += np.bitwise_count(column[left] ^ column[right])
            close = np.flatnonzero(distance <= radius)
            if len(close):
                ends = order[left[close]], order[right[close]]
                found.append(np.stack([np.minimum(*ends), np.maximum(*ends)], axis=1))
                kept += len(close)
                if max_pairs is not None and kept > max_pairs:
                    return None, total
    if not found:
        return np.zeros((0, 2), dtype=np.int64), total
    # A pair agreeing on several blocks was found once per block: one copy of each, as i * N + j.
    flat = np.unique(np.concatenate(found).astype(np.int64) @ np.array([count, 1], dtype=np.int64))
    return np.stack([flat // count, flat % count], axis=1), total
