"""Neighbour search and the data's own yardstick for "closer than anything unrelated".

Duplicate detection asks, for every image, who its nearest neighbours are -- by embedding cosine and
by perceptual-hash Hamming distance -- and then judges each close pair against this dataset, not
against a fixed number (see ``NeighbourNull``). Up to ``exact_max`` items the search is exact (a flat
faiss index: all pairs, about 27 s for 100k 512-d vectors on two cores, 45 min for 1M); beyond it, a
faiss inverted-file index searches only the ``nprobe`` cells nearest each query. Near-duplicates sit
much closer to each other than to anything else, so they almost always share a cell;
``benchmarks/duplicates.py`` measures that recall against exact search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor import progress

# Queries per faiss search call, to bound the memory of the result arrays.
_QUERY_BATCH = 65_536
# faiss wants about this many training points per inverted-file cell.
_TRAIN_PER_CELL = 40
# 1.4826 * MAD estimates a normal distribution's standard deviation.
_MAD_TO_SIGMA = 1.4826
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


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows scaled to length 1, so inner products are cosines."""
    unit = np.array(vectors, dtype=np.float32, order="C", copy=True)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return unit


def _inverted_file_cells(count: int) -> int:
    """About 2 sqrt(N) cells, but never more than the training set can support."""
    return max(1, min(int(2 * np.sqrt(count)), count // _TRAIN_PER_CELL))


def _training_sample(data: np.ndarray, cells: int, seed: int) -> np.ndarray:
    size = min(len(data), cells * _TRAIN_PER_CELL * 2)
    if size == len(data):
        return data
    pick = np.random.default_rng(seed).choice(len(data), size=size, replace=False)
    return data[np.sort(pick)]


def _search(index: Any, queries: np.ndarray, k: int, search: str) -> Neighbours:
    """Search every item for ``k`` + 1 neighbours and drop itself (or, if absent, the farthest)."""
    count = len(queries)
    found_index = np.full((count, k), -1, dtype=np.int64)
    found_value = np.zeros((count, k), dtype=np.float64)
    for start in range(0, count, _QUERY_BATCH):
        values, found = index.search(queries[start : start + _QUERY_BATCH], k + 1)
        rows = np.arange(start, start + len(found))[:, None]
        keep = found != rows
        keep &= np.cumsum(keep, axis=1) <= k
        found_index[start : start + len(found)] = found[keep].reshape(len(found), k)
        found_value[start : start + len(found)] = values[keep].reshape(len(found), k)
    return Neighbours(found_index, found_value, search)


def cosine_neighbours(unit: np.ndarray, k: int, exact_max: int, nprobe: int, seed: int = 0) -> Neighbours:
    """Each unit row's ``k`` nearest rows by cosine: exact up to ``exact_max`` rows, faiss IVF-Flat beyond."""
    import faiss  # imported on use: faiss loads slowly and only the neighbour search needs it

    count, dim = unit.shape
    progress.step(f"neighbour search over {count:,} vectors")
    k = min(k, count - 1)
    index: Any
    if count <= exact_max:
        index, search = faiss.IndexFlatIP(dim), "exact"
    else:
        cells = _inverted_file_cells(count)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(_training_sample(unit, cells, seed))
        index.nprobe = min(nprobe, cells)
        search = "ivf"
    index.add(unit)
    return _search(index, unit, k, search)


def hamming_neighbours(codes: np.ndarray, k: int, exact_max: int, nprobe: int) -> Neighbours:
    """Each binary code's ``k`` nearest codes by Hamming distance: exact up to ``exact_max``, binary IVF beyond."""
    import faiss  # imported on use: faiss loads slowly and only the neighbour search needs it

    count, width = codes.shape
    progress.step(f"neighbour search over {count:,} image hashes")
    k = min(k, count - 1)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    bits = width * 8
    index: Any
    if count <= exact_max:
        index, search = faiss.IndexBinaryFlat(bits), "exact"
    else:
        cells = _inverted_file_cells(count)
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, cells)
        index.cp.seed = 0
        index.train(_training_sample(codes, cells, 0))
        index.nprobe = min(nprobe, cells)
        search = "ivf"
    index.add(codes)
    return _search(index, codes, k, search)


def chord_distance(cosine: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit vectors, ``sqrt(2 - 2 cos)``: proportional to the angle for close
    pairs, so ratios of distances mean the same at any scale (``1 - cos`` would square them)."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(cosine, dtype=np.float64), 0.0, None))


def robust_centre_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 * MAD (a standard deviation that a minority of outliers cannot move)."""
    centre = float(np.median(values))
    return centre, max(_MAD_TO_SIGMA * float(np.median(np.abs(values - centre))), _MIN_LOG_SCALE)


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
        centre, scale = robust_centre_scale(nearest[np.isfinite(nearest)])
        passing = np.isfinite(logs) & ((centre - logs) / scale >= global_min_z)
        width = logs.shape[1]
        rank = np.minimum(reference_rank - 1 + passing.sum(axis=1), width - 1)
        reference = logs[np.arange(len(logs)), rank]
        missing = ~np.isfinite(reference)
        # An item with fewer neighbours than that (IVF misses) uses its farthest one found.
        if missing.any():
            last = np.where(np.isfinite(logs), logs, -np.inf).max(axis=1)
            reference[missing] = last[missing]
        ratios = nearest - reference
        ratio_centre, ratio_scale = robust_centre_scale(ratios[np.isfinite(ratios)])
        return cls(centre, scale, ratio_centre, ratio_scale, reference, global_min_z)

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


def hex_codes(hashes: list[str]) -> np.ndarray:
    """Equal-length hex hash strings -> (n, bytes) uint8 array, the layout faiss binary indexes take."""
    if not hashes:
        return np.zeros((0, 0), dtype=np.uint8)
    return np.frombuffer(b"".join(bytes.fromhex(value) for value in hashes), dtype=np.uint8).reshape(
        len(hashes), -1
    )
