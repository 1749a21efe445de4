"""The findings model and its Parquet form: what a scan writes is what every reader gets back."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from auditor.results.findings import (
    FINDINGS_SCHEMA,
    SCHEMA_VERSION,
    Finding,
    FindingKind,
    Severity,
    embeddings_schema,
    findings_table,
)
from auditor.results.reading import finding_from_row


def test_a_finding_survives_its_table_row_unchanged() -> None:
    finding = Finding(check="near_duplicate", severity=Severity.WARNING, message="copies", path="a.png",
                      label="cat", split="train", suggested_label="dog", score=0.5, group_id=3, other_path="b.png",
                      sha256="a" * 64, classes=("cat", "dog"), details={"distance": 1.5}, waived=True,
                      waiver={"reason": "kept", "who": "ana"})
    table = findings_table([finding])
    assert table.schema.equals(FINDINGS_SCHEMA, check_metadata=True)
    assert table.schema.metadata[b"auditor_schema_version"].decode() == SCHEMA_VERSION
    [row] = table.to_pylist()
    assert finding_from_row(row) == finding


def test_details_with_numpy_values_are_written_as_json() -> None:
    finding = Finding(check="outlier", severity=Severity.INFO, message="far",
                      details={"distance": np.float32(0.25), "rank": np.int64(2), "near": np.array([1, 2])})
    [row] = findings_table([finding]).to_pylist()
    assert json.loads(row["details"]) == {"distance": 0.25, "near": [1, 2], "rank": 2}
    assert row["classes"] == [] and row["waiver"] is None and row["severity"] == "info"


def test_a_score_must_be_finite() -> None:
    with pytest.raises(ValueError, match="outlier: score must be finite, got nan"):
        Finding(check="outlier", severity=Severity.INFO, message="far", score=float("nan"))


def test_finding_kinds_read_back_tolerantly() -> None:
    kind = FindingKind("Label errors", "Images filed under the wrong class.", layout="labels", order=3)
    assert FindingKind.from_dict("label_error", kind.to_dict()) == kind
    assert FindingKind.generic("split_leakage") == FindingKind("Split leakage", "")
    assert FindingKind.from_dict("odd_kind", "not a dict") == FindingKind("Odd kind", "")
    assert FindingKind.from_dict("x", {"layout": "bogus", "order": "first"}) == FindingKind("X", "")
    with pytest.raises(ValueError, match="unknown layout 'bogus'"):
        FindingKind("T", "", layout="bogus")


def test_the_embeddings_schema_names_its_encoder_and_fixes_the_dimension() -> None:
    schema = embeddings_schema(4, "builtin:v2")
    assert schema.field("embedding").type == pa.list_(pa.float32(), 4)
    assert schema.metadata[b"encoder"] == b"builtin:v2"
    assert schema.metadata[b"auditor_table"] == b"embeddings"
