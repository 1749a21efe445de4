"""Reading a results folder written by ``audit scan`` (run.json + Parquet tables).

Shared by every reader (``audit gate``, ``audit report``) so that all of them refuse the same things:
an incomplete folder (no run.json: the scan never finished), tables from an incompatible schema, files
from two different scans (their run ids differ), or content that does not match the schema. Everything
is validated here, once, so a renderer or a gate rule never meets a malformed value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.core.errors import AuditorError
from auditor.results.decisions import Applied, Decision, apply_decisions, load_decisions, now_utc
from auditor.results.findings import (
    FINDINGS_FILE,
    FINDINGS_SCHEMA,
    IMAGES_BASE_SCHEMA,
    IMAGES_FILE,
    RESULT_SET_FILES,
    RUN_FILE,
    RUN_ID_KEY,
    RUN_ID_METADATA,
    SCHEMA_VERSION,
    Finding,
    FindingKind,
    Severity,
    plain,
)
from auditor.results.outputs import being_written
from auditor.results.summaries import Summary, SummaryError, read_summaries

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


class MixedResults(ResultsError):
    """The folder's files come from different scans: one is renaming its set into place, or was killed doing so."""


@dataclass(frozen=True)
class Results:
    """One scan's outputs. ``findings`` keeps the findings.parquet columns; ``classes`` holds tuples;
    ``summaries`` holds run.json's ``checks``, each parsed into its check's typed summary."""

    directory: Path
    run: dict[str, Any]
    findings: pd.DataFrame
    images: pd.DataFrame
    objects: tuple[Finding, ...] = ()
    summaries: dict[str, Summary] = field(default_factory=dict)

    def finding_objects(self) -> list[Finding]:
        """The findings as ``Finding`` objects, in file order (built and validated on load)."""
        return list(self.objects)

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


def _read_table(path: Path, schema: pa.Schema, exact: bool, run_id: str | None) -> pd.DataFrame:
    """Read one table and check it against ``schema`` (``exact``: no other columns allowed)."""
    if not path.is_file():
        raise ResultsError(f"{path.parent} is incomplete: {path.name} is missing")
    try:
        with open(path, "rb") as handle:  # pyarrow cannot encode a path under a non-UTF-8 folder name
            table = pq.read_table(handle)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    metadata = table.schema.metadata or {}
    version = metadata.get(b"auditor_schema_version", b"").decode(errors="replace")
    if _major(version) != _major(SCHEMA_VERSION):
        raise ResultsError(
            f"{path} has schema version {version or '(none)'}, this auditor reads {SCHEMA_VERSION}; "
            "re-run `audit scan` with this version"
        )
    table_run = metadata.get(RUN_ID_METADATA, b"").decode(errors="replace") or None
    if table_run != run_id:
        raise MixedResults(
            f"{path.parent} mixes files of different scans ({path.name} is not from the scan in {RUN_FILE}; "
            "a scan was killed while replacing it); re-run `audit scan`"
        )
    _check_columns(path, table.schema, schema, exact)
    for column in schema:
        if column.name in table.schema.names and not column.nullable and table.column(column.name).null_count:
            raise ResultsError(f"{path} is malformed: column {column.name} has nulls")
    return table.to_pandas()


# Columns added after schema 1.1; a 1.1 file without them is complete (nothing was waived).
_ADDED_COLUMNS = frozenset({"waived", "waiver"})


def _check_columns(path: Path, actual: pa.Schema, expected: pa.Schema, exact: bool) -> None:
    missing = [name for name in expected.names if name not in actual.names and name not in _ADDED_COLUMNS]
    extra = [name for name in actual.names if name not in expected.names]
    if missing or (exact and extra):
        what = "; ".join(part for part in (
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"unexpected column(s) {', '.join(extra)}" if exact and extra else "",
        ) if part)
        raise ResultsError(f"{path} is malformed: {what}")
    for column in expected:
        if column.name not in actual.names:
            continue
        found = actual.field(column.name).type
        if _plain(found) != _plain(column.type) and not (column.nullable and pa.types.is_null(found)):
            raise ResultsError(f"{path} is malformed: column {column.name} is {found}, expected {column.type}")


def _plain(kind: pa.DataType) -> str:
    """A type with the string/list width left out (pandas may write large_string) and no field names."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "string"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list<{_plain(kind.value_type)}>"
    return str(kind)


def _check_run(run_path: Path, run: Any) -> dict[str, Any]:
    """run.json must hold the sections every reader uses, each of the right JSON type."""
    if not isinstance(run, dict) or _major(str(run.get("schema_version", ""))) != _major(SCHEMA_VERSION):
        raise ResultsError(
            f"{run_path} has schema version {run.get('schema_version') if isinstance(run, dict) else None}, "
            f"this auditor reads {SCHEMA_VERSION}"
        )
    sections = (("dataset", dict), ("encoder", dict), ("checks", dict), ("warnings", list), ("check_info", dict),
                ("config", dict), ("decisions", dict), ("findings_per_check", dict))
    for key, kind in sections:
        if key in run and not isinstance(run[key], kind):
            raise ResultsError(f"{run_path} is malformed: {key!r} must be a JSON {_JSON[kind]}")
    dataset = run.get("dataset", {})
    for key, kind in (("classes", list), ("splits", list), ("counts", dict)):
        if key in dataset and not isinstance(dataset[key], kind):
            raise ResultsError(f"{run_path} is malformed: 'dataset.{key}' must be a JSON {_JSON[kind]}")
    if not all(isinstance(v, dict) for v in (dataset.get("counts") or {}).values()):
        raise ResultsError(f"{run_path} is malformed: 'dataset.counts' must map splits to objects")
    run_id = run.get(RUN_ID_KEY)
    if run_id is not None and not isinstance(run_id, str):
        raise ResultsError(f"{run_path} is malformed: {RUN_ID_KEY!r} must be a string")
    return run


def _read_json(path: Path) -> Any:
    """``path`` parsed as JSON; nesting deeper than the parser's recursion allows and an integer longer than
    Python converts are malformed input like a syntax error (exit 2), never a traceback."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ResultsError(f"{path} is not valid JSON: arrays or objects nested too deeply") from None
    except ValueError as exc:  # an integer beyond Python's digit limit for int()
        raise ResultsError(f"{path} is not valid JSON: {str(exc).split(';')[0]}") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


_JSON = {dict: "object", list: "array"}
# The images.parquet columns readers use; the others are for users' own analyses.
_IMAGES_READ = pa.schema([IMAGES_BASE_SCHEMA.field(name) for name in ("path", "label", "split", "sha256", "readable")])


# A scan renames its files into place in well under a second; a reader that meets a half-replaced set
# waits this long for it to be whole before saying so.
WAIT_FOR_WRITER_S = 2.0


def load_results(directory: Path) -> Results:
    """Load a results folder; raises ``ResultsError`` (exit code 2 at the CLI) when it is unusable.

    Files from two scans are read again while a live scan is still writing the set (up to
    ``WAIT_FOR_WRITER_S``), and once more in case it finished between the reads; only a set that stays mixed
    with no scan writing it was left by a killed scan.
    """
    directory = Path(directory)
    deadline = time.monotonic() + WAIT_FOR_WRITER_S
    # A writer seen gone after a mixed read may have finished its renames between that read and the look:
    # only a second mixed read with no writer in sight means a killed scan.
    idle_once = False
    while True:
        try:
            return _load(directory)
        except MixedResults:
            if not being_written(directory, RESULT_SET_FILES):
                if idle_once:
                    raise
                idle_once = True
            elif time.monotonic() >= deadline:
                raise ResultsError(f"a scan is writing the results in {directory}; try again when it has "
                                   "finished") from None
            else:
                idle_once = False
            time.sleep(0.05)


def _load(directory: Path) -> Results:
    if not directory.is_dir():
        raise ResultsError(f"results folder not found: {directory}")
    run_path = directory / RUN_FILE
    if not run_path.is_file():
        raise ResultsError(f"{directory} is not a complete auditor results folder (no {RUN_FILE})")
    run = _check_run(run_path, _read_json(run_path))
    try:
        summaries = read_summaries(run.get("checks") or {})
    except SummaryError as exc:
        raise ResultsError(f"{run_path} is malformed: {exc}") from None
    run_id = run.get(RUN_ID_KEY)
    findings = _read_table(directory / FINDINGS_FILE, FINDINGS_SCHEMA, True, run_id)
    findings["classes"] = [tuple(value) if value is not None else () for value in findings["classes"]]
    images = _read_table(directory / IMAGES_FILE, _IMAGES_READ, False, run_id)
    objects = []
    for number, row in enumerate(findings.to_dict("records"), start=1):
        try:
            objects.append(finding_from_row(row))
        except (ValueError, TypeError, KeyError) as exc:
            raise ResultsError(f"{directory / FINDINGS_FILE} is malformed: finding {number}: {exc}") from None
        except RecursionError:
            raise ResultsError(f"{directory / FINDINGS_FILE} is malformed: finding {number}: JSON nested too deeply"
                               ) from None
    return Results(directory, run, findings, images, tuple(objects), summaries)


def finding_from_row(row: dict[str, Any]) -> Finding:
    """Rebuild a ``Finding`` from one findings.parquet row (as a dict)."""
    details = json.loads(row.get("details") or "{}")
    if not isinstance(details, dict):
        raise ValueError("details is not a JSON object")
    group_id = plain(row.get("group_id"))
    return Finding(
        check=str(row["check"]),
        severity=Severity(row["severity"]),
        message=str(row["message"]),
        path=plain(row.get("path")),
        label=plain(row.get("label")),
        split=plain(row.get("split")),
        suggested_label=plain(row.get("suggested_label")),
        score=float(row["score"]),
        group_id=int(group_id) if group_id is not None else None,
        other_path=plain(row.get("other_path")),
        sha256=plain(row.get("sha256")),
        classes=tuple(row.get("classes") or ()),
        details=details,
        # Schema 1.1 files have no waiver columns: nothing was waived.
        waived=bool(plain(row.get("waived")) or False),
        waiver=json.loads(waiver) if isinstance(waiver := plain(row.get("waiver")), str) else None,
    )


def sha_by_path(images: pd.DataFrame) -> dict[str, str]:
    """Image path -> content hash, for the images that have one."""
    known = images[images["sha256"].notna()]
    return dict(zip(known["path"].astype(str), known["sha256"].astype(str), strict=True))


def with_decisions(results: Results, decisions: list[Decision], today: date) -> tuple[Results, Applied]:
    """``results`` with waivers from ``decisions`` as they are now instead of those the scan recorded, so
    a decision made in review counts before the next scan."""
    cleared = [replace(f, waived=False, waiver=None) for f in results.finding_objects()]
    kinds = {kind for produced in results.produces().values() for kind in produced}
    applied = apply_decisions(cleared, decisions, sha_by_path(results.images), today, kinds)
    findings = results.findings.copy()
    findings["waived"] = [f.waived for f in applied.findings]
    findings["waiver"] = [json.dumps(f.waiver, sort_keys=True) if f.waiver is not None else None
                          for f in applied.findings]
    return replace(results, findings=findings, objects=tuple(applied.findings)), applied


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
