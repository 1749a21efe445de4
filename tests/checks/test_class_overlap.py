"""The class_overlap check on synthetic embeddings: two classes drawn from one cluster overlap."""

from __future__ import annotations

import numpy as np

from auditor.checks.class_overlap import ClassOverlapCheck, ClassOverlapParams
from tests.checks.test_label_errors import clusters, make_context


def test_two_classes_sharing_a_cluster_are_reported() -> None:
    vectors, labels = clusters(["ant", "bee", "cow", "dog"], per_class=30, spread=0.5)
    rng = np.random.default_rng(3)
    # "dog" images are drawn from the same cluster as "cow": the two names mean one thing.
    vectors[90:] = vectors[60:90].mean(axis=0) + rng.normal(scale=0.5, size=(30, vectors.shape[1]))
    result = ClassOverlapCheck(ClassOverlapParams()).run(make_context(vectors, labels))
    assert [f.classes for f in result.findings] == [("cow", "dog")]
    finding = result.findings[0]
    assert finding.path is None and finding.check == "class_overlap"
    assert finding.details["joint_probability"] > 0.05
    assert finding.details["overlapping_images"] >= 3
    assert result.summary.top_pairs[0]["classes"] == ["cow", "dog"]


def test_separate_classes_are_not_reported() -> None:
    vectors, labels = clusters(["ant", "bee"], per_class=30, spread=0.5)
    result = ClassOverlapCheck(ClassOverlapParams()).run(make_context(vectors, labels))
    assert result.findings == []
    assert result.summary.overlapping_pairs == 0


def test_classes_sharing_many_ambiguous_images_are_reported() -> None:
    """Ten cat/dog pictures sit halfway between the two clusters: the classes are not exclusive."""
    from tests.conftest import synthetic_context

    rng = np.random.default_rng(5)
    names = ("cat", "dog", "fox")
    centres = np.eye(3, 16) * 3.0
    vectors = [centres[c] + rng.normal(scale=0.35, size=16) for c in range(3) for _ in range(50)]
    labels = [name for name in names for _ in range(50)]
    for i in range(10):
        vectors.append((centres[0] + centres[1]) / 2 + rng.normal(scale=0.1, size=16))
        labels.append(names[i % 2])
    ctx = synthetic_context(np.array(vectors), labels)
    result = ClassOverlapCheck(ClassOverlapParams()).run(ctx)
    by_pair = {f.classes: f for f in result.findings}
    assert ("cat", "dog") in by_pair and ("cat", "fox") not in by_pair and ("dog", "fox") not in by_pair
    finding = by_pair[("cat", "dog")]
    assert finding.details["ambiguous_images"] >= 8
    assert "ambiguous" in finding.message
    assert result.summary.top_pairs[0]["classes"] == ["cat", "dog"]


def test_pairs_from_nonzero_entries_match_cleanlab_over_every_pair() -> None:
    """The sparse pair list equals cleanlab's dense one (every pair) where cleanlab's mass is nonzero, and the
    pairs without evidence are the rest, in class order."""
    import cleanlab.dataset

    from auditor.checks.class_overlap import joint_pairs, pairs_without_evidence

    rng = np.random.default_rng(11)
    joint = np.where(rng.random((9, 9)) < 0.2, rng.random((9, 9)), 0.0)
    np.fill_diagonal(joint, 5.0)
    joint /= joint.sum()
    dense = cleanlab.dataset.find_overlapping_classes(joint=joint, num_examples=500)
    expected = {(int(a), int(b)): float(mass) for a, b, mass in
                dense[["Class Index A", "Class Index B", "Joint Probability"]].itertuples(index=False)}
    found = {(a, b): mass for a, b, mass in joint_pairs(joint)}
    assert found == {pair: mass for pair, mass in expected.items() if mass > 0}
    assert 0 < len(found) < len(expected)
    rest = [pair for pair, _ in pairs_without_evidence(9, found, len(expected))]
    assert rest == sorted(pair for pair, mass in expected.items() if mass == 0)
    assert list(joint_pairs(np.eye(3) / 3)) == []  # no confusion: no pair
