"""``audit fix``: a cleaned manifest (``path,label,split``) from a scan's findings and the reviewed decisions.

The dataset folder is never touched: the fix is a new manifest that ``audit scan --manifest`` (and any
training code) reads, plus a change log saying what changed and why, so every removal can be undone.
Waived findings are left alone (a reviewer said the data is right as it is).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.core.config import did_you_mean
from auditor.core.errors import AuditorError
from auditor.results.decisions import Decision
from auditor.results.findings import Finding
from auditor.results.outputs import Writer, write_together
from auditor.results.reading import Results

DUPLICATE_KINDS = ("exact_duplicate", "near_duplicate")
LEAKAGE = "split_leakage"
# Which copy of a leaked image stays: the first of these splits the copies are in (training data is what
# evaluation copies leak from). Splits not named here come after them, alphabetically.
DEFAULT_SPLIT_PRIORITY = ("train", "dev", "val", "valid", "validation", "test")
CHANGE_COLUMNS = ["action", "path", "split", "label", "new_label", "kind", "score", "reason"]


@dataclass(frozen=True)
class FixOptions:
    """What to apply. ``relabel_above``: also relabel label_error findings scoring at least this (0..1);
    None: only the relabels decided in review."""

    dedupe: tuple[str, ...] = DUPLICATE_KINDS
    leakage: bool = True
    split_priority: tuple[str, ...] = DEFAULT_SPLIT_PRIORITY
    relabel_above: float | None = None
    drop: tuple[str, ...] = ("unreadable",)


@dataclass
class Fix:
    """The cleaned manifest and every change made to get it."""

    manifest: pd.DataFrame
    changes: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> list[tuple[str, str, int]]:
        """(action, kind, count) rows, most frequent first."""
        counts = Counter((str(c["action"]), str(c["kind"])) for c in self.changes)
        return [(action, kind, n) for (action, kind), n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]


def _rank(split: str | None, priority: tuple[str, ...]) -> tuple[int, str]:
    name = split or ""
    return (priority.index(name) if name in priority else len(priority), name)


def _keeper(paths: Iterable[str]) -> str:
    """Deterministic: the shortest path (usually the original, not `_copy`/`_resized`), then alphabetical."""
    return min(paths, key=lambda p: (len(p), p))


def plan_fix(results: Results, decisions: list[Decision], options: FixOptions, today: date) -> Fix:
    """Apply ``options`` and the ``relabel`` decisions to the scanned images; pure (writes nothing)."""
    _refuse_unknown_kinds(options.drop, results)
    images = results.images
    rows: dict[str, dict[str, Any]] = {
        str(r["path"]): {"path": str(r["path"]), "label": _text(r["label"]), "split": _text(r["split"]),
                         "sha256": _text(r["sha256"]), "readable": bool(r["readable"]),
                         "reason": _text(r.get("unreadable_reason"))}
        for r in images.to_dict("records")
    }
    findings = [f for f in results.finding_objects() if not f.waived]
    fix = Fix(manifest=pd.DataFrame())
    dropped: set[str] = set()

    def drop(path: str, kind: str, reason: str, score: float | None = None) -> None:
        if path in dropped or path not in rows:
            return
        dropped.add(path)
        row = rows[path]
        fix.changes.append({"action": "drop", "path": path, "split": row["split"], "label": row["label"],
                            "new_label": None, "kind": kind, "score": score, "reason": reason})

    if "unreadable" in options.drop:
        for path, row in rows.items():
            if not row["readable"]:
                drop(path, "unreadable", str(row["reason"] or "unreadable"))
    for finding in findings:
        if finding.path and finding.check in options.drop and finding.check != "unreadable":
            drop(finding.path, finding.check, finding.message, finding.score)
    _dedupe(findings, results, options, dropped, drop)
    _relabel(findings, decisions, options, rows, dropped, fix, today)

    kept = [rows[p] for p in rows if p not in dropped]
    fix.manifest = pd.DataFrame(
        {"path": [r["path"] for r in kept], "label": [r["label"] or "" for r in kept],
         "split": [r["split"] or "" for r in kept]},
        columns=["path", "label", "split"],
    )
    return fix


def _refuse_unknown_kinds(drop: tuple[str, ...], results: Results) -> None:
    """A ``--drop`` kind no check produces would drop nothing, silently (``outliers`` for ``outlier``)."""
    known = sorted({kind for kinds in results.produces().values() for kind in kinds} | {"unreadable"})
    unknown = [kind for kind in dict.fromkeys(drop) if kind not in known]
    if unknown:
        parts = ", ".join(f"{kind!r}{did_you_mean(kind, known)}" for kind in unknown)
        raise AuditorError(f"--drop: unknown finding kind {parts}; valid kinds: {', '.join(known)}")


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _dedupe(findings: list[Finding], results: Results, options: FixOptions, dropped: set[str],
            drop: Callable[[str, str, str, float | None], None]) -> None:
    """One image per duplicate group; a leaked image keeps only its copies in the winning split."""
    groups: dict[tuple[str, int], list[Finding]] = {}
    waived_groups = {(f.check, f.group_id) for f in results.finding_objects() if f.waived}
    for finding in findings:
        if finding.group_id is not None and finding.path and finding.check in (*DUPLICATE_KINDS, LEAKAGE):
            groups.setdefault((finding.check, finding.group_id), []).append(finding)
    for (kind, group_id), members in sorted(groups.items()):
        if (kind, group_id) in waived_groups:  # a reviewer accepted part of this group: leave all of it
            continue
        alive = [f for f in members if f.path not in dropped]
        if kind == LEAKAGE:
            if not options.leakage:
                continue
            winner = min((f.split for f in alive), key=lambda s: _rank(s, options.split_priority), default=None)
            staying = [f for f in alive if f.split == winner]
            for finding in alive:
                if finding.split != winner:
                    drop(str(finding.path), kind, f"leaked copy: the copy in split {winner} is kept "
                         f"({_keeper(str(f.path) for f in staying)})", finding.score)
            alive = staying
        elif kind not in options.dedupe:
            continue
        if len(alive) < 2:
            continue
        kept = _keeper(str(f.path) for f in alive)
        for finding in alive:
            if finding.path != kept:
                drop(str(finding.path), kind, f"duplicate of {kept} (kept)", finding.score)


def _relabel(findings: list[Finding], decisions: list[Decision], options: FixOptions,
             rows: dict[str, dict[str, Any]], dropped: set[str], fix: Fix, today: date) -> None:
    """Reviewed relabels (by content, while the label is still the one reviewed), then, above
    ``relabel_above``, the label_error findings' suggestions."""
    targets: dict[str, tuple[str, str, float | None]] = {}
    if options.relabel_above is not None:
        for finding in findings:
            if (finding.check == "label_error" and finding.path and finding.suggested_label
                    and finding.score >= options.relabel_above):
                targets[finding.path] = (finding.suggested_label, f"label_error score {finding.score:.3g} >= "
                                         f"{options.relabel_above:g}: {finding.message}", finding.score)
    for decision in decisions:
        if decision.action != "relabel" or decision.expired(today) or decision.new_label is None:
            continue
        for path, row in rows.items():
            if row["sha256"] == decision.sha256 and (decision.label is None or row["label"] == decision.label):
                targets[path] = (decision.new_label, f"reviewed by {decision.who}: {decision.reason}", None)
    for path, (new_label, reason, score) in sorted(targets.items()):
        row = rows[path]
        if path in dropped or row["label"] == new_label:
            continue
        fix.changes.append({"action": "relabel", "path": path, "split": row["split"], "label": row["label"],
                            "new_label": new_label, "kind": "label_error", "score": score, "reason": reason})
        row["label"] = new_label


def change_log_path(manifest: Path) -> Path:
    return manifest.with_name(f"{manifest.stem}.changes.csv")


def write_fix(fix: Fix, out: Path) -> Path:
    """Write the manifest (.csv or .parquet) and its change log beside it; returns the log's path.

    Both are written to temporaries and renamed into place together: a manifest without the log saying why
    images went missing is never left behind."""
    suffix = out.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise AuditorError(f"--out must end in .csv or .parquet, got {out.name}")
    manifest = fix.manifest
    log = change_log_path(out)
    changes = pd.DataFrame(fix.changes, columns=CHANGE_COLUMNS)
    write_manifest: Writer = ((lambda tmp: manifest.to_csv(tmp, index=False)) if suffix == ".csv"
                              else (lambda tmp: manifest.to_parquet(tmp, index=False)))
    write_together({out: write_manifest, log: lambda tmp: changes.to_csv(tmp, index=False)})
    return log
