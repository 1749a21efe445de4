"""One self-search over the distinct embedded vectors serves the k-NN vote and the semantic duplicates: each
reads from it exactly what a search of its own rows would have given."""

from __future__ import annotations

import numpy as np

from auditor.checks.base import CheckContext
from auditor.checks.duplicates import DuplicatesCheck, DuplicatesParams
from auditor.core.config import ProbabilityParams, SearchParams
from auditor.core.encoder_facts import EncoderInfo
from auditor.evidence.probabilities import blended_probabilities
from auditor.evidence.similarity import unit_rows
from auditor.results.findings import Finding
from tests.conftest import synthetic_context

CLASSES = ["a", "b", "c", "d"]


def copies_and_clusters() -> tuple[np.ndarray, list[str | None]]:
    """Four clustered classes; groups of identical vectors (copies of one image), two of them under mixed
    labels and one of 60 copies (more than the 50 a row-level vote used to skip); a few near copies."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(len(CLASSES), 24)) * 2.0
    labels: list[str | None] = [CLASSES[i % 4] for i in range(320)]
    vectors = [centres[i % 4] + rng.normal(size=24) for i in range(320)]
    for source, group in ((5, ["b", "a", "b"]), (9, ["a", "c"]), (100, ["a"] * 60)):
        vectors += [vectors[source]] * len(group)
        labels += group
    for source in range(20, 26):  # near copies: the semantic method's findings
        vectors.append(vectors[source] + rng.normal(size=24) * 0.01)
        labels.append(labels[source])
    return np.array(vectors), labels


def trusted(ctx: CheckContext) -> CheckContext:
    """A precomputed (trusted) encoder and no hashes: the semantic method judges every pair."""
    ctx.encoder = EncoderInfo("precomputed", "precomputed", "test", ctx.embeddings.shape[1], True)
    for column in ("phash", "dhash", "levelled_hash"):
        ctx.images[column] = None
    return ctx


def row_level_vote(vectors: np.ndarray, labels: np.ndarray, neighbours: int) -> np.ndarray:
    """The vote as a search of every row would give it (the definition): each row's ``neighbours`` most similar
    rows that are not copies of it (copies of a neighbour in label order), weight cosine cubed, plus prior."""
    unit = unit_rows(vectors).astype(np.float64)
    similarity = unit @ unit.T
    same = (vectors[:, None, :] == vectors[None, :, :]).all(axis=2)
    votes = np.zeros((len(labels), len(CLASSES)))
    for row in range(len(labels)):
        others = np.flatnonzero(~same[row])
        order = others[np.lexsort((others, labels[others], -similarity[row, others]))][:neighbours]
        np.add.at(votes[row], labels[order], np.clip(similarity[row, order], 0.0, None) ** 3)
    votes += 0.1 * np.bincount(labels, minlength=len(CLASSES)) / len(labels)
    return votes / votes.sum(axis=1, keepdims=True)


def vote_of(probs: np.ndarray, regression: np.ndarray, weight: float) -> np.ndarray:
    return (probs - (1.0 - weight) * regression) / weight


def test_the_shared_search_gives_the_row_level_vote() -> None:
    vectors, labels = copies_and_clusters()
    ctx = synthetic_context(vectors, labels)
    weight = ctx.config.probabilities.knn_weight
    vote = vote_of(ctx.evidence.pred_probs, ctx.evidence.regression_probs, weight)
    assert [r["search"] for r in ctx.searches.records] == ["image_neighbours"]
    # Including the 60 copies: each gets its full neighbours' votes from other images, none from its copies.
    expected = row_level_vote(vectors.astype(np.float32), ctx.evidence.label_ids,
                              ctx.config.probabilities.knn_neighbours)
    np.testing.assert_allclose(vote, expected, rtol=1e-5, atol=1e-9)


def test_the_vote_searches_its_own_rows_when_unlabelled_images_are_among_the_vectors() -> None:
    vectors, labels = copies_and_clusters()
    labels[30:40] = [None] * 10
    ctx = synthetic_context(vectors, labels)
    probs = ctx.evidence.pred_probs
    assert [r["search"] for r in ctx.searches.records] == ["knn_vote"]
    labelled = np.array([label is not None for label in labels])
    expected = row_level_vote(vectors[labelled].astype(np.float32), ctx.evidence.label_ids,
                              ctx.config.probabilities.knn_neighbours)
    vote = vote_of(probs, ctx.evidence.regression_probs, ctx.config.probabilities.knn_weight)
    np.testing.assert_allclose(vote, expected, rtol=1e-5, atol=1e-9)


def findings(found: list[Finding]) -> set[tuple[str, str | None, int | None, str]]:
    return {(f.check, f.path, f.group_id, f"{f.score:.6f}") for f in found}


def test_neighbours_read_from_the_shared_search_what_their_own_search_gives() -> None:
    vectors, labels = copies_and_clusters()
    shared_ctx = trusted(synthetic_context(vectors, labels))
    shared_ctx.config.evidence.neighbours = 30
    own_ctx = trusted(synthetic_context(vectors, labels))  # [evidence] neighbours is 20: too narrow for 30
    rows = own_ctx.evidence.embedded["embedding_row"].to_numpy()[own_ctx.evidence.distinct_first]
    shared = shared_ctx.evidence.neighbours(rows, 30, "duplicates_semantic")
    _ = shared_ctx.evidence.pred_probs  # the vote reads the same search: no second one
    own = own_ctx.evidence.neighbours(rows, 30, "duplicates_semantic")
    assert [r["search"] for r in shared_ctx.searches.records] == ["image_neighbours"]
    assert [r["search"] for r in own_ctx.searches.records] == ["duplicates_semantic"]
    np.testing.assert_array_equal(shared.index, own.index)
    np.testing.assert_allclose(shared.value, own.value, atol=1e-6)


def test_duplicates_read_the_shared_search() -> None:
    vectors, labels = copies_and_clusters()
    # Pixel-different files whose vectors are identical (the 60 copies): the semantic method pairs them.
    ctx = trusted(synthetic_context(vectors, labels))
    result = DuplicatesCheck(DuplicatesParams()).run(ctx)
    _ = ctx.evidence.pred_probs
    assert [r["search"] for r in ctx.searches.records] == ["image_neighbours"]
    paths = {f.path for f in result.findings}
    assert {f"{labels[i]}/{i:04d}.png" for i in range(385, 391)} <= paths


def test_the_shared_search_is_approximate_above_the_exact_size_and_the_findings_hold() -> None:
    vectors, labels = copies_and_clusters()
    exact = trusted(synthetic_context(vectors, labels))
    approximate = trusted(synthetic_context(vectors, labels))
    approximate.config.search = SearchParams(exact_max_vectors=40)
    results = [(findings(DuplicatesCheck(DuplicatesParams()).run(ctx).findings), ctx.evidence.pred_probs)
               for ctx in (exact, approximate)]
    record = approximate.searches.records[0]
    assert record["search"] == "image_neighbours" and record["method"] == "cell_join" and record["recall"] >= 0.99
    assert results[0][0] == results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-3)


def test_blended_probabilities_without_a_shared_search_is_the_same_vote() -> None:
    vectors, labels = copies_and_clusters()
    ctx = synthetic_context(vectors, labels)
    evidence = ctx.evidence
    own = blended_probabilities(evidence.labelled_embeddings, evidence.label_ids, evidence.regression_probs,
                                ProbabilityParams(), SearchParams())
    np.testing.assert_array_equal(own, ctx.evidence.pred_probs)
