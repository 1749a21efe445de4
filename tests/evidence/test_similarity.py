"""Approximate neighbour search: above the configured size every embedding search is a cell join whose
recall is measured and recorded, and the findings stay those of exact search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from auditor.checks import REGISTRY, check_params
from auditor.checks.base import CheckContext
from auditor.core.config import SearchParams, load_config
from auditor.evidence.similarity import SearchLog, hamming_pairs_within, nearest, unit_rows
from auditor.scan import run_scan
from tests.conftest import synthetic_context, write_class_folder

SEED = 7
CLASSES = ["apple", "bird", "car", "dog"]
MODEL_CHECKS = ("label_errors", "ambiguous", "outliers", "class_overlap")


def clustered(per_class: int = 150, modes: int = 3, dim: int = 32) -> tuple[np.ndarray, list[str], set[str]]:
    """Classes made of a few tight modes (as real embeddings are), 2% of labels flipped to another class."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(size=(len(CLASSES), dim)) * 3.0
    vectors, labels, paths = [], [], []
    for c, name in enumerate(CLASSES):
        mode_centres = centres[c] + rng.normal(size=(modes, dim))
        for i in range(per_class):
            vectors.append(mode_centres[i % modes] + rng.normal(scale=0.3, size=dim))
            labels.append(name)
    flipped = rng.choice(len(labels), size=len(labels) // 50, replace=False)
    for i in flipped:
        labels[i] = CLASSES[(CLASSES.index(labels[i]) + 1) % len(CLASSES)]
    paths = [f"{label}/{i:04d}.png" for i, label in enumerate(labels)]
    return np.array(vectors), labels, {paths[i] for i in flipped}


def run_checks(ctx: CheckContext) -> set[tuple[str, str, str | None]]:
    found = set()
    for name in MODEL_CHECKS:
        result = REGISTRY[name](check_params(ctx.config, name)).run(ctx)
        found |= {(f.check, f.path or "", f.suggested_label) for f in result.findings}
    return found


def test_approximate_path_gives_the_findings_of_exact_search_and_records_its_recall() -> None:
    vectors, labels, flipped = clustered()
    paths = [f"{label}/{i:04d}.png" for i, label in enumerate(labels)]
    exact = synthetic_context(vectors, list(labels), paths)
    approximate = synthetic_context(vectors, list(labels), paths)
    approximate.config.search = SearchParams(exact_max_vectors=50)
    exact_findings = run_checks(exact)
    assert exact_findings == run_checks(approximate)
    # The findings compared are real ones: most planted flips are among them.
    assert len({path for check, path, _ in exact_findings if check == "label_error"} & flipped) >= 0.75 * len(flipped)
    assert [r["method"] for r in exact.searches.records] == ["exact", "exact"]
    records = {r["search"]: r for r in approximate.searches.records}
    # Class closeness above the exact size: the shared search is its reach, the per-class searches cover the pairs
    # within reach (exact ones merged as "class_closeness[*]"), and the record of the whole has its sampled check.
    assert {"image_neighbours", "class_closeness"} <= set(records)
    assert set(records) <= {"image_neighbours", "class_closeness", "class_closeness[*]",
                            *(f"class_closeness[{c}]" for c in range(len(CLASSES)))}
    assert records["class_closeness"]["method"] == "within_reach"
    assert records["class_closeness"]["closest_within_reach"] >= 0.99
    vote = records["image_neighbours"]
    assert vote["method"] == "cell_join" and vote["recall"] >= 0.99 and vote["cells_joined"] < vote["cells"]
    assert vote["recall_queries"] == min(1000, len(vectors)) and vote["vectors"] == len(vectors)
    for record in records.values():
        assert record["method"] == "exact" or record["recall"] >= 0.99 or "fallback" in record


def test_recall_is_measured_against_exact_search() -> None:
    """A recall the search reports must be the share of exact neighbours it found: checked by hand here."""
    vectors, _, _ = clustered()
    unit = unit_rows(vectors)
    log = SearchLog()
    settings = SearchParams(exact_max_vectors=10, min_recall=1e-6, recall_queries=600)
    values, found = nearest(unit, 6, settings, "probe", log)
    truth = np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :6]
    by_hand = np.mean([len((set(found[i]) - {i}) & (set(truth[i]) - {i})) / 5 for i in range(len(unit))])
    assert log.records[0]["method"] == "cell_join" and log.records[0]["cells_joined"] == 1
    assert abs(log.records[0]["recall"] - by_hand) < 0.01
    # The recall predicted from where the exact neighbours lie is the one the join then measures.
    assert abs(log.records[0]["tried"][0]["recall"] - by_hand) < 0.01
    assert by_hand < 1.0, "one cell of 15 should miss some neighbours, or this test checks nothing"


def test_the_cell_join_finds_the_exact_neighbours_on_clustered_data() -> None:
    """Above a lowered exact size, a self-search and a search of a subset by every vector (class closeness's
    form) find the neighbours exact search finds, with exact similarities, and say how many cells they joined."""
    vectors, _, _ = clustered(per_class=300)
    unit = unit_rows(vectors)
    subset = np.ascontiguousarray(unit[::3])
    for base, queries in ((unit, None), (subset, unit)):
        log = SearchLog()
        values, found = nearest(base, 8, SearchParams(exact_max_vectors=30), "join", log, queries)
        exact_values, exact_found = nearest(base, 8, SearchParams(), "exact", None, queries)
        record = log.records[0]
        assert record["method"] == "cell_join" and record["recall"] >= 0.99
        assert 1 <= record["cells_joined"] <= record["cells"] // 2
        assert np.mean([len(set(a) & set(b)) / 8 for a, b in zip(found, exact_found, strict=True)]) >= 0.99
        same = found == exact_found
        np.testing.assert_allclose(values[same], exact_values[same], atol=1e-6)
        queried = unit if queries is None else queries
        np.testing.assert_allclose(values, np.einsum("qd,qkd->qk", queried, base[found]), atol=1e-5)


@pytest.mark.slow  # two scans of 90 drawn images
def test_scan_records_every_search_in_run_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=30)  # 90 images: enough for a two-cell index
    outputs = {}
    for name, search in (("exact", {}), ("approximate", {"exact_max_vectors": 5})):
        config = load_config(overrides={
            "encoder": {"name": "builtin", "workers": 0},
            "scan": {"cache_dir": str(tmp_path / "cache"), "workers": 0},
            "search": search,
            "checks": {"duplicates": {"exact_max_images": 5 if search else 20_000}},
        })
        result = run_scan(data, config, tmp_path / name)
        outputs[name] = ({(f.check, f.path, f.suggested_label) for f in result.findings},
                         json.loads((tmp_path / name / "run.json").read_text())["searches"])
    assert outputs["exact"][0] == outputs["approximate"][0]
    exact_methods = {r["search"]: r["method"] for r in outputs["exact"][1]}
    assert set(exact_methods.values()) == {"exact"}
    assert {"image_neighbours", "class_closeness", "duplicates_perceptual"} <= set(exact_methods)
    # One embedding self-search serves the k-NN vote and the semantic duplicates.
    approximate = [r for r in outputs["approximate"][1] if r["search"] in ("image_neighbours", "knn_vote",
                                                                            "duplicates_semantic")]
    assert len(approximate) == 1 and all("recall" in r and "cells_joined" in r and "cells" in r for r in approximate)


def test_approximate_search_does_not_depend_on_row_order() -> None:
    """Renaming files reorders the rows; the index's training sample and the recall sample are drawn by
    content, so every image keeps its neighbours and the search its recall."""
    vectors, _, _ = clustered()
    unit = unit_rows(vectors)
    settings = SearchParams(exact_max_vectors=50, recall_queries=200)
    permutation = np.random.default_rng(3).permutation(len(unit))
    before, after = SearchLog(), SearchLog()
    _, found = nearest(unit, 6, settings, "original", before)
    _, found_permuted = nearest(np.ascontiguousarray(unit[permutation]), 6, settings, "permuted", after)
    # Row i of the permuted search is original row permutation[i]; map its neighbours back to original rows.
    for i, row in enumerate(permutation):
        assert set(permutation[found_permuted[i]]) == set(found[row])
    assert before.records[0]["method"] == "cell_join"
    assert before.records[0]["tried"] == after.records[0]["tried"]


def _brute_pairs(codes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    bits = np.unpackbits(codes, axis=1).astype(np.int16)
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    left, right = np.nonzero(np.triu(distance <= radius, 1))
    return set(zip(left.tolist(), right.tolist(), strict=True))


def _near_copies(count: int, seed: int) -> np.ndarray:
    """Random 128-bit codes, a third of them the code before with a few bits flipped, and a run of 30 identical
    codes (one crowded bucket in every block)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    for row in range(1, count, 3):
        flips = rng.choice(128, size=int(rng.integers(0, 12)), replace=False)
        bits = np.unpackbits(codes[row - 1])
        bits[flips] ^= 1
        codes[row] = np.packbits(bits)
    codes[100:130] = codes[99]
    return codes


@pytest.mark.parametrize("radius", [0, 1, 5, 11, 30, 70, 127])
def test_multi_index_hashing_finds_exactly_the_pairs_within_the_radius(radius: int) -> None:
    codes = _near_copies(600, seed=radius)
    pairs, candidates = hamming_pairs_within(codes, radius, max_candidates=10**9)
    assert pairs is not None
    expected = _brute_pairs(codes, radius)
    assert expected, "the planted copies lie within every radius tested"
    assert set(map(tuple, pairs.tolist())) == expected
    assert len(pairs) == len(expected) <= candidates


def test_multi_index_hashing_declines_when_the_candidates_exceed_the_budget() -> None:
    codes = _near_copies(600, seed=1)
    pairs, candidates = hamming_pairs_within(codes, 40, max_candidates=1000)
    assert pairs is None and candidates > 1000
    assert hamming_pairs_within(codes, 128, max_candidates=10**9)[0] is None  # more blocks than bits
    # Within budget for candidates, but more pairs within the radius than the caller will hold.
    within = len(hamming_pairs_within(codes, 11, max_candidates=10**9)[0])
    assert hamming_pairs_within(codes, 11, max_candidates=10**9, max_pairs=within // 2)[0] is None
    # Each block's copy of a pair counts against max_pairs.
    assert len(hamming_pairs_within(codes, 11, max_candidates=10**9, max_pairs=100 * within)[0]) == within
