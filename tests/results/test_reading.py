"""Reading a results folder: one complete set from one scan loads; anything else is refused with the reason."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from auditor.results import reading
from auditor.results.findings import SCHEMA_VERSION, Finding, Severity, findings_table
from auditor.results.outputs import StagedWrite, json_writer, new_run_id, parquet_writer, write_parquet
from auditor.results.reading import ResultsError, describe_encoder, load_results, sha_by_path

FINDING = Finding(check="unreadable", severity=Severity.ERROR, message="unreadable: empty file", path="b.png",
                  label="dog", details={"reason": "empty file"})


def _images() -> pa.Table:
    columns = {
        "path": pa.array(["a.png", "b.png"]),
        "label": pa.array(["cat", "dog"]),
        "split": pa.array([None, None], pa.string()),
        "sha256": pa.array(["a" * 64, None], pa.string()),
        "readable": pa.array([True, False]),
    }
    return pa.table(columns).replace_schema_metadata({"auditor_schema_version": SCHEMA_VERSION,
                                                      "auditor_table": "images"})


def _write_set(directory: Path, run: dict[str, object] | None = None) -> None:
    with StagedWrite(new_run_id()) as staged:
        staged.add(directory / "findings.parquet", parquet_writer(findings_table([FINDING])))
        staged.add(directory / "images.parquet", parquet_writer(_images()))
        staged.add(directory / "run.json", json_writer(run or {"schema_version": SCHEMA_VERSION, "checks": {}}))
        staged.commit()


def _replace_findings(directory: Path, table: pa.Table) -> None:
    """Put ``table`` in place of findings.parquet, stamped as part of the folder's scan."""
    run_id = json.loads((directory / "run.json").read_text())["run_id"]
    write_parquet(directory / "findings.parquet", table.replace_schema_metadata(
        {"auditor_schema_version": SCHEMA_VERSION, "auditor_run_id": run_id}))


def _with_details(table: pa.Table, details: str) -> pa.Table:
    return table.set_column(table.schema.get_field_index("details"), "details", pa.array([details] * len(table)))


def test_a_complete_set_loads_with_its_findings_as_objects(tmp_path: Path) -> None:
    _write_set(tmp_path)
    results = load_results(tmp_path)
    assert results.finding_objects() == [FINDING]
    assert results.images["path"].tolist() == ["a.png", "b.png"]
    assert sha_by_path(results.images) == {"a.png": "a" * 64}


def test_files_from_two_scans_are_refused(tmp_path: Path) -> None:
    _write_set(tmp_path)
    newer = tmp_path / "newer"
    _write_set(newer)
    (tmp_path / "images.parquet").write_bytes((newer / "images.parquet").read_bytes())
    with pytest.raises(ResultsError, match=r"mixes files of different scans \(images.parquet is not from the scan"):
        load_results(tmp_path)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda d: (d / "run.json").unlink(), "is not a complete auditor results folder (no run.json)"),
        (lambda d: (d / "run.json").write_text("{"), "run.json is not valid JSON"),
        (lambda d: (d / "images.parquet").unlink(), "is incomplete: images.parquet is missing"),
        (lambda d: (d / "run.json").write_text(json.dumps({"schema_version": "0.9"})),
         f"has schema version 0.9, this auditor reads {SCHEMA_VERSION}"),
        (lambda d: (d / "run.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "warnings": "x"})),
         "is malformed: 'warnings' must be a JSON array"),
        (lambda d: _replace_findings(d, pa.table({"check": ["x"]})), "is malformed: missing column(s) severity"),
        (lambda d: (d / "run.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
         "run.json is not valid JSON: arrays or objects nested too deeply"),
        (lambda d: (d / "run.json").write_text('{"a": ' + "9" * 5001 + "}"),
         "run.json is not valid JSON: Exceeds the limit (4300 digits) for integer string conversion"),
        (lambda d: (d / "run.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "check_info": "x"})),
         "is malformed: 'check_info' must be a JSON object"),
        (lambda d: (d / "run.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "decisions": "x"})),
         "is malformed: 'decisions' must be a JSON object"),
        (lambda d: _replace_findings(d, _with_details(findings_table([FINDING]), "[" * 100_000 + "]" * 100_000)),
         "findings.parquet is malformed: finding 1: JSON nested too deeply"),
    ],
    ids=["no-run", "bad-json", "no-images", "old-schema", "warnings-not-array", "missing-column", "run-nested-100k",
         "run-5001-digits", "check-info-not-object", "decisions-not-object", "details-nested-100k"],
)
def test_an_unusable_folder_is_refused_with_the_reason(tmp_path: Path, spoil: object, reason: str) -> None:
    _write_set(tmp_path)
    assert callable(spoil)
    spoil(tmp_path)
    with pytest.raises(ResultsError) as raised:
        load_results(tmp_path)
    assert reason in str(raised.value)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="results folder not found"):
        load_results(tmp_path / "nowhere")


def test_the_encoder_line_names_a_fallback() -> None:
    assert describe_encoder({"encoder": {"identity": "clip:ViT-B-32", "name": "clip", "requested": "clip",
                                         "pretrained": True}}) == "clip:ViT-B-32 (pretrained)"
    assert describe_encoder({"encoder": {"identity": "builtin:v2", "name": "builtin", "requested": "clip"}}) == (
        "builtin:v2 (not pretrained, requested clip)")
    assert describe_encoder({}) == "unknown (not pretrained)"


def _half_replaced(directory: Path) -> Path:
    """A set whose run.json and findings are a newer scan's, while images.parquet still waits in a temporary
    of this (live) process, as mid-way through a scan's renames; returns that temporary."""
    _write_set(directory)
    newer = directory / "newer"
    _write_set(newer)
    for name in ("findings.parquet", "run.json"):
        (directory / name).write_bytes((newer / name).read_bytes())
    waiting = directory / f".images.parquet.{os.getpid()}.x1y2.tmp"
    waiting.write_bytes((newer / "images.parquet").read_bytes())
    return waiting


def test_a_set_being_renamed_into_place_is_read_once_it_is_whole(tmp_path: Path) -> None:
    waiting = _half_replaced(tmp_path)
    renamer = threading.Timer(0.3, os.replace, (waiting, tmp_path / "images.parquet"))
    renamer.start()
    try:
        assert load_results(tmp_path).finding_objects() == [FINDING]
    finally:
        renamer.join()


def test_a_scan_still_writing_is_told_apart_from_a_killed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "WAIT_FOR_WRITER_S", 0.3)
    waiting = _half_replaced(tmp_path)
    with pytest.raises(ResultsError, match="a scan is writing the results in .*; try again") as writing:
        load_results(tmp_path)
    assert "killed" not in str(writing.value)
    waiting.unlink()  # the writer is gone: the set stays mixed for good
    with pytest.raises(ResultsError, match="a scan was killed while replacing it"):
        load_results(tmp_path)
