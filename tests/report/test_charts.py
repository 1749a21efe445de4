"""Bar charts of the HTML report: numbers to draw, computed from findings and class counts."""

from __future__ import annotations

from auditor.report.charts import KIND_COLOURS, class_distribution, findings_by_class, short_name
from auditor.results.findings import Finding, Severity


def test_class_distribution_scales_to_the_largest_class_and_says_every_count() -> None:
    chart = class_distribution("train", {"cat": 10, "dog": 40, "eel": 0})
    assert [(bar.full_name, bar.total) for bar in chart.bars] == [("dog", 40), ("cat", 10), ("eel", 0)]
    assert [bar.segments[0].share for bar in chart.bars] == [100.0, 25.0, 0.0]
    assert chart.description == "Readable images per class in train: dog: 40, cat: 10, eel: 0"


def test_findings_by_class_counts_each_kind_under_the_given_label() -> None:
    w = Severity.WARNING
    by_check = {
        "label_error": [Finding("label_error", w, "m", path="a.png", label="cat", suggested_label="dog"),
                        Finding("label_error", w, "m", path="b.png", label="cat", suggested_label="dog")],
        "class_overlap": [Finding("class_overlap", w, "m", classes=("cat", "dog"))],
        "blurry": [Finding("blurry", w, "m", path="c.png")],  # unlabelled: about no class
    }
    chart = findings_by_class(by_check, {"label_error": "Label errors", "class_overlap": "Overlap", "blurry": "Blurry"})
    assert chart is not None
    cat, dog = chart.bars
    assert (cat.full_name, cat.total, dog.full_name, dog.total) == ("cat", 3, "dog", 1)
    assert [(s.kind, s.count, s.share) for s in cat.segments] == [("Label errors", 2, 200 / 3), ("Overlap", 1, 100 / 3)]
    assert dog.segments[0].colour == cat.segments[1].colour  # one colour per kind across bars
    assert chart.legend == (("Label errors", KIND_COLOURS[0]), ("Overlap", KIND_COLOURS[1]))
    assert "cat: 2 Label errors, 1 Overlap" in chart.description
    assert findings_by_class({"blurry": by_check["blurry"]}, {"blurry": "Blurry"}) is None


def test_long_class_names_are_shortened_for_the_label_area() -> None:
    assert short_name("x" * 30, 10) == "x" * 9 + "…" and short_name("cat") == "cat"
