"""Exact, perceptual and semantic duplicates, grouped; groups that span splits are train/test leakage.

Identical files (sha256) and identical decoded pixels (a re-saved file) are copies by definition. For
every other pair the check asks the data, not a fixed number, whether the two are closer than
unrelated images get. Three distances are judged the same way: embedding cosine (as the chord distance
``sqrt(2 - 2 cos)``), perceptual hashes (pHash + dHash Hamming bits) and the same hashes of each image
levelled to its own tones (``images.levelled_hash``: a brightened copy whose light tones clipped keeps
them), and one image's hashes against the other's mirror image's (``images.Hashes``: a horizontally flipped
copy). The three hash distances are one family of evidence: each is tested at Bonferroni-corrected z
(three looks at the same pixels), and a pair they alone vouch for counts as one witness; a pair one witness
alone vouches for needs ``single_method_extra_z`` more and must pass the global test family-wise over the
dataset (Bonferroni over its images: the closest unrelated pair of a large dataset is close). For each distance,
``NeighbourNull`` fits this dataset's nearest-neighbour distances and a pair must pass both

- the global test: its distance lies ``global_min_z`` robust standard deviations below the median
  nearest-neighbour distance of the dataset (improbable for the closest *unrelated* pair an image has);
- the local test: its distance, relative to each image's ``reference_neighbour``-th neighbour, lies
  ``local_min_z`` robust standard deviations below the dataset's usual such ratio (the pair stands out
  from both images' own neighbourhoods; a look-alike in a crowd of look-alikes does not).

So thresholds follow the encoder and the dataset with no per-encoder constant; run.json records the
ones derived. Near-flat images, whose hashes carry almost no bits, are left to the other methods.

Groups do not chain: pairs are merged strongest first, and two groups join only when every cross pair
passes (complete linkage), so each reported group is mutually close. The evidence tier sets score and
severity: identical bytes or pixels, then hash and embedding agreeing, then one method alone.

A group whose members lie in two or more splits yields a ``split_leakage`` finding for every member;
otherwise every member gets ``exact_duplicate`` (all members pixel-identical) or ``near_duplicate``.
Copies under different labels are reported here with their labels; turning them into label conflicts
is the label-error check's job (``Evidence.exact_copy_groups``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult
from auditor.core.config import ConfigModel, SearchParams
from auditor.evidence.robust import bonferroni_z
from auditor.evidence.similarity import (
    NeighbourNull,
    Neighbours,
    SearchLog,
    chord_distance,
    content_sample,
    hamming_cross_neighbours,
    hamming_neighbours,
    hamming_neighbours_of,
    hamming_pairs_within,
    hamming_reach,
    hex_codes,
    pair_bits,
    unit_rows,
)
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import DuplicatesSummary

_HASH_BITS = 64
# Pairs whose distances are computed at once (bounds the gathered vectors' memory).
_PAIR_BATCH = 1 << 16
# Multi-index hashing verifies a candidate pair in ~26 ns here, brute force a pair in ~1.2 ns: beyond this
# share of all pairs as candidates, hashing would save too little and the usual search runs instead.
_MIH_MAX_SHARE = 1 / 20
# Pairs within the radius kept in memory, per image (16 bytes a pair, a few copies while they are merged):
# beyond, the search declines rather than hold them (1M look-alike hashes at a wide reach filled 23 GB).
_MAX_PAIRS_PER_IMAGE = 20
METHODS = ("sha256", "pixels", "perceptual", "levelled", "mirrored", "semantic")
NEAR_METHODS = ("perceptual", "levelled", "mirrored", "semantic")
# Which independent kind of evidence each near method is: the hashes all read pixels, so a pair they alone
# agree on is one witness, not two or three.
_FAMILY = {"perceptual": "hashes", "levelled": "hashes", "mirrored": "hashes", "semantic": "embedding"}
_IDENTICAL: dict[tuple[str, ...], str] = {("sha256",): "identical bytes", ("pixels",): "identical pixels"}
# Evidence tiers: how many independent families (hashes, embedding) vouch for a pair (identical content
# outranks both).
_TIER_IDENTICAL = 3
_TIER_NAMES = {_TIER_IDENTICAL: "identical", 2: "hash+embedding", 1: "one method"}


class DuplicatesParams(ConfigModel):
    """The check's own settings; how many neighbours each search holds per image is ``[evidence] neighbours``,
    shared with the k-NN vote (one embedding search serves both)."""

    # Global test: a pair's distance must lie this many robust standard deviations (1.4826 MAD of log
    # distance) below the dataset's median nearest-neighbour distance.
    global_min_z: float = 1.5
    # Local test: the pair's distance over each image's reference-neighbour distance must lie this many
    # robust standard deviations below the dataset's median such ratio.
    local_min_z: float = 3.5
    # An image's neighbourhood scale is its distance to this nearest neighbour (neighbours that already
    # pass the global test are skipped, so a burst of copies does not hide itself).
    reference_neighbour: int = Field(5, ge=2, le=100)
    # A pair only one method vouches for (hash and embedding disagree, or only one can judge it) must
    # pass both tests by this many more robust standard deviations: one witness needs more conviction. Its
    # global test must also hold family-wise over the images the method judges (``_Method.dataset_min_z``).
    single_method_extra_z: float = Field(2.0, ge=0.0)
    # Explicit overrides of the global test: a fixed cosine floor for embedding pairs, and a fixed
    # pHash + dHash Hamming bound (of 128 bits) for hash pairs. "auto": derived from the data.
    min_cosine: Annotated[float, Field(ge=-1.0, le=1.0)] | Literal["auto"] = "auto"
    max_hash_distance: Annotated[int, Field(ge=0, le=2 * _HASH_BITS)] | Literal["auto"] = "auto"
    # Fewer distinct images than this: too few to learn what "unrelated" looks like; only identical
    # copies are reported.
    min_images: int = Field(20, ge=3)
    # Images whose dHash has fewer than this many 1 bits (or 0 bits) are near-flat: no perceptual match.
    min_hash_bits: int = Field(4, ge=0, le=_HASH_BITS // 2)
    # Semantic (embedding) method on or off; the perceptual one always runs.
    semantic: bool = True
    # Up to this many distinct images the perceptual-hash searches are exact; beyond it, multi-index hashing or
    # a faiss inverted-file index. The semantic method reads the embedding search it shares with the k-NN
    # vote (``Evidence.neighbours``), which ``[search]`` governs.
    exact_max_images: int = Field(20_000, ge=2)
    # Cells of a hash inverted-file index searched per image at the first try (more: slower, higher recall).
    ann_nprobe: int = Field(8, ge=1)
    # Beyond exact_max_images, hash distances are judged against the nearest-neighbour distances of this many
    # sampled images (brute force: sample x N popcounts), and only hash pairs within the radius the tests
    # allow are searched for (multi-index hashing, exact). Up to this many images the sample is every image.
    hash_null_sample: int = Field(20_000, ge=100)
    # When that radius is too wide for multi-index hashing (random-looking hashes: photos), candidates are the
    # embedding neighbours within it plus the pairs hashing finds within the widest radius costing at most this
    # many candidates per image; their recall is measured on the sample, and below [search] min_recall every
    # image's hash neighbours are searched exactly instead.
    hash_candidates_per_image: int = Field(500, ge=0)


@dataclass
class _Method:
    """One distance (embedding or hash) over the distinct contents, with the null fitted to it."""

    name: str
    has: np.ndarray  # bool per content: this method can judge it
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (left, right) content positions -> distances
    null: NeighbourNull
    local_min_z: float
    fixed_max: float | None = None  # an explicit override of the global test
    # The global test for a pair this method alone vouches for, made family-wise over the images it
    # judges (None under an explicit override).
    dataset_min_z: float | None = None
    # Computes the reference (log distance) of contents the null has none for yet: a null fitted on a sample.
    references: Callable[[np.ndarray], np.ndarray] | None = None
    # How many references ``cover`` has computed (run.json).
    searched: int = 0

    def cover(self, contents: np.ndarray) -> int:
        """Give every content in ``contents`` this method can judge a reference; returns how many were new."""
        if self.references is None:
            return 0
        need = np.unique(contents[self.has[contents] & np.isnan(self.null.reference[contents])])
        if len(need):
            self.null.reference[need] = self.references(need)
        self.searched += len(need)
        return len(need)

    def evidence(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance, evidence) per pair; evidence >= 0 passes both tests (NaN: not judged)."""
        distance = np.full(len(left), np.nan)
        both = self.has[left] & self.has[right]
        judged = np.flatnonzero(both)
        for start in range(0, len(judged), _PAIR_BATCH):
            batch = judged[start : start + _PAIR_BATCH]
            distance[batch] = self.distance(left[batch], right[batch])
        if self.references is not None:
            # A null fitted on a sample: references are computed when first needed, for the ends of pairs that
            # pass the global test (a pair failing it fails whatever its local test says: brute-force
            # neighbourhoods of every candidate's ends cost ~1.2 ms each at 1M).
            passing = self.close(distance)
            self.cover(np.concatenate([left[passing], right[passing]]))
        if self.fixed_max is not None:
            global_margin = np.where(distance <= self.fixed_max, np.inf, -np.inf)
        else:
            global_margin = self.null.z_global(distance) - self.null.global_min_z
        local = np.minimum(self.null.z_local(distance, left), self.null.z_local(distance, right))
        margin = np.minimum(global_margin, local - self.local_min_z)
        return distance, np.where(both, margin, np.nan)

    def close(self, distance: np.ndarray) -> np.ndarray:
        """Whether each distance passes the global test (or the explicit override): a candidate pair."""
        if self.fixed_max is not None:
            return np.asarray(distance <= self.fixed_max)
        return np.asarray(self.null.z_global(distance) >= self.null.global_min_z)

    def alone(self, distance: np.ndarray, margin: np.ndarray, extra_z: float) -> np.ndarray:
        """The evidence when this method is the pair's only witness: ``extra_z`` more over both tests, and
        the global test passed at the dataset-wide level (``dataset_min_z``)."""
        if self.dataset_min_z is None:
            return margin - extra_z
        return np.minimum(margin - extra_z, self.null.z_global(distance) - self.dataset_min_z)


_HASH_NAMES = {"perceptual": "pHash + dHash", "levelled": "pHash + dHash of the levelled image",
               "mirrored": "pHash + dHash of one image against the other's mirror image"}


def _family_tests(distance: _Distance, params: DuplicatesParams) -> tuple[int, float, float]:
    """How many methods of ``distance``'s family look at a pair, and the global and local z each look must reach:
    each look must be as improbable as one look would be alone (Bonferroni on the tests' normal tails)."""
    looks = distance.looks
    return looks, bonferroni_z(params.global_min_z, looks), bonferroni_z(params.local_min_z, looks)


@dataclass(frozen=True)
class _Distance:
    """One near method's distance over ``count`` distinct contents, before its null is fitted: the contents it
    can judge (``where``), the distance between (left, right) content positions, an explicit override of its
    global test, the method's run.json note, which it fills as it is built, and how many methods of its family
    (``_FAMILY``) run and look at each pair."""

    name: str
    where: np.ndarray
    count: int
    measure: Callable[[np.ndarray, np.ndarray], np.ndarray]
    fixed_max: float | None
    note: dict[str, Any]
    looks: int = 1


@dataclass(frozen=True)
class _Found:
    """A method and the candidate pairs its search found ((m, 2) content positions, ``i < j``)."""

    method: _Method
    pairs: np.ndarray


@dataclass(frozen=True)
class _Settings:
    """What every method's search reads: the check's params, neighbours searched per image (``[evidence]
    neighbours``), the ``[search]`` settings, and the scan's search log (run.json "searches")."""

    params: DuplicatesParams
    top_k: int
    search: SearchParams
    log: SearchLog


def _new_method(
    distance: _Distance, fitted: NeighbourNull, reference: np.ndarray, params: DuplicatesParams,
    references: Callable[[np.ndarray], np.ndarray] | None = None,
) -> _Method:
    """The method judging ``distance.where`` with ``fitted``'s null and ``reference`` (per content, NaN where not
    known yet), its derived thresholds recorded in its note (run.json)."""
    looks, global_min_z, local_min_z = _family_tests(distance, params)
    has = np.zeros(distance.count, dtype=bool)
    has[distance.where] = True
    null = NeighbourNull(fitted.centre, fitted.scale, fitted.ratio_centre, fitted.ratio_scale, reference, global_min_z)
    fixed_max = distance.fixed_max
    distance.note.update(
        global_min_z=params.global_min_z, local_min_z=params.local_min_z,
        reference_neighbour=params.reference_neighbour, single_method_extra_z=params.single_method_extra_z,
        images=len(distance.where), family_looks=looks, global_min_z_used=global_min_z,
        local_min_z_used=local_min_z, median_nearest_distance=float(np.exp(null.centre)),
        max_distance=fixed_max if fixed_max is not None else null.max_distance(global_min_z),
        max_ratio=null.max_ratio(local_min_z))
    # One witness alone: its global test is also family-wise over the images it judges (Bonferroni over them),
    # so the expected number of unrelated images anywhere in the dataset whose nearest neighbour is that close
    # stays at the per-image level. The bar grows with the dataset, as the closest unrelated pair of a larger
    # dataset is closer.
    dataset_min_z = None if fixed_max is not None else bonferroni_z(params.global_min_z, looks * len(distance.where))
    distance.note["one_witness_global_min_z"] = dataset_min_z
    return _Method(distance.name, has, distance.measure, null, local_min_z, fixed_max, dataset_min_z, references)


def _from_neighbours(
    distance: _Distance, index: np.ndarray, values: np.ndarray, search: str, params: DuplicatesParams
) -> _Found:
    """The method whose null is fitted on a neighbour search of every content it judges (``index``: each
    ``where`` content's neighbours as positions in ``where``, -1 for none; ``values``: their distances), and
    the neighbour pairs that pass its global test."""
    values = np.where(index >= 0, values, np.nan)
    fitted = NeighbourNull.fit(values, params.reference_neighbour, _family_tests(distance, params)[1])
    reference = np.full(distance.count, np.nan)
    reference[distance.where] = fitted.reference
    distance.note["search"] = search
    method = _new_method(distance, fitted, reference, params)
    rows, columns = np.nonzero(method.close(values) & (index >= 0))
    ends = np.stack([distance.where[rows], distance.where[index[rows, columns]]], axis=1)
    return _Found(method, np.sort(ends, axis=1))


def _too_few(found: int, what: str, min_images: int) -> str | None:
    """Why a method cannot run with only ``found`` contents to judge (None: enough)."""
    if found >= min_images:
        return None
    return (f"needs at least {min_images} distinct {what} to learn how close unrelated images are (found {found}); "
            "only identical copies are reported")


def _joined_hashes(phash: pd.Series, dhash: pd.Series) -> pd.Series:
    """pHash and dHash hex side by side (None where either is missing)."""
    both = phash.notna() & dhash.notna()
    return pd.Series(np.where(both, phash.fillna("") + dhash.fillna(""), None), index=phash.index, dtype=object)


def _hamming(codes: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    codes = np.ascontiguousarray(codes)

    def distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.asarray(pair_bits(codes, left, right), dtype=np.float64) + 1.0

    return distance


def _mirrored_hamming(codes: np.ndarray, mirrors: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Hamming bits + 1 between one content's hash and the other's mirrored hash, the farther way round: a
    flipped copy is close both ways (the hashes are nearly equivariant under a flip), a chance look-alike
    seldom is."""
    both = np.ascontiguousarray(np.concatenate([codes, mirrors]))
    count = len(codes)

    def distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        bits = np.maximum(pair_bits(both, left, right + count), pair_bits(both, left + count, right))
        return np.asarray(bits, dtype=np.float64) + 1.0

    return distance


def _no_groups(ctx: CheckContext) -> pd.Series:
    """The ``duplicate_group`` column before filling: None (not Arrow-unfriendly pd.NA) for no group."""
    return pd.Series([None] * len(ctx.images), index=ctx.images.index, dtype=object)


def _pairs_within(group_sizes: pd.Series) -> int:
    return int((group_sizes * (group_sizes - 1) // 2).sum())


def _neighbourhoods_within(
    rows: np.ndarray, wanted: np.ndarray, reach: int, width: int, max_candidates: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each ``wanted`` row, its nearest other rows' distances (bits + 1, sorted, NaN past those within
    ``reach`` bits; ``width`` columns) from the pairs within ``reach`` (multi-index hashing), and whether that
    list is complete as far as it goes. All unresolved (False) when hashing would not pay at that reach."""
    known = np.full((len(wanted), width), np.nan)
    pairs, _ = hamming_pairs_within(rows, reach, max_candidates, _MAX_PAIRS_PER_IMAGE * len(rows))
    if pairs is None:
        return known, np.zeros(len(wanted), dtype=bool)
    position = np.full(len(rows), -1, dtype=np.int64)
    position[wanted] = np.arange(len(wanted))
    ends = np.concatenate([pairs, pairs[:, ::-1]])
    ends = ends[position[ends[:, 0]] >= 0]
    bits = pair_bits(rows, ends[:, 0], ends[:, 1]).astype(np.float64)
    owner = position[ends[:, 0]]
    order = np.lexsort((bits, owner))
    owner, bits = owner[order], bits[order]
    first = np.searchsorted(owner, owner, side="left")
    column = np.arange(len(owner)) - first
    keep = column < width
    known[owner[keep], column[keep]] = bits[keep] + 1.0
    return known, np.ones(len(wanted), dtype=bool)


@dataclass(frozen=True)
class _NeighbourPairs:
    """A neighbour search over the contents ``where`` (``index``: each row's neighbours' rows, -1 for none), read
    as content pairs a batch of rows at a time (1M x 20 pairs held at once, with their copies, took 1.3 GB)."""

    where: np.ndarray
    index: np.ndarray

    def batches(self) -> Iterator[np.ndarray]:
        """(m, 2) content pairs, each row with each of its neighbours, ``i < j`` within a pair."""
        for start in range(0, len(self.index), _PAIR_BATCH):
            index = self.index[start : start + _PAIR_BATCH]
            rows, columns = np.nonzero(index >= 0)
            yield np.sort(np.stack([self.where[start + rows], self.where[index[rows, columns]]], axis=1), axis=1)


def _pair_keys(pairs: np.ndarray, count: int) -> np.ndarray:
    return np.asarray(pairs[:, 0].astype(np.int64) * count + pairs[:, 1], dtype=np.int64)


@dataclass
class _HashCandidates:
    """A hash method above ``exact_max_images`` whose radius is too wide for multi-index hashing: its candidate
    pairs are the embedding's neighbours within the radius plus the pairs hashing found at a cheaper radius,
    and their recall is measured against the sampled images' exact hash neighbours within the radius."""

    method: _Method
    hashed: np.ndarray  # (m, 2) content pairs within the cheap hashing radius that pass the global test
    truth: np.ndarray  # (t, 2) content pairs: each sampled image's exact top_k neighbours within the radius
    record: dict[str, Any]  # for run.json "searches"
    note: dict[str, Any]  # the method's run.json note
    seconds: float

    @classmethod
    def of(cls, method: _Method, distance: _Distance, null: _HashSample, record: dict[str, Any], started: float,
           params: DuplicatesParams) -> _HashCandidates:
        """Hashing at the widest radius whose candidates cost at most ``hash_candidates_per_image`` per image
        (copies the embedding may not see: a brightened scan), and the sampled pairs within the full radius."""
        count, where, note = len(null.rows), distance.where, distance.note
        budget = min(params.hash_candidates_per_image * count, int(count * (count - 1) // 2 * _MIH_MAX_SHARE))
        cheap, cheap_candidates = hamming_reach(null.rows, null.radius - 1, budget)
        hashed = None
        if cheap >= 0:
            hashed, _ = hamming_pairs_within(null.rows, cheap, budget, _MAX_PAIRS_PER_IMAGE * count)
        hashed_pairs = np.zeros((0, 2), dtype=np.int64) if hashed is None else np.sort(where[hashed], axis=1)
        if len(hashed_pairs):
            hashed_pairs = hashed_pairs[method.close(method.distance(hashed_pairs[:, 0], hashed_pairs[:, 1]))]
        record.update(method="embedding neighbours + multi-index hashing", hashing_radius=cheap,
                      hashing_candidates=cheap_candidates, hashing_pairs=len(hashed_pairs))
        note.update(search=record["method"], hashing_radius=cheap, pairs_within_hashing_radius=len(hashed_pairs))
        sampled = null.sampled
        within = (sampled.index >= 0) & (sampled.value <= null.radius)
        rows_of, columns = np.nonzero(within)
        truth = np.sort(np.stack([where[null.sample[rows_of]], where[sampled.index[rows_of, columns]]], axis=1), axis=1)
        return cls(method, hashed_pairs, np.unique(truth, axis=0), record, note, time.perf_counter() - started)

    def complete(self, neighbours: _NeighbourPairs | None) -> _Found:
        """The candidate pairs: embedding neighbour pairs the method judges and whose hash distance passes its
        global test, with the pairs hashing found."""
        started = time.perf_counter()
        method = self.method
        close = [self.hashed]
        for batch in neighbours.batches() if neighbours is not None else ():
            judged = batch[method.has[batch[:, 0]] & method.has[batch[:, 1]]]
            close.append(judged[method.close(method.distance(judged[:, 0], judged[:, 1]))])
        found = sum(len(pairs) for pairs in close[1:])
        self.record["embedding_pairs"] = found
        self.note["pairs_from_embedding_neighbours"] = found
        self.seconds += time.perf_counter() - started
        return _Found(method, np.unique(np.concatenate(close), axis=0))

    def measure(self, judge: Callable[[np.ndarray, np.ndarray], np.ndarray], candidates: np.ndarray, count: int,
                min_recall: float, log: SearchLog) -> bool:
        """Recall of ``candidates`` (every method's pairs: what the check will judge) against the sampled pairs
        within the radius that the check accepts (a pair it would reject changes no finding if missed); records
        it, and returns whether it reaches ``min_recall``. Pairs within the radius that no test accepts are
        mostly unrelated images whose hashes happen to be close: their recall is recorded too, not required."""
        started = time.perf_counter()
        truth = self.truth
        evidence = judge(truth[:, 0], truth[:, 1]) if len(truth) else np.zeros(0)
        accepted = np.nan_to_num(evidence, nan=-1.0) >= 0
        inside = np.isin(_pair_keys(truth, count), _pair_keys(candidates, count))
        recall = float(inside[accepted].mean()) if accepted.any() else 1.0
        self.seconds += time.perf_counter() - started
        self.record.update(recall=recall, recall_pairs=int(accepted.sum()), min_recall=min_recall,
                           recall_within_radius=float(inside.mean()) if len(inside) else 1.0,
                           pairs_within_radius_sampled=len(truth), seconds=round(self.seconds, 3))
        self.note.update(recall=recall, recall_pairs=int(accepted.sum()))
        if recall < min_recall:
            self.record["fallback"] = (f"recall {recall:.3f} < {min_recall} on {int(accepted.sum())} accepted sampled "
                                       "pairs: every image's hash neighbours searched exactly")
            self.note["candidate_search"] = self.record["fallback"]
        log.records.append(self.record)
        return recall >= min_recall


@dataclass(frozen=True)
class _Hashes:
    """A hash method's codes (pHash + dHash, 128 bits, one row per content), for the mirrored method each
    content's mirrored codes too, and its distance over them."""

    distance: _Distance
    codes: np.ndarray
    mirrors: np.ndarray | None = None


def _hex_rows(hashes: pd.Series, where: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 codes of the 32-digit hex hashes at ``where`` (zeros elsewhere)."""
    codes = np.zeros((len(hashes), 2 * _HASH_BITS // 8), dtype=np.uint8)
    if len(where):
        codes[where] = hex_codes(hashes.to_numpy()[where].tolist())
    return codes


def _hash_codes(
    name: str, hashes: pd.Series, params: DuplicatesParams, looks: int, mirrors: pd.Series | None = None
) -> tuple[_Hashes | None, dict[str, Any]]:
    """The hash method ``name`` over ``hashes`` (hex per content, None where missing), one of ``looks`` hash
    methods, and its run.json note; None when too few contents have informative hashes. With ``mirrors`` (each
    content's mirrored hash), the mirrored method: one content's hash against the other's mirror, over the
    contents that have both."""
    count = len(hashes)
    present = hashes.notna() if mirrors is None else hashes.notna() & mirrors.notna()
    where = np.flatnonzero(present.to_numpy())
    codes = _hex_rows(hashes, where)
    # The dHash half says how much structure there is: near-flat images carry no usable bits.
    ones = np.unpackbits(codes[where, _HASH_BITS // 8 :], axis=1).sum(axis=1)
    where = where[(ones >= params.min_hash_bits) & (ones <= _HASH_BITS - params.min_hash_bits)]
    note: dict[str, Any] = {"distance": f"{_HASH_NAMES[name]} Hamming bits (of 128), plus 1"}
    if (reason := _too_few(len(where), "images with informative hashes", params.min_images)) is not None:
        note["skipped"] = reason
        return None, note
    fixed = None if params.max_hash_distance == "auto" else params.max_hash_distance + 1.0
    if mirrors is None:
        return _Hashes(_Distance(name, where, count, _hamming(codes), fixed, note, looks), codes), note
    mirror_codes = _hex_rows(mirrors, where)
    measure = _mirrored_hamming(codes, mirror_codes)
    return _Hashes(_Distance(name, where, count, measure, fixed, note, looks), codes, mirror_codes), note


def _mirrored_hashes(hashes: _Hashes, perceptual: _Method, settings: _Settings) -> _Found:
    """The mirrored method, judged by the perceptual method's null and references: an unrelated image's mirror
    is just another unrelated image, so how close one's nearest unrelated hash lies is already known, from every
    image (a null of its own, fitted on mirrored neighbours alone, was unstable on small sets of symmetric
    drawings). Candidates: each content's nearest others by an exact search of its mirrored hash against the
    others' hashes, that pass the global test."""
    distance = hashes.distance
    assert hashes.mirrors is not None
    where = distance.where
    started = time.perf_counter()
    found = hamming_cross_neighbours(hashes.codes[where], hashes.mirrors[where], settings.top_k)
    settings.log.records.append({"search": "duplicates_mirrored", "vectors": len(where), "method": "exact",
                                 "seconds": round(time.perf_counter() - started, 3)})
    has = np.zeros(distance.count, dtype=bool)
    has[where] = True
    method = _Method("mirrored", has & perceptual.has, distance.measure, perceptual.null, perceptual.local_min_z,
                     perceptual.fixed_max, perceptual.dataset_min_z)
    rows, columns = np.nonzero(found.index >= 0)
    ends = np.sort(np.stack([where[rows], where[found.index[rows, columns]]], axis=1), axis=1)
    ends = ends[method.has[ends[:, 0]] & method.has[ends[:, 1]]]
    close = method.close(method.distance(ends[:, 0], ends[:, 1])) if len(ends) else np.zeros(0, dtype=bool)
    distance.note.update(search="exact", null="the perceptual method's", images=int(method.has.sum()),
                         family_looks=distance.looks, pairs_passing_global_test=int(close.sum()))
    return _Found(method, np.unique(ends[close], axis=0))


def _mirrored(reps: pd.DataFrame, params: DuplicatesParams) -> tuple[_Hashes | None, dict[str, Any]]:
    """The mirrored method's codes (a flipped copy, the most common augmentation, hashes like the original's
    mirror) and its run.json note; None when it cannot run: no mirror hashes (results of an older scan), too
    few images, or more than ``exact_max_images``, where the hashes are searched by radius and a flipped copy is
    left to an embedding that is itself mirror-invariant."""
    if "mirror_hash" not in reps or reps["mirror_hash"].isna().all():
        return None, {"skipped": "no mirror hashes in the images table (results of an older scan)"}
    hashed, note = _hash_codes("mirrored", _joined_hashes(reps["phash"], reps["dhash"]), params,
                               sum(family == "hashes" for family in _FAMILY.values()), reps["mirror_hash"])
    if hashed is not None and len(hashed.distance.where) > params.exact_max_images:
        note["skipped"] = f"more than exact_max_images ({params.exact_max_images}) images with hashes"
        return None, note
    return hashed, note


def _exact_hashes(hashes: _Hashes, settings: _Settings) -> _Found:
    """The hash method from every judged content's nearest hashes (exact up to ``exact_max_images``)."""
    distance, params = hashes.distance, settings.params
    found = hamming_neighbours(hashes.codes[distance.where], settings.top_k, params.exact_max_images, params.ann_nprobe,
                               settings.search, settings.log, f"duplicates_{distance.name}")
    return _from_neighbours(distance, found.index, found.value + 1.0, found.search, params)


@dataclass
class _HashReferences:
    """Reference distances (``_Method.references``) of the contents a hash null fitted on a sample has none for
    yet, from each content's exact nearest hashes.

    Half the images have their reference neighbour within the sampled images' median reference distance
    (``reach``): their neighbourhoods come from the pairs within it (multi-index hashing), the rest by brute
    force. Hashing is tried once, on the first and largest batch (every candidate pair's ends that pass the
    global test); the few contents later pairs add are brute-forced (hashing all N codes again would cost seconds
    for each). Both give the same references (``_neighbourhoods_within`` keeps only complete lists).
    """

    rows: np.ndarray  # the judged contents' codes
    slot: np.ndarray  # content position -> its row in ``rows``
    reach: int
    max_distance: float  # the global test's bound: neighbours this close are skipped as copies
    fitted: NeighbourNull
    top_k: int
    reference_neighbour: int
    note: dict[str, Any]
    hashed: bool = False  # whether hashing at ``reach`` has been tried

    def __call__(self, contents: np.ndarray) -> np.ndarray:
        wanted = self.slot[contents]
        if self.hashed:
            known, resolved = np.full((len(wanted), self.top_k), np.nan), np.zeros(len(wanted), dtype=bool)
        else:
            all_pairs = len(self.rows) * (len(self.rows) - 1) // 2
            known, resolved = _neighbourhoods_within(self.rows, wanted, self.reach, self.top_k,
                                                     int(all_pairs * _MIH_MAX_SHARE))
            self.hashed = True
        rank = np.minimum(self.reference_neighbour - 1 + (known <= self.max_distance).sum(axis=1), self.top_k - 1)
        resolved &= rank < np.isfinite(known).sum(axis=1)
        result = np.empty(len(wanted))
        result[resolved] = self.fitted.references(known[resolved], self.reference_neighbour)
        if (~resolved).any():
            found = hamming_neighbours_of(self.rows, wanted[~resolved], self.top_k)
            result[~resolved] = self.fitted.references(np.where(found.index >= 0, found.value + 1.0, np.nan),
                                                       self.reference_neighbour)
        self.note["references_by_hashing"] = self.note.get("references_by_hashing", 0) + int(resolved.sum())
        return result


@dataclass(frozen=True)
class _HashSample:
    """A hash method's null fitted on a content-chosen sample: the judged contents' codes (``rows``), the sample
    (rows), each sampled row's exact nearest hashes, the null and the radius (bits) its global test allows."""

    rows: np.ndarray
    sample: np.ndarray
    sampled: Neighbours
    fitted: NeighbourNull
    max_distance: float
    radius: int

    @classmethod
    def of(cls, hashes: _Hashes, settings: _Settings) -> _HashSample:
        params = settings.params
        global_min_z = _family_tests(hashes.distance, params)[1]
        rows = np.ascontiguousarray(hashes.codes[hashes.distance.where])
        sample = content_sample(rows, params.hash_null_sample, 0)
        sampled = hamming_neighbours_of(rows, sample, settings.top_k)
        fitted = NeighbourNull.fit(np.where(sampled.index >= 0, sampled.value + 1.0, np.nan),
                                   params.reference_neighbour, global_min_z)
        fixed_max = hashes.distance.fixed_max
        max_distance = fixed_max if fixed_max is not None else fitted.max_distance(global_min_z)
        return cls(rows, sample, sampled, fitted, max_distance, int(np.floor(max_distance - 1.0 + 1e-9)))

    def references(self, hashes: _Hashes, settings: _Settings) -> _HashReferences:
        slot = np.full(len(hashes.codes), -1, dtype=np.int64)
        slot[hashes.distance.where] = np.arange(len(self.rows))
        sampled_reference = np.exp(self.fitted.reference[np.isfinite(self.fitted.reference)]) - 1.0
        reach = max(self.radius, int(np.quantile(sampled_reference, 0.5))) if len(sampled_reference) else self.radius
        return _HashReferences(self.rows, slot, reach, self.max_distance, self.fitted, settings.top_k,
                               settings.params.reference_neighbour, hashes.distance.note)


def _hash_pairs(hashes: _Hashes, settings: _Settings) -> _Found | _HashCandidates:
    """Above ``exact_max_images``: the hash method without a k-NN search of every image. The null is fitted
    on the exact neighbours of a content-chosen sample; its global test bounds the distance a candidate pair
    can have (radius r bits), and multi-index hashing finds every pair within r exactly; an image judged
    later gets its own exact neighbourhood (its reference distance) when a candidate pair needs it.
    When the radius leaves too many candidates (random-looking hashes: photos' pHash + dHash are nearly so)
    it returns the pending candidate search (``_HashCandidates``): the embedding's neighbours, and hashing
    at the widest radius that is cheap, whose recall is measured once every method exists."""
    started = time.perf_counter()
    distance = hashes.distance
    null = _HashSample.of(hashes, settings)
    count = len(null.rows)
    all_pairs = count * (count - 1) // 2
    pairs, candidates = hamming_pairs_within(null.rows, max(null.radius, 0), int(all_pairs * _MIH_MAX_SHARE),
                                             _MAX_PAIRS_PER_IMAGE * count)
    record: dict[str, Any] = {"search": f"duplicates_{distance.name}", "vectors": count,
                              "method": "multi-index hashing", "radius": null.radius, "candidates": candidates,
                              "null_sample": len(null.sample)}
    method = _new_method(distance, null.fitted, np.full(len(hashes.codes), np.nan), settings.params,
                         null.references(hashes, settings))
    distance.note.update(radius=null.radius, candidates=candidates, null_sample=len(null.sample))
    if pairs is None:
        return _HashCandidates.of(method, distance, null, record, started, settings.params)
    ends = np.sort(distance.where[pairs], axis=1)
    distances = method.distance(ends[:, 0], ends[:, 1]) if len(ends) else np.zeros(0)
    record.update(pairs=len(pairs), seconds=round(time.perf_counter() - started, 3))
    settings.log.records.append(record)
    distance.note.update(search="multi-index hashing", pairs_within_radius=len(pairs))
    return _Found(method, ends[method.close(distances)])


def _chord(unit: np.ndarray, slot: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Chord distance between contents (``slot``: content position -> row of the unit vectors ``unit``)."""

    def distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return chord_distance(np.einsum("ij,ij->i", unit[slot[left]], unit[slot[right]]))

    return distance


def _semantic(
    ctx: CheckContext, reps: pd.DataFrame, settings: _Settings
) -> tuple[dict[str, Any], _Found | None, np.ndarray | None]:
    """The semantic method (embedding cosine, judged as the chord distance between unit vectors): its run.json
    note, the method with its candidate pairs (None when it cannot run), and the neighbours it read (each
    embedded content's, as positions among them; None when not searched)."""
    params = settings.params
    embedding_rows = reps["embedding_row"].to_numpy()
    where = np.flatnonzero(embedding_rows >= 0)
    note: dict[str, Any] = {"encoder": ctx.encoder.name, "distance": "chord sqrt(2 - 2 cos)"}
    if not params.semantic:
        note["skipped"] = "disabled in config"
    elif not ctx.encoder.trusted:
        note["skipped"] = "the CLIP model is untrained (random weights): nearness in its space means nothing"
    elif (reason := _too_few(len(where), "embedded images", params.min_images)) is not None:
        note["skipped"] = reason
    if "skipped" in note:
        return note, None, None
    # One unit copy of the embedded contents; ``slot`` maps a content position to its row.
    unit = unit_rows(ctx.embeddings, embedding_rows[where])
    slot = np.full(len(reps), -1, dtype=np.int64)
    slot[where] = np.arange(len(where))
    found = ctx.evidence.neighbours(embedding_rows[where], settings.top_k, "duplicates_semantic")
    fixed = None if params.min_cosine == "auto" else float(chord_distance(np.array(params.min_cosine)))
    distance = _Distance("semantic", where, len(reps), _chord(unit, slot), fixed, note)
    semantic = _from_neighbours(distance, found.index, chord_distance(found.value), found.search, params)
    note["min_cosine"] = 1.0 - note["max_distance"] ** 2 / 2.0
    return note, semantic, found.index


class DuplicatesCheck(Check[DuplicatesParams]):
    name = "duplicates"
    produces = frozenset({"split_leakage", "exact_duplicate", "near_duplicate"})
    description = "exact, re-encoded, resized and near-identical copies, and copies shared between splits"
    Params = DuplicatesParams
    kinds = {
        "split_leakage": FindingKind(
            "Leakage between splits",
            "Copies of one image (identical or near) in more than one split; each group is mutually close.",
            layout="groups", order=4,
        ),
        "exact_duplicate": FindingKind(
            "Exact duplicates",
            "Byte-identical or pixel-identical copies within a split.",
            layout="groups", order=5,
        ),
        "near_duplicate": FindingKind(
            "Near duplicates",
            "Re-encoded, resized, cropped, mirrored or re-lit copies that stand out from the dataset's look-alikes.",
            layout="groups", order=6,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        rows = ctx.images[ctx.images["readable"] & ctx.images["pixel_sha256"].notna()].reset_index()
        pairs = dict.fromkeys(METHODS, 0)
        byte_pairs = _pairs_within(rows.groupby("sha256", sort=False).size())
        pairs["sha256"] = byte_pairs
        pairs["pixels"] = _pairs_within(rows.groupby("pixel_sha256", sort=False).size()) - byte_pairs

        # Near-duplicate methods judge distinct contents: one representative per pixel content.
        reps = rows.drop_duplicates("pixel_sha256").reset_index(drop=True)
        content_of_row = rows["pixel_sha256"].map({c: n for n, c in enumerate(reps["pixel_sha256"])}).to_numpy()
        methods, notes, candidates = self._methods(ctx, reps)
        clusters, accepted, dropped = self._complete_linkage(len(reps), candidates, methods)
        for method in methods:
            pairs[method.name] = accepted[method.name]
        findings, group_column, group_counts, conflicts = self._findings(ctx, rows, content_of_row, clusters,
                                                                         methods)
        for method in methods:
            if method.references is not None:
                notes[method.name]["references_searched"] = method.searched
        summary = DuplicatesSummary(
            pairs=pairs,
            groups=group_counts,
            images_in_groups=len(findings),
            label_conflict_groups=conflicts,
            # Accepted pairs left out of every group because their groups were not mutually close.
            chain_links_dropped=dropped,
            **notes,
        )
        return CheckResult(findings, columns={"duplicate_group": group_column}, summary=summary)

    def _methods(self, ctx: CheckContext, reps: pd.DataFrame) -> tuple[list[_Method], dict[str, Any], np.ndarray]:
        """The perceptual and semantic methods that can run, their run.json notes, and candidate pairs
        ((m, 2) content positions, ``i < j``): neighbours either search found that pass its global test."""
        settings = _Settings(self.params, ctx.evidence.settings.neighbours, ctx.config.search, ctx.searches)
        notes: dict[str, Any] = {}
        found: dict[str, _Found] = {}
        pending: list[_HashCandidates] = []
        hashes: dict[str, _Hashes] = {}
        # Perceptual: pHash and dHash side by side, 128 bits; +1 so identical hashes have a log distance.
        # Levelled: the same two hashes of each image levelled to its own tones (``images.levelled_hash``),
        # which a brightened copy keeps; judged as its own distance, in the same (hashes) family.
        mirrored, notes["mirrored"] = _mirrored(reps, self.params)
        looks = 2 + (mirrored is not None)
        for name, column in (("perceptual", _joined_hashes(reps["phash"], reps["dhash"])),
                             ("levelled", reps["levelled_hash"])):
            hashed, notes[name] = _hash_codes(name, column, self.params, looks)
            if hashed is None:
                continue
            hashes[name] = hashed
            exact = len(hashed.distance.where) <= self.params.exact_max_images
            searched = _exact_hashes(hashed, settings) if exact else _hash_pairs(hashed, settings)
            if isinstance(searched, _HashCandidates):
                pending.append(searched)
            else:
                found[name] = searched
            notes[name]["max_bits"] = int(np.floor(notes[name]["max_distance"] - 1.0))

        if mirrored is not None and "perceptual" in found:
            found["mirrored"] = _mirrored_hashes(mirrored, found["perceptual"].method, settings)
        elif mirrored is not None:
            notes["mirrored"]["skipped"] = "the perceptual method, whose null it shares, did not run"
        notes["semantic"], semantic, neighbour_index = _semantic(ctx, reps, settings)
        if semantic is not None:
            found["semantic"] = semantic
        if pending:
            neighbours = self._embedding_neighbour_pairs(ctx, reps, neighbour_index, settings.top_k)
            found = self._with_pending(found, pending, hashes, neighbours, settings)

        ordered = [found[name].method for name in NEAR_METHODS if name in found]
        pairs = [found[name].pairs for name in NEAR_METHODS if name in found]
        candidates = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), np.int64)
        return ordered, notes, candidates.astype(np.int64)

    def _with_pending(
        self, found: dict[str, _Found], pending: list[_HashCandidates], hashes: dict[str, _Hashes],
        neighbours: _NeighbourPairs | None, settings: _Settings,
    ) -> dict[str, _Found]:
        """``found`` with the pending hash methods' candidates, once every method exists: each one's recall is
        measured on its sample, and one below ``[search] min_recall`` searches every image's hashes exactly."""
        found = dict(found)
        for waiting in pending:
            found[waiting.method.name] = waiting.complete(neighbours)
        for waiting in pending:
            union = np.concatenate([searched.pairs for searched in found.values()])
            judged = [searched.method for searched in found.values()]
            judge = partial(self._pair_evidence, judged)
            if waiting.measure(judge, union, len(waiting.method.has), settings.search.min_recall, settings.log):
                continue
            name = waiting.method.name
            found[name] = _exact_hashes(hashes[name], settings)
            waiting.note["max_bits"] = int(np.floor(waiting.note["max_distance"] - 1.0))
        return found

    @staticmethod
    def _embedding_neighbour_pairs(
        ctx: CheckContext, reps: pd.DataFrame, index: np.ndarray | None, top_k: int
    ) -> _NeighbourPairs | None:
        """Each embedded content's ``top_k`` nearest contents by cosine (the search the k-NN vote shares), as
        content pairs: candidates for the hash methods. ``index``: that search's neighbours when the semantic
        method read it; when it did not run (disabled, or an untrained model: its neighbours are still
        candidates, and their recall is measured), read here."""
        embedding_rows = reps["embedding_row"].to_numpy()
        where = np.flatnonzero(embedding_rows >= 0)
        if index is not None:
            return _NeighbourPairs(where, index)
        if len(where) < 2:
            return None
        found = ctx.evidence.neighbours(embedding_rows[where], top_k, "duplicates_semantic")
        return _NeighbourPairs(where, found.index)

    def _pair_evidence(self, methods: list[_Method], left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The evidence per pair alone (``_judge``)."""
        return self._judge(methods, left, right)[0]

    def _judge(self, methods: list[_Method], left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                        dict[str, np.ndarray]]:
        """Per pair: the evidence (>= 0: a copy; NaN: no method could judge), how many families of methods
        pass on their own (the evidence tier), and each method's distance. The evidence is the best method's
        margin over its tests; unless two families agree, over its one-witness tests (``_Method.alone``)."""
        params = self.params
        evidence = np.full(len(left), np.nan)
        tier = np.zeros(len(left), dtype=np.int64)
        distances: dict[str, np.ndarray] = {}
        alone = np.full(len(left), np.nan)
        passes: dict[str, np.ndarray] = {}
        for method in methods:
            distances[method.name], margin = method.evidence(left, right)
            evidence = np.fmax(evidence, margin)
            alone = np.fmax(alone, method.alone(distances[method.name], margin, params.single_method_extra_z))
            family = _FAMILY[method.name]
            passes[family] = passes.get(family, np.zeros(len(left), dtype=bool)) | (
                np.nan_to_num(margin, nan=-1.0) >= 0)
        for passed in passes.values():
            tier += passed
        return np.where(tier >= 2, evidence, alone), tier, distances

    def _complete_linkage(
        self, count: int, candidates: np.ndarray, methods: list[_Method]
    ) -> tuple[list[list[int]], dict[str, int], int]:
        """Mutually close groups of contents: accepted pairs merge strongest first, and two groups join
        only if every cross pair is accepted. Returns the groups (2+), accepted pairs each method vouches
        for, and the accepted pairs that ended up in different groups (links of a chain)."""
        accepted_counts = {method.name: 0 for method in methods}
        if not len(candidates) or not methods:
            return [], accepted_counts, 0
        pairs = candidates
        evidence, _, _ = self._judge(methods, pairs[:, 0], pairs[:, 1])
        keep = np.nan_to_num(evidence, nan=-1.0) >= 0
        for method in methods:
            margin = method.evidence(pairs[:, 0], pairs[:, 1])[1]
            accepted_counts[method.name] = int((keep & (np.nan_to_num(margin, nan=-1.0) >= 0)).sum())
        pairs, evidence = pairs[keep], evidence[keep]
        group_of = np.arange(count)
        members: dict[int, list[int]] = {}
        dropped = 0
        for a, b in pairs[np.argsort(-evidence, kind="stable")].tolist():
            group_a, group_b = int(group_of[a]), int(group_of[b])
            if group_a == group_b:
                continue
            side_a, side_b = members.get(group_a, [a]), members.get(group_b, [b])
            cross, _, _ = self._judge(methods, np.repeat(side_a, len(side_b)), np.tile(side_b, len(side_a)))
            if not (np.nan_to_num(cross, nan=-1.0) >= 0).all():
                dropped += 1
                continue
            members[group_a] = side_a + side_b
            members.pop(group_b, None)
            group_of[side_b] = group_a
        return sorted((sorted(m) for m in members.values()), key=lambda m: m[0]), accepted_counts, dropped

    def _findings(
        self,
        ctx: CheckContext,
        rows: pd.DataFrame,
        content_of_row: np.ndarray,
        clusters: list[list[int]],
        methods: list[_Method],
    ) -> tuple[list[Finding], pd.Series, dict[str, int], int]:
        """One finding per member of every group of two or more files; group ids follow file order."""
        groups = _row_groups(content_of_row, clusters)
        grouped = sorted(m for members in groups for m in members)
        columns = rows[["index", "path", "label", "split", "sha256"]].iloc[grouped].to_dict("records")
        records = {m: {key: plain(value) for key, value in record.items()}
                   for m, record in zip(grouped, columns, strict=True)}
        group_column = _no_groups(ctx)
        counts = {"split_leakage": 0, "exact_duplicate": 0, "near_duplicate": 0}
        conflicts = 0
        findings: list[Finding] = []
        for group_id, members in enumerate(groups):
            contents = sorted(set(content_of_row[members].tolist()))
            partner, tier = self._partners(methods, contents)
            group = _Group(group_id, members, records, content_of_row, partner, tier)
            counts[group.kind] += 1
            conflicts += len(group.labels) >= 2
            for position in members:
                group_column.at[records[position]["index"]] = group_id
                findings.append(group.finding(position))
        return findings, group_column, counts, conflicts

    def _partners(
        self, methods: list[_Method], contents: list[int]
    ) -> tuple[dict[int, tuple[int, int, dict[str, Any]]], int]:
        """Each content's strongest partner among the group's other contents (partner, tier, details), and
        the group's evidence tier: the weakest over all its pairs (identical when it has one content)."""
        if len(contents) < 2:
            return {}, _TIER_IDENTICAL
        left = np.repeat(contents, len(contents))
        right = np.tile(contents, len(contents))
        off = left != right
        left, right = left[off], right[off]
        evidence, tier, distances = self._judge(methods, left, right)
        best: dict[int, tuple[int, int, dict[str, Any]]] = {}
        for n in np.argsort(-np.nan_to_num(evidence, nan=-np.inf), kind="stable").tolist():
            me = int(left[n])
            if me in best:
                continue
            details: dict[str, Any] = {"evidence": _TIER_NAMES[max(int(tier[n]), 1)],
                                       "margin_z": float(evidence[n])}
            used = [m.name for m in methods if np.nan_to_num(m.evidence(left[n:n + 1], right[n:n + 1])[1],
                                                             nan=-1.0)[0] >= 0]
            semantic = distances.get("semantic")
            if semantic is not None and np.isfinite(semantic[n]):
                details["cosine"] = float(1.0 - semantic[n] ** 2 / 2.0)
            perceptual = distances.get("perceptual")
            if perceptual is not None and np.isfinite(perceptual[n]):
                details["hash_distance"] = int(perceptual[n] - 1.0)
            details["methods"] = sorted(used)
            best[me] = (int(right[n]), int(tier[n]), details)
        return best, int(tier.min())


def _row_groups(content_of_row: np.ndarray, clusters: list[list[int]]) -> list[list[int]]:
    """Row positions of every group of two or more files, in file order: the rows of each cluster of contents,
    and the rows sharing one content that no cluster holds."""
    cluster_of_content = {content: n for n, contents in enumerate(clusters) for content in contents}
    rows_by_group: dict[tuple[str, int], list[int]] = defaultdict(list)
    for position, content in enumerate(content_of_row.tolist()):
        key = ("cluster", cluster_of_content[content]) if content in cluster_of_content else ("same", content)
        rows_by_group[key].append(position)
    return sorted((m for m in rows_by_group.values() if len(m) >= 2), key=lambda m: m[0])


@dataclass
class _Group:
    """One reported group (``members``: row positions) with its contents' strongest partners and evidence tier
    (``DuplicatesCheck._partners``); ``records`` holds every grouped row's path, label, split and sha256."""

    group_id: int
    members: list[int]
    records: dict[int, dict[str, Any]]
    content_of_row: np.ndarray
    partner: dict[int, tuple[int, int, dict[str, Any]]]
    tier: int

    @cached_property
    def splits(self) -> list[str]:
        return sorted({str(self.records[m]["split"]) for m in self.members if self.records[m]["split"] is not None})

    @cached_property
    def labels(self) -> list[str]:
        return sorted({str(self.records[m]["label"]) for m in self.members if self.records[m]["label"] is not None})

    @property
    def kind(self) -> str:
        """Leakage when the group spans splits, else an exact duplicate when all members are pixel-identical."""
        if len(self.splits) >= 2:
            return "split_leakage"
        return "exact_duplicate" if len(set(self.content_of_row[self.members].tolist())) == 1 else "near_duplicate"

    @property
    def severity(self) -> Severity:
        strong = self.tier >= 2
        if self.kind == "split_leakage":
            return Severity.ERROR if strong else Severity.WARNING
        return Severity.WARNING if self.kind == "exact_duplicate" or strong else Severity.INFO

    def finding(self, position: int) -> Finding:
        row = self.records[position]
        other, score, used, details = self._nearest(position)
        other_path = str(self.records[other]["path"])
        how = details.pop("how", None)
        how = _IDENTICAL.get(tuple(used)) or f"{how}, {'+'.join(used)}"
        kind, size = self.kind, len(self.members)
        where = f", splits {', '.join(self.splits)}" if kind == "split_leakage" else ""
        details.update({
            "methods": used,
            "group_evidence": _TIER_NAMES[self.tier],
            "group_size": size,
            "splits": self.splits,
            "labels": self.labels,
            "labels_differ": len(self.labels) >= 2,
        })
        return Finding(
            check=kind,
            severity=self.severity,
            message=f"{kind.replace('_', ' ')}: copy of {other_path} ({how}; group of {size}{where})",
            path=str(row["path"]),
            label=row["label"],
            split=row["split"],
            score=score,
            group_id=self.group_id,
            other_path=other_path,
            sha256=row["sha256"],
            classes=tuple(self.labels),
            details=details,
        )

    def _nearest(self, position: int) -> tuple[int, float, list[str], dict[str, Any]]:
        """The member nearest ``position``: an identical copy if any, else its strongest partner content.
        Returns (row position, score, methods, details); identical copies score 1, others by evidence."""
        records, content_of_row = self.records, self.content_of_row
        content = content_of_row[position]
        same = [m for m in self.members if m != position and content_of_row[m] == content]
        if same:
            same_bytes = [m for m in same if records[m]["sha256"] == records[position]["sha256"]]
            method = "sha256" if same_bytes else "pixels"
            return (same_bytes or same)[0], 1.0, [method], {"similarity": 1.0, "evidence": "identical"}
        other_content, tier, details = self.partner[int(content)]
        other = next(m for m in self.members if content_of_row[m] == other_content)
        margin = max(details["margin_z"], 0.0)
        base = 0.75 if tier >= 2 else 0.5
        score = base + 0.24 * (1.0 - float(np.exp(-margin)))
        details = dict(details)
        similarity = details.get("cosine", 1.0 - details.get("hash_distance", 0) / (2 * _HASH_BITS))
        details["similarity"] = similarity
        details["how"] = f"similarity {similarity:.3f}, {details['evidence']}"
        return other, score, details.pop("methods"), details
