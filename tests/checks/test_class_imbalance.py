"""The class_imbalance check on contexts built from code: starved, empty and missing classes per split, and the
split-level imbalance ratio."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from auditor.checks.base import CheckContext
from auditor.checks.class_imbalance import ClassImbalanceCheck, ClassImbalanceParams
from auditor.results.findings import Severity
from tests.conftest import synthetic_context


def _context(counts: dict[str, int]) -> CheckContext:
    labels: list[str | None] = [label for label, count in counts.items() for _ in range(count)]
    return synthetic_context(np.eye(len(labels), 4), labels)


def _with_splits(per_split: dict[str, dict[str, int]], empty: dict[str | None, list[str]]) -> CheckContext:
    """One context over several splits; ``empty`` lists the class folders that exist but hold no file."""
    labels: list[str | None] = []
    splits: list[str] = []
    for split, counts in per_split.items():
        for label, count in counts.items():
            labels.extend([label] * count)
            splits.extend([split] * count)
    ctx = synthetic_context(np.eye(len(labels), 4), labels)
    classes = sorted({label for counts in per_split.values() for label in counts} | {c for cs in empty.values()
                                                                                    for c in cs})
    return dataclasses.replace(ctx, images=ctx.images.assign(split=splits), splits=sorted(per_split),
                               classes=classes, empty_classes=empty)


def test_balanced_classes_give_no_finding_and_a_ratio_of_one() -> None:
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(_context({"cat": 6, "dog": 6}))
    assert result.findings == []
    assert result.summary is not None
    assert result.summary.as_json() == {"all": {"counts": {"cat": 6, "dog": 6}, "median": 6, "imbalance_ratio": 1.0}}


def test_a_class_below_the_minimum_count_is_starved() -> None:
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(_context({"cat": 8, "dog": 8, "fox": 2}))
    [finding] = result.findings
    assert finding.check == "class_imbalance" and finding.severity is Severity.WARNING
    assert finding.classes == ("fox",) and finding.path is None and finding.split is None
    assert finding.message == "class 'fox' is starved: 2 image(s), below the minimum 5 (median class: 8)"
    assert finding.details["count"] == 2 and finding.details["threshold"] == 5
    assert finding.score == pytest.approx(1 - 2 / 5)


def test_a_class_far_below_the_median_is_starved_even_above_the_minimum_count() -> None:
    params = ClassImbalanceParams(min_count=1, min_fraction_of_median=0.5, max_imbalance_ratio=100)
    result = ClassImbalanceCheck(params).run(_context({"cat": 20, "dog": 20, "fox": 6}))
    [finding] = result.findings
    assert finding.classes == ("fox",) and finding.details["threshold"] == 10


def test_a_split_over_the_imbalance_ratio_gets_one_split_level_finding() -> None:
    params = ClassImbalanceParams(min_count=0, min_fraction_of_median=0.0, max_imbalance_ratio=3.0)
    result = ClassImbalanceCheck(params).run(_context({"cat": 12, "dog": 3, "fox": 6}))
    [finding] = result.findings
    assert finding.classes == ("cat", "dog")
    assert finding.message == "imbalance ratio 4.0 exceeds 3: 'cat' has 12, 'dog' has 3"
    assert finding.details["imbalance_ratio"] == 4.0
    assert finding.score == pytest.approx(1 - 3.0 / 4.0)
    assert result.summary.root["all"].imbalance_ratio == 4.0


def test_each_split_is_judged_on_its_own_and_an_empty_folder_is_named() -> None:
    ctx = _with_splits({"train": {"cat": 10, "dog": 10, "fox": 10}, "test": {"cat": 6, "dog": 6}},
                       empty={"test": ["fox"]})
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(ctx)
    [finding] = result.findings
    assert (finding.split, finding.classes) == ("test", ("fox",))
    assert finding.message == "class 'fox' has no readable images in split test (its class folder is empty)"
    assert finding.details["count"] == 0
    assert result.summary.root["train"].counts == {"cat": 10, "dog": 10, "fox": 10}
    assert result.summary.root["test"].counts == {"cat": 6, "dog": 6, "fox": 0}


def test_a_class_missing_from_a_split_without_a_folder_says_so() -> None:
    ctx = _with_splits({"train": {"cat": 10, "dog": 10}, "test": {"cat": 6}}, empty={})
    [finding] = ClassImbalanceCheck(ClassImbalanceParams()).run(ctx).findings
    assert (finding.split, finding.classes) == ("test", ("dog",))
    assert finding.message.endswith("(the class has no images here)")


def test_unreadable_and_unlabelled_images_are_not_counted() -> None:
    labels: list[str | None] = ["cat"] * 6 + ["dog"] * 6 + [None] * 3
    rows = [*range(9), -1, -1, -1, 9, 10, 11]  # three dog images could not be read
    ctx = synthetic_context(np.eye(12, 16), labels, embedding_rows=rows)
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(ctx)
    assert result.summary.root["all"].counts == {"cat": 6, "dog": 3}
    [finding] = result.findings
    assert finding.classes == ("dog",) and finding.details["count"] == 3


def test_class_names_that_read_alike_are_one_finding_each_group_never_merged() -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    labels: list[str | None] = [nfc, nfd, "Dog", "dog", "bi\u200brd", "bird", "cat"] * 5
    ctx = synthetic_context(np.eye(len(labels), 4), labels)
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(ctx)
    collisions = sorted(f.classes for f in result.findings if f.check == "class_name_collision")
    assert collisions == [("Dog", "dog"), ("bird", "bi\u200brd"), (nfd, nfc)]
    assert all(set(ctx.classes) >= set(c) for c in collisions)  # still separate classes
    message = next(f.message for f in result.findings if f.classes == (nfd, nfc))
    assert "'cafe\\u0301'" in message and "'caf\\xe9'" in message  # the difference is shown


def test_distinct_class_names_give_no_collision() -> None:
    result = ClassImbalanceCheck(ClassImbalanceParams()).run(_context({"cat": 6, "cats": 6, "Ca-t": 6}))
    assert not [f for f in result.findings if f.check == "class_name_collision"]
