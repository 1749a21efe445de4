"""Exact, perceptual and semantic duplicates, grouped; groups that span splits are train/test leakage.

Identical files (sha256) and identical decoded pixels (a re-saved file) are copies by definition. For
every other pair the check asks the data, not a fixed number, whether the two are closer than
unrelated images get. Three distances are judged the same way: embedding cosine (as the chord distance
``sqrt(2 - 2 cos)``), perceptual hashes (pHash + dHash Hamming bits) and the same hashes of each image
levelled to its own tones (``images.levelled_hash``: a brightened copy whose light tones clipped keeps
them). The two hash distances are one family of evidence: each is tested at Bonferroni-corrected z
(two looks at the same pixels), and a pair they alone vouch for counts as one witness; a pair one witness
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
is the label-error check's job (``CheckContext.exact_copy_groups``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.checks.base import Check, CheckContext, CheckResult, plain
from auditor.core.config import ConfigModel
from auditor.evidence.probabilities import distinct_neighbours
from auditor.evidence.robust import bonferroni_z
from auditor.evidence.similarity import (
    NeighbourNull,
    Neighbours,
    SearchLog,
    chord_distance,
    content_sample,
    hamming_neighbours,
    hamming_neighbours_of,
    hamming_pairs_within,
    hamming_reach,
    hex_codes,
    pair_bits,
    unit_rows,
)
from auditor.results.findings import Finding, FindingKind, Severity

_HASH_BITS = 64
# Pairs whose distances are computed at once (bounds the gathered vectors' memory).
_PAIR_BATCH = 1 << 16
# Multi-index hashing verifies a candidate pair in ~26 ns here, brute force a pair in ~1.2 ns: beyond this
# share of all pairs as candidates, hashing would save too little and the usual search runs instead.
_MIH_MAX_SHARE = 1 / 20
# Pairs within the radius kept in memory, per image (16 bytes a pair, a few copies while they are merged):
# beyond, the search declines rather than hold them (1M look-alike hashes at a wide reach filled 23 GB).
_MAX_PAIRS_PER_IMAGE = 20
METHODS = ("sha256", "pixels", "perceptual", "levelled", "semantic")
NEAR_METHODS = ("perceptual", "levelled", "semantic")
# Which independent kind of evidence each near method is: the two hashes both read pixels, so a pair
# they alone agree on is one witness, not two.
_FAMILY = {"perceptual": "hashes", "levelled": "hashes", "semantic": "embedding"}
_IDENTICAL: dict[tuple[str, ...], str] = {("sha256",): "identical bytes", ("pixels",): "identical pixels"}
# Evidence tiers: how many independent families (hashes, embedding) vouch for a pair (identical content
# outranks both).
_TIER_IDENTICAL = 3
_TIER_NAMES = {_TIER_IDENTICAL: "identical", 2: "hash+embedding", 1: "one method"}


class DuplicatesParams(ConfigModel):
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
    # Neighbours searched per image (at least reference_neighbour + the largest copy group expected).
    top_k: int = Field(20, ge=2, le=1000)
    # Up to this many distinct images the perceptual-hash searches are exact; beyond it, multi-index hashing or
    # a faiss inverted-file index. The semantic method reads the embedding search it shares with the k-NN
    # vote (``CheckContext.image_neighbours``), which ``[search]`` governs.
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


_HASH_NAMES = {"perceptual": "pHash + dHash", "levelled": "pHash + dHash of the levelled image"}


def _family_tests(name: str, params: DuplicatesParams) -> tuple[int, float, float]:
    """How many methods of ``name``'s family look at a pair, and the global and local z each look must reach:
    each look must be as improbable as one look would be alone (Bonferroni on the tests' normal tails)."""
    looks = sum(family == _FAMILY[name] for family in _FAMILY.values())
    return looks, bonferroni_z(params.global_min_z, looks), bonferroni_z(params.local_min_z, looks)


def _new_method(
    name: str, where: np.ndarray, count: int, fitted: NeighbourNull, reference: np.ndarray,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray], fixed_max: float | None, params: DuplicatesParams,
    note: dict[str, Any], references: Callable[[np.ndarray], np.ndarray] | None = None,
) -> _Method:
    """The method over ``count`` contents judging those in ``where``, with ``fitted``'s null and ``reference``
    (per content, NaN where not known yet), its derived thresholds recorded in ``note`` (run.json)."""
    looks, global_min_z, local_min_z = _family_tests(name, params)
    has = np.zeros(count, dtype=bool)
    has[where] = True
    null = NeighbourNull(fitted.centre, fitted.scale, fitted.ratio_centre, fitted.ratio_scale, reference, global_min_z)
    note.update(global_min_z=params.global_min_z, local_min_z=params.local_min_z,
                reference_neighbour=params.reference_neighbour, single_method_extra_z=params.single_method_extra_z,
                images=len(where), family_looks=looks, global_min_z_used=global_min_z, local_min_z_used=local_min_z,
                median_nearest_distance=float(np.exp(null.centre)),
                max_distance=fixed_max if fixed_max is not None else null.max_distance(global_min_z),
                max_ratio=null.max_ratio(local_min_z))
    # One witness alone: its global test is also family-wise over the images it judges (Bonferroni over them),
    # so the expected number of unrelated images anywhere in the dataset whose nearest neighbour is that close
    # stays at the per-image level. The bar grows with the dataset, as the closest unrelated pair of a larger
    # dataset is closer.
    dataset_min_z = None if fixed_max is not None else bonferroni_z(params.global_min_z, looks * len(where))
    note["one_witness_global_min_z"] = dataset_min_z
    return _Method(name, has, distance, null, local_min_z, fixed_max, dataset_min_z, references)


def _joined_hashes(phash: pd.Series, dhash: pd.Series) -> pd.Series:
    """pHash and dHash hex side by side (None where either is missing)."""
    both = phash.notna() & dhash.notna()
    return pd.Series(np.where(both, phash.fillna("") + dhash.fillna(""), None), index=phash.index, dtype=object)


def _hamming(codes: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    codes = np.ascontiguousarray(codes)

    def distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.asarray(pair_bits(codes, left, right), dtype=np.float64) + 1.0

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

    name: str
    hashed: np.ndarray  # (m, 2) content pairs within the cheap hashing radius that pass the global test
    truth: np.ndarray  # (t, 2) content pairs: each sampled image's exact top_k neighbours within the radius
    record: dict[str, Any]  # for run.json "searches"
    note: dict[str, Any]  # the method's run.json note
    seconds: float

    def complete(self, method: _Method, neighbours: _NeighbourPairs | None) -> np.ndarray:
        """The candidate pairs: embedding neighbour pairs the method judges and whose hash distance passes its
        global test, with the pairs hashing found."""
        started = time.perf_counter()
        close = [self.hashed]
        for batch in neighbours.batches() if neighbours is not None else ():
            judged = batch[method.has[batch[:, 0]] & method.has[batch[:, 1]]]
            close.append(judged[method.close(method.distance(judged[:, 0], judged[:, 1]))])
        found = sum(len(pairs) for pairs in close[1:])
        self.record["embedding_pairs"] = found
        self.note["pairs_from_embedding_neighbours"] = found
        self.seconds += time.perf_counter() - started
        return np.unique(np.concatenate(close), axis=0)

    def measure(self, methods: list[_Method], judge: Callable[[np.ndarray, np.ndarray], np.ndarray],
                candidates: np.ndarray, count: int, min_recall: float, log: SearchLog) -> bool:
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


def _semantic_neighbours(ctx: CheckContext, rows: np.ndarray, top_k: int) -> Neighbours:
    """Each of the contents embedded at ``rows``'s ``top_k`` nearest others by cosine (contents with identical
    vectors first), read from the search the k-NN vote shares (``CheckContext.image_neighbours``), or from
    its own search when that one is too narrow (params other than the configured ones) or searches vectors
    no content here has (unreadable files with precomputed vectors)."""
    vector_of_row = np.full(len(ctx.embeddings), -1, dtype=np.int64)
    vector_of_row[ctx.embedded["embedding_row"].to_numpy()] = ctx.distinct_vector_of
    k = min(top_k, len(rows) - 1)
    if ctx.image_neighbours_width > k and ctx.covers(vector_of_row[rows]):
        found = ctx.image_neighbours
        position_of_row = np.full(len(ctx.embeddings), -1, dtype=np.int64)
        position_of_row[ctx.embedded["embedding_row"].to_numpy()] = found.position
        position = position_of_row[rows]
    else:
        found = distinct_neighbours(ctx.embeddings, rows, k + 1, ctx.config.search, ctx.searches,
                                    "duplicates_semantic")
        position = found.position
    index, value = found.of_members(position, k)
    return Neighbours(index, value, found.search)


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
            "Re-encoded, resized, cropped or re-lit copies that stand out from the dataset's look-alikes.",
            layout="groups", order=6,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        params = self.params
        rows = ctx.images[ctx.images["readable"] & ctx.images["pixel_sha256"].notna()].reset_index()
        summary: dict[str, Any] = {"pairs": dict.fromkeys(METHODS, 0)}
        byte_pairs = _pairs_within(rows.groupby("sha256", sort=False).size())
        summary["pairs"]["sha256"] = byte_pairs
        summary["pairs"]["pixels"] = _pairs_within(rows.groupby("pixel_sha256", sort=False).size()) - byte_pairs

        # Near-duplicate methods judge distinct contents: one representative per pixel content.
        reps = rows.drop_duplicates("pixel_sha256").reset_index(drop=True)
        content_of_row = rows["pixel_sha256"].map({c: n for n, c in enumerate(reps["pixel_sha256"])}).to_numpy()
        methods, notes, candidates = self._methods(ctx, reps, params)
        clusters, accepted, dropped = self._complete_linkage(len(reps), candidates, methods)
        for method in methods:
            summary["pairs"][method.name] = accepted[method.name]
        findings, group_column, group_counts, conflicts = self._findings(ctx, rows, content_of_row, clusters,
                                                                         methods)
        for method in methods:
            if method.references is not None:
                notes[method.name]["references_searched"] = method.searched
        summary.update(
            {
                "groups": group_counts,
                "images_in_groups": len(findings),
                "label_conflict_groups": conflicts,
                # Accepted pairs left out of every group because their groups were not mutually close.
                "chain_links_dropped": dropped,
                **notes,
            }
        )
        return CheckResult(findings, columns={"duplicate_group": group_column}, summary=summary)

    def _methods(
        self, ctx: CheckContext, reps: pd.DataFrame, params: DuplicatesParams
    ) -> tuple[list[_Method], dict[str, Any], np.ndarray]:
        """The perceptual and semantic methods that can run, their run.json notes, and candidate pairs
        ((m, 2) content positions, ``i < j``): neighbours either search found that pass its global test."""
        methods: dict[str, _Method] = {}
        notes: dict[str, Any] = {}
        found_pairs: dict[str, np.ndarray] = {}
        pending: list[_HashCandidates] = []
        count = len(reps)

        def too_few(found: int, what: str) -> str | None:
            if found >= params.min_images:
                return None
            return (f"needs at least {params.min_images} distinct {what} to learn how close unrelated images "
                    f"are (found {found}); only identical copies are reported")

        def add(name: str, where: np.ndarray, index: np.ndarray, distances: np.ndarray, search: str,
                distance: Callable[[np.ndarray, np.ndarray], np.ndarray], fixed_max: float | None,
                note: dict[str, Any]) -> None:
            distances = np.where(index >= 0, distances, np.nan)
            fitted = NeighbourNull.fit(distances, params.reference_neighbour, _family_tests(name, params)[1])
            reference = np.full(count, np.nan)
            reference[where] = fitted.reference
            note["search"] = search
            method = _new_method(name, where, count, fitted, reference, distance, fixed_max, params, note)
            methods[name] = method
            close = method.close(distances) & (index >= 0)
            rows, columns = np.nonzero(close)
            ends = np.stack([where[rows], where[index[rows, columns]]], axis=1)
            found_pairs[name] = np.sort(ends, axis=1)

        def exact_hashes(name: str, codes: np.ndarray, where: np.ndarray, fixed: float | None,
                         note: dict[str, Any]) -> None:
            found = hamming_neighbours(codes[where], params.top_k, params.exact_max_images, params.ann_nprobe,
                                       ctx.config.search, ctx.searches, f"duplicates_{name}")
            add(name, where, found.index, found.value + 1.0, found.search, _hamming(codes), fixed, note)

        # Perceptual: pHash and dHash side by side, 128 bits; +1 so identical hashes have a log distance.
        # Levelled: the same two hashes of each image levelled to its own tones (``images.levelled_hash``),
        # which a brightened copy keeps; judged as its own distance, in the same (hashes) family.
        joined = _joined_hashes(reps["phash"], reps["dhash"])
        hash_codes: dict[str, tuple[np.ndarray, np.ndarray, float | None]] = {}
        for name, hashes in (("perceptual", joined), ("levelled", reps["levelled_hash"])):
            hashed = hashes.notna().to_numpy()
            where = np.flatnonzero(hashed)
            codes = np.zeros((count, 2 * _HASH_BITS // 8), dtype=np.uint8)
            if len(where):
                codes[where] = hex_codes(hashes.to_numpy()[where].tolist())
            # The dHash half says how much structure there is: near-flat images carry no usable bits.
            ones = np.unpackbits(codes[where, _HASH_BITS // 8 :], axis=1).sum(axis=1)
            where = where[(ones >= params.min_hash_bits) & (ones <= _HASH_BITS - params.min_hash_bits)]
            note: dict[str, Any] = {"distance": f"{_HASH_NAMES[name]} Hamming bits (of 128), plus 1"}
            notes[name] = note
            if (reason := too_few(len(where), "images with informative hashes")) is not None:
                note["skipped"] = reason
                continue
            fixed = None if params.max_hash_distance == "auto" else params.max_hash_distance + 1.0
            hash_codes[name] = codes, where, fixed
            if len(where) <= params.exact_max_images:
                exact_hashes(name, codes, where, fixed, note)
            elif (waiting := self._hash_pairs(name, codes, where, fixed, params, ctx.searches, methods, found_pairs,
                                              note)) is not None:
                pending.append(waiting)
            note["max_bits"] = int(np.floor(note["max_distance"] - 1.0))

        # Semantic: embedding cosine, judged as the chord distance between unit vectors.
        embedding_rows = reps["embedding_row"].to_numpy()
        where = np.flatnonzero(embedding_rows >= 0)
        note = {"encoder": ctx.encoder.name, "distance": "chord sqrt(2 - 2 cos)"}
        notes["semantic"] = note
        neighbour_pairs: _NeighbourPairs | None = None
        if not params.semantic:
            note["skipped"] = "disabled in config"
        elif not ctx.encoder.trusted:
            note["skipped"] = "the CLIP model is untrained (random weights): nearness in its space means nothing"
        elif (reason := too_few(len(where), "embedded images")) is not None:
            note["skipped"] = reason
        else:
            # One unit copy of the embedded contents; ``slot`` maps a content position to its row.
            unit = unit_rows(ctx.embeddings, embedding_rows[where])
            slot = np.full(count, -1, dtype=np.int64)
            slot[where] = np.arange(len(where))
            found = _semantic_neighbours(ctx, embedding_rows[where], params.top_k)
            if pending:
                neighbour_pairs = _NeighbourPairs(where, found.index)

            def embedding_distance(left: np.ndarray, right: np.ndarray) -> np.ndarray:
                return chord_distance(np.einsum("ij,ij->i", unit[slot[left]], unit[slot[right]]))

            fixed = None if params.min_cosine == "auto" else float(chord_distance(np.array(params.min_cosine)))
            add("semantic", where, found.index, chord_distance(found.value), found.search, embedding_distance,
                fixed, note)
            note["min_cosine"] = 1.0 - note["max_distance"] ** 2 / 2.0

        if pending:
            if neighbour_pairs is None:
                neighbour_pairs = self._embedding_neighbour_pairs(ctx, where, embedding_rows, params)
            for waiting in pending:
                found_pairs[waiting.name] = waiting.complete(methods[waiting.name], neighbour_pairs)
            for waiting in pending:
                union = np.concatenate(list(found_pairs.values()))
                judged = list(methods.values())

                def judge(left: np.ndarray, right: np.ndarray, judged: list[_Method] = judged) -> np.ndarray:
                    return self._judge(judged, left, right)[0]

                if waiting.measure(judged, judge, union, count, ctx.config.search.min_recall, ctx.searches):
                    continue
                codes, hashed_where, fixed = hash_codes[waiting.name]
                exact_hashes(waiting.name, codes, hashed_where, fixed, waiting.note)
                waiting.note["max_bits"] = int(np.floor(waiting.note["max_distance"] - 1.0))

        ordered = [methods[name] for name in NEAR_METHODS if name in methods]
        pairs = [found_pairs[name] for name in NEAR_METHODS if name in found_pairs]
        candidates = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), np.int64)
        return ordered, notes, candidates.astype(np.int64)

    @staticmethod
    def _embedding_neighbour_pairs(
        ctx: CheckContext, where: np.ndarray, embedding_rows: np.ndarray, params: DuplicatesParams
    ) -> _NeighbourPairs | None:
        """Each embedded content's ``top_k`` nearest contents by cosine (the search the k-NN vote shares), as
        content pairs: candidates for the hash methods when the semantic method did not run (disabled, or an
        untrained model: its neighbours are still candidates, and their recall is measured)."""
        if len(where) < 2:
            return None
        return _NeighbourPairs(where, _semantic_neighbours(ctx, embedding_rows[where], params.top_k).index)

    def _hash_pairs(
        self, name: str, codes: np.ndarray, where: np.ndarray, fixed_max: float | None, params: DuplicatesParams,
        log: SearchLog, methods: dict[str, _Method], found_pairs: dict[str, np.ndarray],
        note: dict[str, Any],
    ) -> _HashCandidates | None:
        """Above ``exact_max_images``: the hash method without a k-NN search of every image. The null is fitted
        on the exact neighbours of a content-chosen sample; its global test bounds the distance a candidate pair
        can have (radius r bits), and multi-index hashing finds every pair within r exactly; an image judged
        later gets its own exact neighbourhood (its reference distance) when a candidate pair needs it.
        When the radius leaves too many candidates (random-looking hashes: photos' pHash + dHash are nearly so)
        it returns the pending candidate search (``_HashCandidates``): the embedding's neighbours, and hashing
        at the widest radius that is cheap, whose recall is measured once every method exists."""
        started = time.perf_counter()
        global_min_z = _family_tests(name, params)[1]
        rows = np.ascontiguousarray(codes[where])
        sample = content_sample(rows, params.hash_null_sample, 0)
        sampled = hamming_neighbours_of(rows, sample, params.top_k)
        fitted = NeighbourNull.fit(np.where(sampled.index >= 0, sampled.value + 1.0, np.nan),
                                   params.reference_neighbour, global_min_z)
        max_distance = fixed_max if fixed_max is not None else fitted.max_distance(global_min_z)
        radius = int(np.floor(max_distance - 1.0 + 1e-9))
        count = len(rows)
        all_pairs = count * (count - 1) // 2
        pairs, candidates = hamming_pairs_within(rows, max(radius, 0), int(all_pairs * _MIH_MAX_SHARE),
                                                 _MAX_PAIRS_PER_IMAGE * count)
        record: dict[str, Any] = {"search": f"duplicates_{name}", "vectors": count, "method": "multi-index hashing",
                                  "radius": radius, "candidates": candidates, "null_sample": len(sample)}
        slot = np.full(len(codes), -1, dtype=np.int64)
        slot[where] = np.arange(count)

        # Half the images have their reference neighbour within the sampled images' median reference distance:
        # their neighbourhoods come from the pairs within it (multi-index hashing again), the rest by brute force.
        sampled_reference = np.exp(fitted.reference[np.isfinite(fitted.reference)]) - 1.0
        reach = max(radius, int(np.quantile(sampled_reference, 0.5))) if len(sampled_reference) else radius
        # Hashing at that reach is tried once, on the first and largest batch (every candidate pair's ends that pass
        # the global test); the few images later pairs add are brute-forced (hashing all N codes again would cost
        # seconds for each). Both give the same references (``_neighbourhoods_within`` keeps only complete lists).
        tried = [False]

        def references(contents: np.ndarray) -> np.ndarray:
            wanted = slot[contents]
            if tried[0]:
                known, resolved = np.full((len(wanted), params.top_k), np.nan), np.zeros(len(wanted), dtype=bool)
            else:
                known, resolved = _neighbourhoods_within(rows, wanted, reach, params.top_k,
                                                         int(all_pairs * _MIH_MAX_SHARE))
                tried[0] = True
            rank = np.minimum(params.reference_neighbour - 1 + (known <= max_distance).sum(axis=1), params.top_k - 1)
            resolved &= rank < np.isfinite(known).sum(axis=1)
            result = np.empty(len(wanted))
            result[resolved] = fitted.references(known[resolved], params.reference_neighbour)
            if (~resolved).any():
                found = hamming_neighbours_of(rows, wanted[~resolved], params.top_k)
                result[~resolved] = fitted.references(np.where(found.index >= 0, found.value + 1.0, np.nan),
                                                      params.reference_neighbour)
            note["references_by_hashing"] = note.get("references_by_hashing", 0) + int(resolved.sum())
            return result

        method = _new_method(name, where, len(codes), fitted, np.full(len(codes), np.nan), _hamming(codes),
                             fixed_max, params, note, references)
        methods[name] = method
        note.update(radius=radius, candidates=candidates, null_sample=len(sample))
        if pairs is None:
            # Too wide for hashing: the embedding's neighbours within the radius, and every pair within the widest
            # radius hashing can afford (copies the embedding may not see: a brightened scan).
            budget = min(params.hash_candidates_per_image * count, int(all_pairs * _MIH_MAX_SHARE))
            cheap, cheap_candidates = hamming_reach(rows, radius - 1, budget)
            hashed = None
            if cheap >= 0:
                hashed, _ = hamming_pairs_within(rows, cheap, budget, _MAX_PAIRS_PER_IMAGE * count)
            hashed_pairs = np.zeros((0, 2), dtype=np.int64) if hashed is None else np.sort(where[hashed], axis=1)
            if len(hashed_pairs):
                hashed_pairs = hashed_pairs[method.close(method.distance(hashed_pairs[:, 0], hashed_pairs[:, 1]))]
            record.update(method="embedding neighbours + multi-index hashing", hashing_radius=cheap,
                          hashing_candidates=cheap_candidates, hashing_pairs=len(hashed_pairs))
            note.update(search=record["method"], hashing_radius=cheap, pairs_within_hashing_radius=len(hashed_pairs))
            within = (sampled.index >= 0) & (sampled.value <= radius)
            rows_of, columns = np.nonzero(within)
            truth = np.sort(np.stack([where[sample[rows_of]], where[sampled.index[rows_of, columns]]], axis=1), axis=1)
            return _HashCandidates(name, hashed_pairs, np.unique(truth, axis=0), record, note,
                                   time.perf_counter() - started)
        ends = np.sort(where[pairs], axis=1)
        distances = method.distance(ends[:, 0], ends[:, 1]) if len(ends) else np.zeros(0)
        found_pairs[name] = ends[method.close(distances)]
        record.update(pairs=len(pairs), seconds=round(time.perf_counter() - started, 3))
        log.records.append(record)
        note.update(search="multi-index hashing", pairs_within_radius=len(pairs))
        return None

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
        cluster_of_content: dict[int, int] = {}
        for n, contents in enumerate(clusters):
            for content in contents:
                cluster_of_content[content] = n
        rows_by_group: dict[tuple[str, int], list[int]] = defaultdict(list)
        for position, content in enumerate(content_of_row.tolist()):
            key = ("cluster", cluster_of_content[content]) if content in cluster_of_content else ("same", content)
            rows_by_group[key].append(position)
        groups = sorted((m for m in rows_by_group.values() if len(m) >= 2), key=lambda m: m[0])

        group_column = _no_groups(ctx)
        counts = {"split_leakage": 0, "exact_duplicate": 0, "near_duplicate": 0}
        conflicts = 0
        findings: list[Finding] = []
        grouped = sorted(m for members in groups for m in members)
        columns = rows[["index", "path", "label", "split", "sha256"]].iloc[grouped].to_dict("records")
        records = {m: {key: plain(value) for key, value in record.items()}
                   for m, record in zip(grouped, columns, strict=True)}
        for group_id, members in enumerate(groups):
            splits = sorted({str(records[m]["split"]) for m in members if records[m]["split"] is not None})
            group_labels = sorted({str(records[m]["label"]) for m in members if records[m]["label"] is not None})
            contents = sorted(set(content_of_row[members].tolist()))
            partner, tier = self._partners(methods, contents)
            strong = tier >= 2
            if len(splits) >= 2:
                kind, severity = "split_leakage", Severity.ERROR if strong else Severity.WARNING
            elif len(contents) == 1:
                kind, severity = "exact_duplicate", Severity.WARNING
            else:
                kind, severity = "near_duplicate", Severity.WARNING if strong else Severity.INFO
            counts[kind] += 1
            conflicts += len(group_labels) >= 2
            for position in members:
                row = records[position]
                other, score, used, details = self._partner_of(records, position, members, content_of_row, partner)
                group_column.at[row["index"]] = group_id
                other_path = str(records[other]["path"])
                how = details.pop("how", None)
                how = _IDENTICAL.get(tuple(used)) or f"{how}, {'+'.join(used)}"
                where = f", splits {', '.join(splits)}" if kind == "split_leakage" else ""
                details.update({
                    "methods": used,
                    "group_evidence": _TIER_NAMES[tier],
                    "group_size": len(members),
                    "splits": splits,
                    "labels": group_labels,
                    "labels_differ": len(group_labels) >= 2,
                })
                findings.append(
                    Finding(
                        check=kind,
                        severity=severity,
                        message=f"{kind.replace('_', ' ')}: copy of {other_path} ({how}; group of "
                                f"{len(members)}{where})",
                        path=str(row["path"]),
                        label=row["label"],
                        split=row["split"],
                        score=score,
                        group_id=group_id,
                        other_path=other_path,
                        sha256=row["sha256"],
                        classes=tuple(group_labels),
                        details=details,
                    )
                )
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

    @staticmethod
    def _partner_of(
        records: dict[int, dict[str, Any]],
        position: int,
        members: list[int],
        content_of_row: np.ndarray,
        partner: dict[int, tuple[int, int, dict[str, Any]]],
    ) -> tuple[int, float, list[str], dict[str, Any]]:
        """The member nearest ``position``: an identical copy if any, else its strongest partner content.
        Returns (row position, score, methods, details); identical copies score 1, others by evidence."""
        content = content_of_row[position]
        same = [m for m in members if m != position and content_of_row[m] == content]
        if same:
            same_bytes = [m for m in same if records[m]["sha256"] == records[position]["sha256"]]
            method = "sha256" if same_bytes else "pixels"
            return (same_bytes or same)[0], 1.0, [method], {"similarity": 1.0, "evidence": "identical"}
        other_content, tier, details = partner[int(content)]
        other = next(m for m in members if content_of_row[m] == other_content)
        margin = max(details["margin_z"], 0.0)
        base = 0.75 if tier >= 2 else 0.5
        score = base + 0.24 * (1.0 - float(np.exp(-margin)))
        details = dict(details)
        similarity = details.get("cosine", 1.0 - details.get("hash_distance", 0) / (2 * _HASH_BITS))
        details["similarity"] = similarity
        details["how"] = f"similarity {similarity:.3f}, {details['evidence']}"
        return other, score, details.pop("methods"), details
