"""The findings model and the versioned Parquet schemas of every output file.

Readers (`audit report`, `audit gate`, users' notebooks) rely on these columns, so any change to them
bumps ``SCHEMA_VERSION`` and is listed in the README and the changelog.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMA_VERSION = "1.3"
# Every file of a scan's result set carries its run id: run.json["run_id"], Parquet metadata auditor_run_id.
# The files of a result set, written by the scan and read by every reader.
RUN_FILE = "run.json"
FINDINGS_FILE = "findings.parquet"
IMAGES_FILE = "images.parquet"
EMBEDDINGS_FILE = "embeddings.parquet"
# The files `audit scan` writes as one set, renamed into place together; nothing else may replace them.
RESULT_SET_FILES = frozenset({RUN_FILE, FINDINGS_FILE, IMAGES_FILE, EMBEDDINGS_FILE})

RUN_ID_KEY = "run_id"
RUN_ID_METADATA = b"auditor_run_id"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: about an image (``path`` set) or about classes (``path`` None, ``classes`` set).

    ``score`` is higher for more likely real problems and comparable only within one check.
    """

    check: str
    severity: Severity
    message: str
    path: str | None = None
    label: str | None = None
    split: str | None = None
    suggested_label: str | None = None
    score: float = 1.0
    group_id: int | None = None
    other_path: str | None = None
    sha256: str | None = None
    classes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    # Accepted in review (``auditor.results.decisions``): kept in the results, not counted by the gate.
    waived: bool = False
    # The accepting decision (reason, who, when, expires) when waived.
    waiver: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.score):
            raise ValueError(f"{self.check}: score must be finite, got {self.score}")


# HTML layouts a finding kind can ask for (report/templates); any other kind is shown as "generic".
LAYOUTS = ("unreadable", "classes", "labels", "groups", "candidates", "images", "generic")


@dataclass(frozen=True)
class FindingKind:
    """How reports show one kind of finding; declared by the check that produces it, recorded in run.json.

    ``order``: position among the kinds in every report (lower first); ``layout``: one of ``LAYOUTS``.
    """

    title: str
    intro: str
    layout: str = "generic"
    order: int = 1000

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; one of {', '.join(LAYOUTS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "intro": self.intro, "layout": self.layout, "order": self.order}

    @classmethod
    def generic(cls, kind: str) -> FindingKind:
        """What a kind nobody described (an older run.json, a third-party check) is shown as."""
        return cls(kind.replace("_", " ").capitalize(), "")

    @classmethod
    def from_dict(cls, kind: str, data: Any) -> FindingKind:
        """Tolerant of hand-edited or older run.json: anything unusable falls back to ``generic``."""
        if not isinstance(data, dict):
            return cls.generic(kind)
        fallback = cls.generic(kind)
        layout = str(data.get("layout", "generic"))
        order = data.get("order", fallback.order)
        return cls(
            title=str(data.get("title") or fallback.title),
            intro=str(data.get("intro") or ""),
            layout=layout if layout in LAYOUTS else "generic",
            order=int(order) if isinstance(order, int | float) else fallback.order,
        )


FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("check", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("suggested_label", pa.string()),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("group_id", pa.int64()),
        pa.field("other_path", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("classes", pa.list_(pa.string()), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("details", pa.string(), nullable=False),
        pa.field("waived", pa.bool_(), nullable=False),
        pa.field("waiver", pa.string()),
    ],
    metadata={"auditor_schema_version": SCHEMA_VERSION, "auditor_table": "findings"},
)

# Columns every images.parquet has, first; then the pixel properties (``properties.PROPERTIES``, float64,
# NaN when unreadable), then what checks append (pred_label, label_quality, ...).
IMAGES_BASE_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("width", pa.int64()),
        pa.field("height", pa.int64()),
        pa.field("format", pa.string()),
        pa.field("mode", pa.string()),
        pa.field("readable", pa.bool_(), nullable=False),
        pa.field("unreadable_reason", pa.string()),
        pa.field("pixel_sha256", pa.string()),
        pa.field("phash", pa.string()),
        pa.field("dhash", pa.string()),
        pa.field("levelled_hash", pa.string()),
        pa.field("mirror_hash", pa.string()),
    ]
)


def findings_table(findings: list[Finding]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in FINDINGS_SCHEMA.names}
    for item in findings:
        columns["check"].append(item.check)
        columns["severity"].append(str(item.severity))
        columns["path"].append(item.path)
        columns["label"].append(item.label)
        columns["split"].append(item.split)
        columns["suggested_label"].append(item.suggested_label)
        columns["score"].append(float(item.score))
        columns["group_id"].append(item.group_id)
        columns["other_path"].append(item.other_path)
        columns["sha256"].append(item.sha256)
        columns["classes"].append(list(item.classes))
        columns["message"].append(item.message)
        columns["details"].append(json.dumps(item.details, sort_keys=True, default=_json_default))
        columns["waived"].append(item.waived)
        columns["waiver"].append(json.dumps(item.waiver, sort_keys=True) if item.waiver is not None else None)
    return pa.Table.from_pydict(columns, schema=FINDINGS_SCHEMA)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays appear in details; JSON has no such types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def embeddings_schema(dim: int, encoder_identity: str) -> pa.Schema:
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("sha256", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        ],
        metadata={
            "auditor_schema_version": SCHEMA_VERSION,
            "auditor_table": "embeddings",
            "encoder": encoder_identity,
        },
    )


def plain(value: Any) -> Any:
    """pandas NA/NaN -> None and numpy scalars -> Python: a finding field or JSON detail as Parquet and JSON want
    it, whether it comes from a check's DataFrame or back from a Parquet file (nulls arrive as None or NaN)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
