"""`audit export`: Label Studio import tasks (structure checked against the documented format) and FiftyOne."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor.actions.exports import fiftyone_records, label_studio_tasks, to_fiftyone
from auditor.cli.app import app
from auditor.results.findings import Finding, Severity
from auditor.results.reading import Results
from tests.actions.test_gate import image_rows, write_results

runner = CliRunner()


def results_with_label_findings(directory: Path) -> Results:
    rows = image_rows({"a/1.png": ("s1", "cat"), "a/2.png": ("s2", "cat"), "b/3.png": ("s3", "dog"),
                       "b/4.png": ("s4", "dog"), "b/5.png": ("s5", "dog")})
    findings = [
        Finding(check="label_error", severity=Severity.WARNING, message="looks like dog", path="a/1.png",
                sha256="s1", label="cat", suggested_label="dog", score=0.9),
        Finding(check="ambiguous", severity=Severity.WARNING, message="split", path="a/1.png", sha256="s1",
                label="cat", classes=("cat", "dog"), score=0.3),
        Finding(check="ambiguous", severity=Severity.WARNING, message="split", path="b/3.png", sha256="s3",
                label="dog", classes=("cat", "dog"), score=0.2),
        Finding(check="label_error", severity=Severity.WARNING, message="reviewed", path="b/4.png", sha256="s4",
                label="dog", suggested_label="cat", score=0.8, waived=True, waiver={"reason": "fine"}),
        Finding(check="exact_duplicate", severity=Severity.WARNING, message="copy", path="b/5.png", sha256="s5",
                label="dog", group_id=0),
    ]
    return write_results(directory, findings, rows)


def assert_label_studio_task(task: dict[str, Any], from_name: str, to_name: str) -> None:
    """Label Studio's import format for an image classification task with a pre-annotation."""
    assert set(task) <= {"data", "predictions", "annotations", "meta"}
    assert isinstance(task["data"]["image"], str) and task["data"]["image"]
    for prediction in task["predictions"]:
        assert isinstance(prediction["model_version"], str) and isinstance(prediction["score"], float)
        for result in prediction["result"]:
            assert result["type"] == "choices"
            assert (result["from_name"], result["to_name"]) == (from_name, to_name)
            assert all(isinstance(c, str) for c in result["value"]["choices"])
    assert isinstance(task["meta"], dict)


def test_label_studio_tasks_follow_the_import_format(tmp_path: Path) -> None:
    results = results_with_label_findings(tmp_path / "r")
    tasks = label_studio_tasks(results, image_prefix="https://bucket/data/")
    for task in tasks:
        assert_label_studio_task(task, "label", "image")
    by_path = {task["data"]["path"]: task for task in tasks}
    assert set(by_path) == {"a/1.png", "b/3.png"}  # waived and non-label findings are not exported
    first = by_path["a/1.png"]
    assert first["data"]["image"] == "https://bucket/data/a/1.png"
    assert first["predictions"][0]["result"][0]["value"]["choices"] == ["cat"]  # the given label
    assert first["meta"]["suggested_label"] == "dog" and first["meta"]["score"] == 0.9
    assert first["meta"]["findings"] == ["label_error", "ambiguous"]
    assert by_path["b/3.png"]["meta"]["candidates"] == ["cat", "dog"]
    assert by_path["b/3.png"]["meta"]["suggested_label"] is None


def test_export_cli_writes_tasks_and_a_matching_labelling_config(tmp_path: Path) -> None:
    results_with_label_findings(tmp_path / "r")
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    run["dataset"] = {"classes": ["cat", "dog"]}
    (tmp_path / "r" / "run.json").write_text(json.dumps(run))
    result = runner.invoke(app, ["export", str(tmp_path / "r"), "--to", "label-studio", "--out",
                                 str(tmp_path / "tasks.json"), "--image-prefix", "/data/local-files/?d=pets/"])
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert len(tasks) == 2 and tasks[0]["data"]["image"].startswith("/data/local-files/?d=pets/")
    view = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
    choices = view.find("Choices")
    assert choices is not None and choices.get("name") == "label" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices] == ["cat", "dog"]
    assert view.find("Image").get("value") == "$image"  # type: ignore[union-attr]
    assert runner.invoke(app, ["export", str(tmp_path / "r"), "--to", "label-studio"]).exit_code != 0  # no --out


def test_fiftyone_records_carry_findings_as_tags_and_fields(tmp_path: Path) -> None:
    results = results_with_label_findings(tmp_path / "r")
    records = {Path(r["filepath"]).name: r for r in fiftyone_records(results, tmp_path / "data")}
    assert len(records) == 5
    assert records["1.png"]["tags"] == ["ambiguous", "label_error"]
    assert records["1.png"]["auditor_suggested_label"] == "dog" and records["1.png"]["auditor_max_score"] == 0.9
    assert records["4.png"]["tags"] == ["waived:label_error"] and records["4.png"]["auditor_findings"] == []
    assert records["2.png"]["tags"] == [] and records["2.png"]["auditor_max_score"] is None


def test_fiftyone_dataset(tmp_path: Path) -> None:
    fo = pytest.importorskip("fiftyone", reason="the optional fiftyone package is not installed here")
    results = results_with_label_findings(tmp_path / "r")
    try:
        dataset = to_fiftyone(fiftyone_records(results, tmp_path / "data"), "auditor-test")
    except Exception as exc:  # noqa: BLE001 - fiftyone's database may not start in a sandbox
        pytest.skip(f"fiftyone's database is unavailable: {exc}")
    assert len(dataset) == 5 and dataset.count_sample_tags()["label_error"] == 1
    fo.delete_dataset("auditor-test")


def test_label_studio_image_paths_are_url_encoded_keeping_separators(tmp_path: Path) -> None:
    path = "my cats/50% #1?.png"
    findings = [Finding(check="label_error", severity=Severity.WARNING, message="odd", path=path, sha256="s1",
                        label="cat", suggested_label="dog", score=0.9)]
    results = write_results(tmp_path / "r", findings, image_rows({path: ("s1", "cat")}))
    task = label_studio_tasks(results, image_prefix="/data/local-files/?d=pets/")[0]
    assert task["data"]["image"] == "/data/local-files/?d=pets/my%20cats/50%25%20%231%3F.png"
    assert task["data"]["path"] == path  # the path as in the findings, unchanged
