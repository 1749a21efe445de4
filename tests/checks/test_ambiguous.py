"""The ambiguous check on synthetic embeddings (fast) and its label-error overlap rule."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from auditor.checks.ambiguous import AmbiguousCheck, AmbiguousParams
from auditor.checks.base import CheckContext
from auditor.core.config import AmbiguityParams
from auditor.embed.zero_shot import ClassPrompts
from auditor.evidence.verdicts import fit_sharpness, sharpen
from tests.conftest import synthetic_context

SEED = 7
CLASSES = ("cat", "dog", "fox")


def make_context(vectors: np.ndarray, labels: list[str], paths: list[str]) -> CheckContext:
    return synthetic_context(vectors, list(labels), paths)


def clusters_with_mixtures(
    per_class: int = 50, spread: float = 0.35
) -> tuple[CheckContext, dict[str, tuple[str, str]]]:
    """Three equidistant clusters plus planted points halfway between two of them."""
    rng = np.random.default_rng(SEED)
    centres = np.eye(len(CLASSES), 16) * 3.0
    vectors, labels, paths = [], [], []
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            vectors.append(centres[c] + rng.normal(scale=spread, size=16))
            labels.append(name)
            paths.append(f"{name}/{i:03d}.png")
    planted: dict[str, tuple[str, str]] = {}
    for i, (a, b) in enumerate([(0, 1), (1, 2), (0, 2), (2, 0), (1, 0), (0, 1)]):
        vectors.append((centres[a] + centres[b]) / 2 + rng.normal(scale=spread / 4, size=16))
        labels.append(CLASSES[a])
        paths.append(f"{CLASSES[a]}/mix_{i}.png")
        planted[paths[-1]] = (CLASSES[a], CLASSES[b])
    return make_context(np.array(vectors), labels, paths), planted


def run(ctx: CheckContext, **rule: object) -> tuple[dict, dict]:
    """The check's findings by path and its summary, with ``rule`` as the [evidence.ambiguity] settings."""
    ctx.config.evidence.ambiguity = AmbiguityParams.model_validate(rule)
    result = AmbiguousCheck(AmbiguousParams()).run(ctx)
    assert all(f.check == "ambiguous" for f in result.findings)
    return {f.path: f for f in result.findings}, result.summary


def test_flags_points_between_two_classes_naming_both() -> None:
    ctx, planted = clusters_with_mixtures()
    found, summary = run(ctx)
    for path, (given, other) in planted.items():
        assert path in found, path
        assert found[path].classes[0] == given
        assert other in found[path].classes
        assert 0.0 < found[path].score <= 1.0
    clean_flags = [p for p in found if p not in planted]
    assert len(clean_flags) <= 0.02 * 150
    assert summary.ambiguous == len(found)
    assert summary.per_class["cat"].ambiguous == sum(f.label == "cat" for f in found.values())
    top = summary.top_pairs[0]
    assert sorted(top.classes) == ["cat", "dog"] and top.images >= 3


def test_score_orders_even_splits_first() -> None:
    ctx, planted = clusters_with_mixtures()
    found, _ = run(ctx)
    even = found["cat/mix_0.png"].details["probabilities"]
    assert set(even) >= {"cat", "dog"}
    values = sorted(even.values(), reverse=True)
    assert found["cat/mix_0.png"].score == pytest.approx(values[1] / values[0])


def test_uninformative_classifier_flags_little() -> None:
    """Labels unrelated to the embeddings: every image is unsure, so being unsure is not news."""
    rng = np.random.default_rng(SEED)
    vectors = rng.normal(size=(150, 16))
    labels = [CLASSES[i % 3] for i in range(150)]
    ctx = make_context(vectors, labels, [f"x/{i}.png" for i in range(150)])
    found, summary = run(ctx)
    assert len(found) <= 0.05 * 150
    assert summary.typical_evenness > 0.3


def test_label_error_with_implausible_given_label_is_not_ambiguous() -> None:
    ctx, planted = clusters_with_mixtures()
    rng = np.random.default_rng(SEED + 1)
    # A point split between dog and fox (and a little further from cat than they are), filed as cat: the given
    # label is not among the plausible classes.
    centres = np.eye(len(CLASSES), 16) * 3.0
    extra = (centres[1] + centres[2]) / 2 - centres[0] / 3 + rng.normal(scale=0.05, size=16)
    base = ctx.images
    vectors = np.vstack([ctx.embeddings, extra[None, :]])
    ctx = make_context(vectors, [*base["label"], "cat"], [*base["path"], "cat/between_dog_fox.png"])
    # No class claims it, but cat gets less than cats get elsewhere: a label error (``unclaimed_images``), so not
    # reported as ambiguous.
    assert ctx.evidence.label_issues[-1]
    assert "cat/between_dog_fox.png" not in run(ctx)[0]

    # Where the label-error verdict does not flag it, the ambiguity verdict still names the classes.
    ctx = make_context(vectors, [*base["label"], "cat"], [*base["path"], "cat/between_dog_fox.png"])
    ctx.evidence.__dict__["label_issues"] = np.zeros(len(ctx.evidence.labelled), dtype=bool)
    found, _ = run(ctx)
    between = found["cat/between_dog_fox.png"]
    assert between.classes[0] == "cat" and set(between.classes[1:]) == {"dog", "fox"}
    assert between.details["given_label_plausible"] is False

    # Same data, but every image counts as a label error: only images whose given label is plausible stay.
    ctx = make_context(vectors, [*base["label"], "cat"], [*base["path"], "cat/between_dog_fox.png"])
    ctx.evidence.__dict__["label_issues"] = np.ones(len(ctx.evidence.labelled), dtype=bool)
    found_with_errors, summary = run(ctx)
    assert "cat/between_dog_fox.png" not in found_with_errors
    assert summary.not_reported_label_errors >= 1
    for path in planted:
        assert path in found_with_errors
        assert found_with_errors[path].details["also_label_error"] is True


def test_sharpening_recovers_a_flattened_classifier() -> None:
    rng = np.random.default_rng(SEED)
    logits = rng.normal(scale=3.0, size=(400, 4))
    sharp = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in sharp])
    flat = sharpen(sharp, 0.25)
    power = fit_sharpness(flat, labels)
    assert power == pytest.approx(4.0, rel=0.3)


def test_unknown_param_is_rejected() -> None:
    with pytest.raises(ValidationError):
        AmbiguousParams(min_relative=0.2)  # type: ignore[call-arg]


def test_zero_shot_evidence_can_reveal_a_second_class() -> None:
    """An image the embeddings place firmly in cat, but whose prompt similarities split cat/dog evenly.

    Prompts for class c point along its cluster axis plus an axis of their own (c + 5); the planted image
    carries dog's prompt axis, which no training image has, so only zero-shot evidence sees the dog.
    """
    rng = np.random.default_rng(SEED)
    dim = 16
    vectors, labels, paths = [], [], []
    for c, name in enumerate(CLASSES):
        for i in range(50):
            vectors.append(np.eye(dim)[c] * 3.0 + rng.normal(scale=0.35, size=dim))
            labels.append(name)
            paths.append(f"{name}/{i:03d}.png")
    vectors.append(np.eye(dim)[0] * 3.0 + np.eye(dim)[1 + 5] * 3.0)
    labels.append("cat")
    paths.append("cat/with_dog.png")
    prompt_vectors = np.stack([np.eye(dim)[c] + np.eye(dim)[c + 5] for c in range(len(CLASSES))])
    prompts = ClassPrompts(list(CLASSES), (prompt_vectors / np.sqrt(2)).astype(np.float32), ["a photo of a {}."])

    without, summary = run(make_context(np.array(vectors), labels, paths))
    assert "cat/with_dog.png" not in without and summary.zero_shot is None

    ctx = make_context(np.array(vectors), labels, paths)
    ctx.evidence.prompts = prompts
    found, summary = run(ctx)
    with_dog = found["cat/with_dog.png"]
    assert with_dog.classes == ("cat", "dog") and with_dog.details["evidence"] == ["zero_shot"]
    assert "zero-shot" in with_dog.message and with_dog.score == pytest.approx(1.0, abs=1e-3)
    assert summary.zero_shot.flagged_only_by_zero_shot >= 1
    assert len(found) <= 1 + 0.02 * 150

    ctx = make_context(np.array(vectors), labels, paths)
    ctx.evidence.prompts = prompts
    switched_off, _ = run(ctx, zero_shot=False)
    assert "cat/with_dog.png" not in switched_off
