"""How close each image comes to each class: mean cosine similarity to the class's nearest members.

Two checks read this. An image that shows two classes sits near the members of both, where a
classifier trained on the labels may still commit to one (``ambiguous`` pools the two views). An
image that belongs to no class is far from the nearest members of *every* class (``outliers``);
asking per class, rather than for the nearest images overall, means a few junk images filed under
different classes cannot shelter each other, as they would in a global neighbour search.

Vectors are distinct contents: an image never counts as its own neighbour, and the caller folds
identical embeddings (copies) into one vector so a copied blank frame cannot vouch for itself.
Cost is one inner-product search of every vector against every class: exact (O(n^2 d) in all) up to
``[search] exact_max_vectors`` members, beyond it an inverted-file index per class whose recall is
measured and recorded (``similarity.nearest``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor import progress
from auditor.config import SearchParams
from auditor.probabilities import fit_temperature, softmax
from auditor.similarity import SearchLog, nearest, unit_rows

# Queries per faiss search call, to bound the memory of the result arrays.
_QUERY_BATCH = 16_384


@dataclass(frozen=True)
class ClassNeighbourhoods:
    # (n_vectors, n_classes) float32: mean cosine similarity to the ``k`` nearest other members of each
    # class (fewer when the class is smaller); NaN when the class has no member besides the vector itself.
    similarity: np.ndarray
    # (n_vectors,) index of the most similar other vector in any class, -1 when there is none.
    nearest: np.ndarray


def class_neighbourhoods(
    vectors: np.ndarray, members: list[np.ndarray], k: int, search: SearchParams | None = None,
    log: SearchLog | None = None, rows: np.ndarray | None = None,
) -> ClassNeighbourhoods:
    """``members[c]`` holds the indices of the vectors that belong to class ``c`` (a vector may be in several);
    with ``rows``, the vectors are ``vectors[rows]`` (picked without a second copy)."""
    settings = search or SearchParams()
    unit = unit_rows(vectors, rows)
    n = len(unit)
    similarity = np.full((n, len(members)), np.nan, dtype=np.float32)
    best = np.full(n, -np.inf, dtype=np.float32)
    nearest_other = np.full(n, -1, dtype=np.int64)
    records = SearchLog()
    for column, member_ids in enumerate(members):
        member_ids = np.asarray(member_ids, dtype=np.int64)
        progress.step(f"class closeness {column + 1}/{len(members)}")
        if len(member_ids) == 0:
            continue
        # One class's index at a time: the per-class copies together hold the vectors once.
        sims, found = nearest(unit_rows(unit, member_ids), k + 1, settings, f"class_closeness[{column}]", records,
                              queries=unit, seed=column)
        for start in range(0, n, _QUERY_BATCH):
            stop = min(n, start + _QUERY_BATCH)
            hits, values = found[start:stop], sims[start:stop]
            ids = member_ids[np.maximum(hits, 0)]
            valid = (hits >= 0) & (ids != np.arange(start, stop)[:, None])
            valid &= np.cumsum(valid, axis=1) <= k
            counts = valid.sum(axis=1)
            totals = np.where(valid, values, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                similarity[start:stop, column] = np.where(counts > 0, totals / counts, np.nan)
            # The first valid hit is the class's nearest other member.
            first = np.argmax(valid, axis=1)
            rows = np.arange(stop - start)
            top = np.where(counts > 0, values[rows, first], -np.inf)
            closer = top > best[start:stop]
            best[start:stop][closer] = top[closer]
            nearest_other[start:stop][closer] = ids[rows, first][closer]
    if log is not None:
        log.records.extend(_summarised(records.records))
    return ClassNeighbourhoods(similarity, nearest_other)


def _summarised(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approximate per-class searches as they are; the exact ones (every class, on small data) as one record."""
    exact = [r for r in records if r["method"] == "exact" and "fallback" not in r]
    merged = [r for r in records if r not in exact]
    if exact:
        merged.insert(0, {"search": "class_closeness", "method": "exact", "classes": len(exact),
                          "vectors": sum(r["vectors"] for r in exact), "queries": exact[0]["queries"],
                          "k": max(r["k"] for r in exact), "seconds": round(sum(r["seconds"] for r in exact), 3)})
    return merged


def similarity_probabilities(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class probabilities from class similarities: a softmax whose temperature best explains the labels.

    Similarities are cosines on an encoder-specific scale; one temperature fitted by maximum likelihood
    against the given labels turns them into probabilities as confident as they have earned on this
    dataset. A class with no other member (NaN) gets only the probability floor; images whose own class
    has no other member say nothing about the temperature and are left out of the fit.
    """

    scores = np.where(np.isnan(similarity), -np.inf, similarity).astype(np.float64)
    informative = np.isfinite(scores[np.arange(len(labels)), labels])
    temperature = 1.0
    if informative.any():
        temperature = fit_temperature(scores[informative], labels[informative], (0.1, 1000.0))
    # A vector with no known class at all (nothing to compare with) gets a flat row.
    probs = np.clip(softmax(scores * temperature), 1e-6, None)
    return np.asarray(probs / probs.sum(axis=1, keepdims=True))
