"""Reading a results folder written by ``audit scan`` (run.json + Parquet tables).

Shared by every reader (``audit gate``, ``audit report``) so that all of them refuse the same things:
an incomplete folder (no run.json: the scan never finished), or tables from an incompatible schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from auditor.decisions import Applied, Decision, apply_decisions, load_decisions, now_utc
from auditor.errors import AuditorError
from auditor.findings import SCHEMA_VERSION, Finding, FindingKind, Severity

RUN_FILE = "run.json"
FINDINGS_FILE = "findings.parquet"
IMAGES_FILE = "images.parquet"
# Warnings that change how every finding should be read (a weaker encoder ran, the model-based checks
# found their evidence unreliable): summaries and reports show them more prominently than the rest.
PROMINENT_WARNINGS = ("fell back", "untrained", "unreliable")

# run.json files written before ``check_info`` existed came from these checks: readers assume them, so older
# results still show their kinds in the usual order and layout, and a check that did not run still explains
# its missing findings. A frozen copy of ``auditor.checks.check_record()`` at the time; never extended.
_CHECK_INFO_BEFORE_IT_WAS_RECORDED: dict[str, Any] = {
    "unreadable": {
        "produces": ["unreadable"],
        "kinds": {
            "unreadable": {
                "title": "Unreadable files", "layout": "unreadable", "order": 0,
                "intro": "Files that could not be decoded; they were left out of every other check.",
            },
        },
    },
    "class_imbalance": {
        "produces": ["class_imbalance"],
        "kinds": {
            "class_imbalance": {
                "title": "Class imbalance", "layout": "classes", "order": 1,
                "intro": "Classes with far fewer images than the others in a split.",
            },
        },
    },
    "duplicates": {
        "produces": ["exact_duplicate", "near_duplicate", "split_leakage"],
        "kinds": {
            "exact_duplicate": {
                "title": "Exact duplicates", "layout": "groups", "order": 5,
                "intro": "Byte-identical or pixel-identical copies within a split.",
            },
            "near_duplicate": {
                "title": "Near duplicates", "layout": "groups", "order": 6,
                "intro": "Visually near-identical images (re-encoded, resized, slightly edited).",
            },
            "split_leakage": {
                "title": "Leakage between splits", "layout": "groups", "order": 4,
                "intro": "The same image in more than one split; each group is one image content.",
            },
        },
    },
    "label_errors": {
        "produces": ["label_error"],
        "kinds": {
            "label_error": {
                "title": "Label errors", "layout": "labels", "order": 2,
                "intro": "Images whose content looks like another class: given label → suggested label.",
            },
        },
    },
    "class_overlap": {
        "produces": ["class_overlap"],
        "kinds": {
            "class_overlap": {
                "title": "Overlapping classes", "layout": "classes", "order": 3,
                "intro": "Pairs of classes the embeddings cannot tell apart.",
            },
        },
    },
    "ambiguous": {
        "produces": ["ambiguous"],
        "kinds": {
            "ambiguous": {
                "title": "Ambiguous images", "layout": "candidates", "order": 7,
                "intro": "Images whose evidence is split between several classes (candidates shown).",
            },
        },
    },
    "outliers": {
        "produces": ["outlier"],
        "kinds": {
            "outlier": {
                "title": "Outliers", "layout": "images", "order": 8,
                "intro": "Images far from every class in the dataset (blank, noise, another domain).",
            },
        },
    },
}


class ResultsError(AuditorError):
    """A results folder is missing, incomplete, or from an incompatible schema version."""


@dataclass(frozen=True)
class Results:
    """One scan's outputs. ``findings`` keeps the findings.parquet columns; ``classes`` holds tuples."""

    directory: Path
    run: dict[str, Any]
    findings: pd.DataFrame
    images: pd.DataFrame

    def finding_objects(self) -> list[Finding]:
        """The findings as ``Finding`` objects, in file order."""
        return [finding_from_row(row) for row in self.findings.to_dict("records")]

    def produces(self) -> dict[str, tuple[str, ...]]:
        """Check name -> the finding kinds it produces, as run.json recorded (see ``checks.check_record``)."""
        return produced_kinds(self.run)

    def kinds(self) -> dict[str, FindingKind]:
        """Finding kind -> how reports show it, for every kind run.json describes."""
        return finding_kinds(self.run)


def _check_info(run: dict[str, Any]) -> dict[str, Any]:
    info = run.get("check_info")
    return info if isinstance(info, dict) else _CHECK_INFO_BEFORE_IT_WAS_RECORDED


def produced_kinds(run: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Check name -> finding kinds, for every check run.json knows (recorded, or that ran or was skipped)."""
    info = _check_info(run)
    names = [*info, *(str(name) for name in run.get("checks") or {} if name not in info)]
    produced: dict[str, tuple[str, ...]] = {}
    for name in names:
        entry = info.get(name)
        kinds = entry.get("produces") if isinstance(entry, dict) else entry
        if isinstance(kinds, list | tuple) and kinds:
            produced[name] = tuple(str(kind) for kind in kinds)
        else:
            produced[name] = (name,)
    return produced


def finding_kinds(run: dict[str, Any]) -> dict[str, FindingKind]:
    """Finding kind -> its report metadata from run.json; kinds it does not describe are left out
    (readers show them with ``FindingKind.generic``)."""
    kinds: dict[str, FindingKind] = {}
    for entry in _check_info(run).values():
        described = entry.get("kinds") if isinstance(entry, dict) else None
        if isinstance(described, dict):
            for kind, data in described.items():
                kinds[str(kind)] = FindingKind.from_dict(str(kind), data)
    return kinds


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ResultsError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    metadata = table.schema.metadata or {}
    version = metadata.get(b"auditor_schema_version", b"").decode()
    if _major(version) != _major(SCHEMA_VERSION):
        raise ResultsError(
            f"{path} has schema version {version or '(none)'}, this auditor reads {SCHEMA_VERSION}; "
            "re-run `audit scan` with this version"
        )
    return table.to_pandas()


def load_results(directory: Path) -> Results:
    """Load a results folder; raises ``ResultsError`` (exit code 2 at the CLI) when it is unusable."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(f"results folder not found: {directory}")
    run_path = directory / RUN_FILE
    if not run_path.is_file():
        raise ResultsError(f"{directory} is not a complete auditor results folder (no {RUN_FILE})")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{run_path} is not valid JSON: {exc}") from None
    if not isinstance(run, dict) or _major(str(run.get("schema_version", ""))) != _major(SCHEMA_VERSION):
        raise ResultsError(
            f"{run_path} has schema version {run.get('schema_version') if isinstance(run, dict) else None}, "
            f"this auditor reads {SCHEMA_VERSION}"
        )
    findings = _read_table(directory / FINDINGS_FILE)
    findings["classes"] = [tuple(value) if value is not None else () for value in findings["classes"]]
    images = _read_table(directory / IMAGES_FILE)
    return Results(directory, run, findings, images)


def _optional(value: Any) -> Any:
    """Parquet nulls arrive as None or NaN depending on the column type."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def finding_from_row(row: dict[str, Any]) -> Finding:
    """Rebuild a ``Finding`` from one findings.parquet row (as a dict)."""
    details = row.get("details") or "{}"
    group_id = _optional(row.get("group_id"))
    return Finding(
        check=str(row["check"]),
        severity=Severity(row["severity"]),
        message=str(row["message"]),
        path=_optional(row.get("path")),
        label=_optional(row.get("label")),
        split=_optional(row.get("split")),
        suggested_label=_optional(row.get("suggested_label")),
        score=float(row["score"]),
        group_id=int(group_id) if group_id is not None else None,
        other_path=_optional(row.get("other_path")),
        sha256=_optional(row.get("sha256")),
        classes=tuple(row.get("classes") or ()),
        details=json.loads(details) if isinstance(details, str) else dict(details),
        # Schema 1.1 files have no waiver columns: nothing was waived.
        waived=bool(_optional(row.get("waived")) or False),
        waiver=json.loads(waiver) if isinstance(waiver := _optional(row.get("waiver")), str) else None,
    )


def sha_by_path(images: pd.DataFrame) -> dict[str, str]:
    """Image path -> content hash, for the images that have one."""
    known = images[images["sha256"].notna()]
    return dict(zip(known["path"].astype(str), known["sha256"].astype(str), strict=True))


def with_decisions(results: Results, decisions: list[Decision], today: date) -> tuple[Results, Applied]:
    """``results`` with waivers from ``decisions`` as they are now instead of those the scan recorded, so
    a decision made in review counts before the next scan."""
    cleared = [replace(f, waived=False, waiver=None) for f in results.finding_objects()]
    applied = apply_decisions(cleared, decisions, sha_by_path(results.images), today)
    findings = results.findings.copy()
    findings["waived"] = [f.waived for f in applied.findings]
    findings["waiver"] = [json.dumps(f.waiver, sort_keys=True) if f.waiver is not None else None
                          for f in applied.findings]
    return replace(results, findings=findings), applied


def recorded_decisions_file(results: Results) -> Path | None:
    """The decisions file the scan read (run.json), when it exists now."""
    recorded = (results.run.get("decisions") or {}).get("file")
    return Path(recorded) if recorded and Path(recorded).is_file() else None


def with_current_decisions(results: Results) -> Results:
    """``results`` with the waivers of the decisions file the scan read, as that file is now (unchanged
    when it is gone): readers then agree with the gate about what review accepted since the scan."""
    path = recorded_decisions_file(results)
    if path is None:
        return results
    return with_decisions(results, load_decisions(path), now_utc().date())[0]


def describe_encoder(run: dict[str, Any]) -> str:
    """One line naming the encoder that really ran, so no report or verdict hides a weak fallback."""
    encoder = run.get("encoder") or {}
    identity = encoder.get("identity") or encoder.get("name") or "unknown"
    trained = "pretrained" if encoder.get("pretrained") else "not pretrained"
    requested = encoder.get("requested")
    asked = f", requested {requested}" if requested and requested != encoder.get("name") else ""
    return f"{identity} ({trained}{asked})"
