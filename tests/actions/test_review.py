"""``audit review``'s actions: which findings wait for a decision, the decision a look makes, and the file it
is appended to."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from auditor.actions.review import (
    decisions_path,
    existing_decisions,
    find_finding,
    make_decision,
    review_queue,
    review_thumbnail,
    write_decisions,
)
from auditor.core.errors import AuditorError
from auditor.results.findings import Finding, Severity
from auditor.results.reading import Results
from tests.conftest import draw_shape

SHA = {name: char * 64 for name, char in (("a", "a"), ("b", "b"), ("c", "c"), ("d", "d"))}


def _results(directory: Path, findings: list[Finding], run: dict[str, object] | None = None) -> Results:
    images = pd.DataFrame({"path": [f"{name}.png" for name in SHA], "label": ["cat", "cat", "dog", "dog"],
                           "sha256": list(SHA.values()), "readable": [True] * 4})
    return Results(directory, run or {"checks": {}}, pd.DataFrame(), images, tuple(findings))


def _finding(check: str, name: str, score: float, suggested_label: str | None = None,
             other_path: str | None = None) -> Finding:
    return Finding(check=check, severity=Severity.WARNING, message=f"{check} {name}", path=f"{name}.png",
                   sha256=SHA[name], label="cat", score=score, suggested_label=suggested_label,
                   other_path=other_path)


def test_the_queue_is_undecided_image_findings_in_report_order_strongest_first(tmp_path: Path) -> None:
    weak, strong = _finding("label_error", "a", 0.4), _finding("label_error", "b", 0.9)
    unreadable = _finding("unreadable", "c", 1.0)
    class_level = Finding(check="class_imbalance", severity=Severity.WARNING, message="starved", classes=("dog",))
    results = _results(tmp_path, [weak, strong, class_level, unreadable])
    assert review_queue(results, (), [], None) == [unreadable, strong, weak]
    assert review_queue(results, ("label_error",), [], 1) == [strong]
    accepted = make_decision(strong, results, "accept", "checked: it is a cat", "ana")
    assert review_queue(results, ("label_error",), [accepted], None) == [weak]


def test_a_relabel_takes_the_suggested_label_and_a_pair_keys_its_partner(tmp_path: Path) -> None:
    flip = _finding("label_error", "a", 0.9, suggested_label="dog")
    pair = _finding("near_duplicate", "b", 0.8, other_path="c.png")
    results = _results(tmp_path, [flip, pair])
    relabel = make_decision(flip, results, "relabel", "a dog", "ana")
    assert (relabel.action, relabel.label, relabel.new_label, relabel.sha256) == ("relabel", "cat", "dog", SHA["a"])
    assert make_decision(pair, results, "accept", "both kept", "ana").other_sha256 == SHA["c"]
    with pytest.raises(AuditorError, match="suggests no label; pass --label"):
        make_decision(pair, results, "relabel", "?", "ana")


def test_find_finding_names_the_kinds_an_image_has_when_the_asked_one_is_missing(tmp_path: Path) -> None:
    results = _results(tmp_path, [_finding("outlier", "a", 0.5)])
    assert find_finding(results, "outlier", "a.png").check == "outlier"
    with pytest.raises(AuditorError, match=r"no `label_error` finding for a.png .* \(it has: outlier\)"):
        find_finding(results, "label_error", "a.png")


def test_the_decisions_file_is_given_or_recorded_or_beside_the_dataset(tmp_path: Path) -> None:
    given = tmp_path / "mine.toml"
    recorded = _results(tmp_path, [], {"decisions": {"file": str(tmp_path / "team.toml")}})
    beside = _results(tmp_path, [], {"dataset": {"root": str(tmp_path / "data")}})
    assert decisions_path(recorded, given) == given
    assert decisions_path(recorded, None) == tmp_path / "team.toml"
    assert decisions_path(beside, None) == tmp_path.resolve() / "audit-decisions.toml"
    with pytest.raises(AuditorError, match="names no dataset folder"):
        decisions_path(_results(tmp_path, []), None)


def test_written_decisions_are_appended_and_read_back(tmp_path: Path) -> None:
    results = _results(tmp_path, [])
    target = tmp_path / "decisions.toml"
    first = make_decision(_finding("outlier", "a", 0.5), results, "accept", "fine", "ana")
    second = make_decision(_finding("outlier", "b", 0.5), results, "accept", "also fine", "bo")
    assert existing_decisions(target) == []
    write_decisions(target, [first])
    write_decisions(target, [second])
    assert [(d.sha256, d.who) for d in existing_decisions(target)] == [(SHA["a"], "ana"), (SHA["b"], "bo")]


def test_a_pair_thumbnail_shows_both_images_side_by_side(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    draw_shape("circle", 1).save(root / "b.png")
    draw_shape("square", 2).save(root / "c.png")
    results = _results(tmp_path / "out", [])
    pair = _finding("near_duplicate", "b", 0.8, other_path="c.png")
    sheet = review_thumbnail(results, pair, root, max_pixels=10_000_000)
    assert sheet == tmp_path / "out" / "review-thumbnails" / f"near_duplicate-{SHA['b'][:16]}.png"
    with Image.open(sheet) as image:
        assert image.size == (64 + 8 + 64, 64)
    missing = _finding("outlier", "a", 0.5)  # a.png is not in the dataset folder
    assert review_thumbnail(results, missing, root, max_pixels=10_000_000) is None
