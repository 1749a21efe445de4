"""Neighbour search for duplicate detection: cosine pairs over embeddings, Hamming pairs over hashes.

Both searches return each image's ``top_k`` nearest neighbours that pass a threshold, as unique
unordered pairs. Up to ``exact_max`` items the search is exact (blocked matrix products for cosine, a
flat binary index for Hamming); beyond it, all-pairs work grows too fast (about 27 s for 100k 512-d
vectors on two cores, 45 min for 1M), so a faiss inverted-file index searches only the ``nprobe``
cells nearest each query. Near-duplicates sit much closer to each other than to anything else, so
they almost always share a cell; ``benchmarks/duplicates.py`` measures that recall against exact search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Similarity entries computed per exact-search block (float32): bounds that step's memory to ~128 MB.
_BLOCK_ELEMENTS = 1 << 25
# Queries per faiss search call, to bound the memory of the result arrays.
_QUERY_BATCH = 65_536
# faiss wants about this many training points per inverted-file cell.
_TRAIN_PER_CELL = 40


@dataclass(frozen=True)
class Pairs:
    """Unique pairs ``left[i] < right[i]`` of item indices with their similarity or distance."""

    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows scaled to length 1, so inner products are cosines."""
    unit = np.array(vectors, dtype=np.float32, order="C", copy=True)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return unit


def _top_k_pairs(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, top_k: int, largest: bool) -> Pairs:
    """Keep each row's ``top_k`` best hits (self-hits dropped), then deduplicate as unordered pairs."""
    keep = rows != cols
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((-values if largest else values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    if len(rows):
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
        keep = rank < top_k
        rows, cols, values = rows[keep], cols[keep], values[keep]
    left, right = np.minimum(rows, cols), np.maximum(rows, cols)
    _, first = np.unique(left.astype(np.int64) * (int(right.max(initial=0)) + 1) + right, return_index=True)
    return Pairs(left[first].astype(np.int64), right[first].astype(np.int64), values[first])


def _inverted_file_cells(count: int) -> int:
    """About 2 sqrt(N) cells, but never more than the training set can support."""
    return max(1, min(int(2 * np.sqrt(count)), count // _TRAIN_PER_CELL))


def _training_sample(data: np.ndarray, cells: int, seed: int) -> np.ndarray:
    size = min(len(data), cells * _TRAIN_PER_CELL * 2)
    if size == len(data):
        return data
    pick = np.random.default_rng(seed).choice(len(data), size=size, replace=False)
    return data[np.sort(pick)]


def cosine_pairs_exact(unit: np.ndarray, threshold: float, top_k: int) -> Pairs:
    """Exact: every row against every row in blocks, hits ``>= threshold``, best ``top_k`` per row."""
    count = len(unit)
    block = max(1, _BLOCK_ELEMENTS // max(count, 1))
    rows, cols, values = [], [], []
    for start in range(0, count, block):
        similarity = unit[start : start + block] @ unit.T
        hit_rows, hit_cols = np.nonzero(similarity >= threshold)
        rows.append(hit_rows + start)
        cols.append(hit_cols)
        values.append(similarity[hit_rows, hit_cols])
    if not rows:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return _top_k_pairs(np.concatenate(rows), np.concatenate(cols), np.concatenate(values), top_k, True)


def cosine_pairs_ivf(unit: np.ndarray, threshold: float, top_k: int, nprobe: int, seed: int = 0) -> Pairs:
    """Approximate: a faiss IVF-Flat index (inner product) searched ``nprobe`` cells per query."""
    import faiss  # imported on use: faiss loads slowly and only approximate search needs it

    count, dim = unit.shape
    cells = _inverted_file_cells(count)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(_training_sample(unit, cells, seed))
    index.add(unit)
    index.nprobe = min(nprobe, cells)
    return _search_batches(index, unit, threshold, top_k, largest=True)


def _search_batches(index: Any, queries: np.ndarray, limit: float, top_k: int, largest: bool) -> Pairs:
    """Search every item for its ``top_k`` + 1 neighbours (one is itself) and keep those within ``limit``."""
    k = min(top_k + 1, len(queries))
    rows, cols, values = [], [], []
    for start in range(0, len(queries), _QUERY_BATCH):
        found_values, found = index.search(queries[start : start + _QUERY_BATCH], k)
        passing = (found >= 0) & (found_values >= limit if largest else found_values <= limit)
        hit_rows, hit_cols = np.nonzero(passing)
        rows.append(hit_rows + start)
        cols.append(found[hit_rows, hit_cols])
        values.append(found_values[hit_rows, hit_cols])
    return _top_k_pairs(np.concatenate(rows), np.concatenate(cols), np.concatenate(values), top_k, largest)


def cosine_pairs(
    vectors: np.ndarray, threshold: float, top_k: int, exact_max: int, nprobe: int
) -> tuple[Pairs, str]:
    """Pairs with cosine ``>= threshold`` (top ``top_k`` per item) and the search used ("exact"/"ivf")."""
    unit = unit_rows(vectors)
    if len(unit) < 2:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)), "exact"
    if len(unit) <= exact_max:
        return cosine_pairs_exact(unit, threshold, top_k), "exact"
    return cosine_pairs_ivf(unit, threshold, top_k, nprobe), "ivf"


def hex_codes(hashes: list[str]) -> np.ndarray:
    """Equal-length hex hash strings -> (n, bytes) uint8 array, the layout faiss binary indexes take."""
    return np.frombuffer(b"".join(bytes.fromhex(value) for value in hashes), dtype=np.uint8).reshape(
        len(hashes), -1
    )


def hamming_pairs(codes: np.ndarray, max_distance: int, top_k: int, exact_max: int, nprobe: int) -> Pairs:
    """Pairs of binary codes at most ``max_distance`` bits apart (top ``top_k`` per item).

    Exact (a flat binary index) up to ``exact_max`` codes, a binary inverted-file index beyond.
    """
    import faiss  # imported on use: faiss loads slowly and only approximate search needs it

    count, width = codes.shape
    if count < 2:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    bits = width * 8
    index: Any
    if count <= exact_max:
        index = faiss.IndexBinaryFlat(bits)
    else:
        cells = _inverted_file_cells(count)
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, cells)
        index.cp.seed = 0
        index.train(_training_sample(codes, cells, 0))
        index.nprobe = min(nprobe, cells)
    index.add(codes)
    return _search_batches(index, codes, max_distance, top_k, largest=False)


def components(count: int, pairs: list[Pairs]) -> np.ndarray:
    """Connected-component label per item over the union of all pairs (union-find, done by scipy)."""

    left = np.concatenate([p.left for p in pairs]) if pairs else np.zeros(0, np.int64)
    right = np.concatenate([p.right for p in pairs]) if pairs else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)
