"""The Evidence object: built once, read by several checks, each member computed once with the [evidence] settings."""

from __future__ import annotations

import numpy as np

from auditor.core.config import AuditConfig, LabelIssueParams
from auditor.evidence.shared import Evidence
from tests.conftest import synthetic_context


def _clusters(per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, list[str | None]]:
    """Three well-separated classes in 16-d, with the first image of class a filed under c."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 6.0
    vectors = np.vstack([centre + rng.normal(size=(per_class, 16)) for centre in centres])
    labels: list[str | None] = [name for name in "abc" for _ in range(per_class)]
    labels[0] = "c"
    return vectors, labels


def test_members_are_computed_once_and_shared() -> None:
    vectors, labels = _clusters()
    evidence = synthetic_context(vectors, labels).evidence
    assert isinstance(evidence, Evidence)
    assert evidence.pred_probs is evidence.pred_probs
    assert evidence.label_issues is evidence.label_issues
    assert evidence.pred_probs.shape == (len(labels), 3)
    np.testing.assert_allclose(evidence.pred_probs.sum(axis=1), 1.0, atol=1e-6)
    # The planted image is the one label the evidence finds implausible.
    flagged = evidence.labelled["path"].to_numpy()[evidence.label_issues]
    assert list(flagged) == ["c/0000.png"]


def test_settings_come_from_the_evidence_section() -> None:
    vectors, labels = _clusters()
    config = AuditConfig()
    config.evidence.label_issues = LabelIssueParams(min_class_fraction_of_median=0.9, min_class_images=40)
    evidence = Evidence(synthetic_context(vectors, labels).images, vectors.astype(np.float32), config)
    assert evidence.settings is config.evidence
    # Classes of 29-31 images are under the configured 40: none is judged.
    assert not evidence.judged_classes.any()


def test_neighbours_are_the_nearest_others_in_order() -> None:
    vectors, labels = _clusters(per_class=12)
    evidence = synthetic_context(vectors, labels).evidence
    rows = np.arange(len(labels))
    found = evidence.neighbours(rows, 5, "test_neighbours")
    assert found.index.shape == (len(labels), 5)
    assert not (found.index == rows[:, None]).any(), "an image is never its own neighbour"
    assert (np.diff(found.value, axis=1) <= 1e-6).all(), "cosines come nearest first"
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = units @ units.T
    np.fill_diagonal(cosine, -np.inf)
    np.testing.assert_array_equal(np.sort(found.index, axis=1), np.sort(np.argsort(-cosine, axis=1)[:, :5], axis=1))
    # The k-NN vote's search was wide enough: no second search was logged.
    assert [record["search"] for record in evidence.searches.records] == ["image_neighbours"]
