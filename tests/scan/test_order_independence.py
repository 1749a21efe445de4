"""Renaming or reordering files changes no model-based finding except its path (issue 19, item 4)."""

from __future__ import annotations

import numpy as np

from auditor.checks import REGISTRY, check_params
from auditor.checks.base import CheckContext
from tests.conftest import synthetic_context

MODEL_BASED = ("label_errors", "class_overlap", "ambiguous", "outliers")


def dataset(seed: int = 5) -> tuple[np.ndarray, list[str]]:
    """Three overlapping classes with flipped labels and between-class images: borderline cases abound."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 24)) * 1.2
    truth = rng.integers(0, 3, 240)
    vectors = centres[truth] + rng.normal(size=(240, 24))
    vectors[:12] = (centres[0] + centres[1]) / 2 + 0.3 * rng.normal(size=(12, 24))
    given = np.where(rng.random(240) < 0.08, (truth + 1) % 3, truth)
    return vectors + 4.0, [f"class_{g}" for g in given]


def context(vectors: np.ndarray, labels: list[str], content: list[str], paths: list[str]) -> CheckContext:
    ctx = synthetic_context(vectors, labels, paths=paths)
    ctx.images["sha256"] = content
    return ctx


def findings_by_content(ctx: CheckContext) -> set[tuple]:
    found = set()
    for name in MODEL_BASED:
        check = REGISTRY[name](check_params(ctx.config, name))
        for f in check.run(ctx).findings:
            found.add((f.check, f.sha256, f.label, f.classes, f.severity, round(f.score or 0.0, 6)))
    return found


def test_renaming_and_reordering_files_changes_no_finding() -> None:
    vectors, labels = dataset()
    content = [f"content-{i:03d}" for i in range(len(labels))]
    original = context(vectors, labels, content, [f"{label}/img_{i:03d}.png" for i, label in enumerate(labels)])
    order = np.random.default_rng(1).permutation(len(labels))
    shuffled = context(vectors[order], [labels[i] for i in order], [content[i] for i in order],
                       [f"{labels[i]}/renamed_{k:03d}.png" for k, i in enumerate(order)])
    before, after = findings_by_content(original), findings_by_content(shuffled)
    assert before, "the dataset must produce findings for the comparison to mean anything"
    assert before == after
