"""``audit fix``: a cleaned manifest (``path,label,split``) from a scan's findings and the reviewed decisions.

The dataset folder is never touched: the fix is a new manifest that ``audit scan --manifest`` (and any
training code) reads, plus a change log saying what changed, why, and on which witness, so every removal can be
undone. Waived findings are left alone (a reviewer said the data is right as it is).

A copy is dropped by default only when it is certain: identical content, or a group every pair of which two
independent witnesses (the hashes and the embedding) vouch for. One witness alone has vouched for two different
photos of one subject, so such copies stay unless ``drop_weak`` asks; copies filed under different labels are a
label conflict, which only a person can resolve, and are never dropped here (listed for review instead).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.core.config import did_you_mean
from auditor.core.errors import AuditorError
from auditor.results.decisions import Decision
from auditor.results.findings import Finding, Severity
from auditor.results.outputs import Writer, write_together
from auditor.results.reading import Results

DUPLICATE_KINDS = ("exact_duplicate", "near_duplicate")
LEAKAGE = "split_leakage"
# Which copy of a leaked image stays: the first of these splits the copies are in (training data is what
# evaluation copies leak from). Splits not named here come after them, alphabetically.
DEFAULT_SPLIT_PRIORITY = ("train", "dev", "val", "valid", "validation", "test")
CHANGE_COLUMNS = ["action", "path", "split", "label", "new_label", "kind", "score", "witness", "reason"]
# A duplicates group's recorded evidence (``details.group_evidence``: its weakest pair) that makes every pair
# of it certain: identical content, or the hashes and the embedding agreeing.
CERTAIN_EVIDENCE = ("identical", "hash+embedding")
IDENTICAL_METHODS = ("sha256", "pixels")


@dataclass(frozen=True)
class FixOptions:
    """What to apply. ``relabel_above``: also relabel label_error findings scoring at least this (0..1);
    None: only the relabels decided in review. ``drop_weak``: also drop copies only one witness vouches for
    (within one label; copies under different labels are never dropped)."""

    dedupe: tuple[str, ...] = DUPLICATE_KINDS
    leakage: bool = True
    split_priority: tuple[str, ...] = DEFAULT_SPLIT_PRIORITY
    relabel_above: float | None = None
    drop: tuple[str, ...] = ("unreadable",)
    drop_weak: bool = False


@dataclass
class Fix:
    """The cleaned manifest and every change made to get it; ``changes`` also lists the copies left in on
    purpose: ``review`` (filed under different labels: a label conflict) and ``keep`` (one witness only)."""

    manifest: pd.DataFrame
    changes: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> list[tuple[str, str, int]]:
        """(action, kind, count) rows, most frequent first."""
        counts = Counter((str(c["action"]), str(c["kind"])) for c in self.changes)
        return [(action, kind, n) for (action, kind), n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]

    def left_in(self) -> dict[str, int]:
        """How many copies were left in on purpose: ``review`` (a label conflict), ``keep`` (one witness only)."""
        counts = Counter(str(c["action"]) for c in self.changes)
        return {action: counts[action] for action in ("review", "keep")}


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
    log = _ChangeLog(rows, fix.changes)

    if "unreadable" in options.drop:
        for path, row in rows.items():
            if not row["readable"]:
                log.drop(path, "unreadable", str(row["reason"] or "unreadable"), None, "decoding")
    for finding in findings:
        if finding.path and finding.check in options.drop and finding.check != "unreadable":
            log.drop(finding.path, finding.check, finding.message, finding.score, f"--drop {finding.check}")
    _dedupe(findings, results, options, log)
    _relabel(findings, decisions, options, rows, log.dropped, fix, today)

    kept = [rows[p] for p in rows if p not in log.dropped]
    fix.manifest = pd.DataFrame(
        {"path": [r["path"] for r in kept], "label": [r["label"] or "" for r in kept],
         "split": [r["split"] or "" for r in kept]},
        columns=["path", "label", "split"],
    )
    return fix


@dataclass
class _ChangeLog:
    """The scanned images (path -> row) and the change log being written: what is dropped, and the copies
    left in on purpose."""

    rows: dict[str, dict[str, Any]]
    changes: list[dict[str, object]]
    dropped: set[str] = field(default_factory=set)

    def drop(self, path: str, kind: str, reason: str, score: float | None, witness: str) -> None:
        if path in self.dropped or path not in self.rows:
            return
        self.dropped.add(path)
        self.note("drop", path, kind, reason, score, witness)

    def note(self, action: str, path: str, kind: str, reason: str, score: float | None, witness: str) -> None:
        row = self.rows[path]
        self.changes.append({"action": action, "path": path, "split": row["split"], "label": row["label"],
                             "new_label": None, "kind": kind, "score": score, "witness": witness,
                             "reason": reason})


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


def _dedupe(findings: list[Finding], results: Results, options: FixOptions, log: _ChangeLog) -> None:
    """Resolve every unwaived copy group the options cover (``_resolve``)."""
    groups: dict[tuple[str, int], list[Finding]] = {}
    waived_groups = {(f.check, f.group_id) for f in results.finding_objects() if f.waived}
    for finding in findings:
        if finding.group_id is not None and finding.path and finding.check in (*DUPLICATE_KINDS, LEAKAGE):
            groups.setdefault((finding.check, finding.group_id), []).append(finding)
    for (kind, group_id), members in sorted(groups.items()):
        if (kind, group_id) in waived_groups:  # a reviewer accepted part of this group: leave all of it
            continue
        if (kind == LEAKAGE and not options.leakage) or (kind != LEAKAGE and kind not in options.dedupe):
            continue
        _resolve(kind, [f for f in members if f.path not in log.dropped and f.path in log.rows], options, log)


def _resolve(kind: str, group: list[Finding], options: FixOptions, log: _ChangeLog) -> None:
    """One image per set of certain copies; a leaked image keeps only its copies in the winning split.

    Certain: the whole group when it is under one label and ``_certain`` (or ``drop_weak`` asks), else only its
    identical copies under one label. The members left with a copy are listed: ``review`` when the group spans
    labels (a label conflict is a person's call), ``keep`` when one witness alone vouches for their copy."""
    rows = log.rows
    labels = sorted({str(label) for f in group if (label := rows[str(f.path)]["label"]) is not None})
    conflict = len(labels) >= 2
    certain = not conflict and _certain(kind, group, rows)
    whole = certain or (options.drop_weak and not conflict)
    weak = "" if certain or not whole else "; one witness only, dropped as --drop-weak asks"
    for cluster in [group] if whole else _identical_clusters(group, rows):
        for finding, reason in _planned_drops(kind, cluster, options.split_priority):
            log.drop(str(finding.path), kind, reason + weak, finding.score, _witness(finding, group, rows))
    if conflict:
        for finding in group:
            if finding.path not in log.dropped:
                log.note("review", str(finding.path), kind, f"copies filed under different labels "
                         f"({', '.join(labels)}): a label conflict to review, not dropped", finding.score,
                         _witness(finding, group, rows))
    elif not whole:
        for finding, reason in _planned_drops(kind, group, options.split_priority):
            if finding.path not in log.dropped:
                evidence = finding.details.get("group_evidence", "unrecorded evidence")
                log.note("keep", str(finding.path), kind, f"not two witnesses ({evidence}): kept; with --drop-weak: "
                         f"{reason}", finding.score, _witness(finding, group, rows))


def _certain(kind: str, group: list[Finding], rows: dict[str, dict[str, Any]]) -> bool:
    """Whether every pair of the group is certainly a copy: identical content (one sha256, or an exact-duplicate
    group), or evidence for the group's weakest pair from two independent witnesses, none of it ``info``."""
    if kind == "exact_duplicate" or len({rows[str(f.path)]["sha256"] for f in group}) == 1:
        return True
    return all(f.details.get("group_evidence") in CERTAIN_EVIDENCE and f.severity != Severity.INFO for f in group)


def _identical_clusters(group: list[Finding], rows: dict[str, dict[str, Any]]) -> list[list[Finding]]:
    """The group split into sets of identical copies under one label: the same sha256, or the same pixels as
    recorded (a finding whose nearest partner is a ``pixels`` copy)."""
    parent = {str(f.path): str(f.path) for f in group}

    def root(path: str) -> str:
        while parent[path] != path:
            path = parent[path]
        return path

    first_of: dict[tuple[object, object], str] = {}
    for finding in group:
        path, other = str(finding.path), str(finding.other_path)
        same_bytes = first_of.setdefault((rows[path]["sha256"], rows[path]["label"]), path)
        parent[root(path)] = root(same_bytes)
        if (other in parent and rows[other]["label"] == rows[path]["label"]
                and set(_methods(finding)) & set(IDENTICAL_METHODS)):
            parent[root(path)] = root(other)
    clusters: dict[str, list[Finding]] = {}
    for finding in group:
        clusters.setdefault(root(str(finding.path)), []).append(finding)
    return list(clusters.values())


def _planned_drops(kind: str, cluster: list[Finding], priority: tuple[str, ...]) -> list[tuple[Finding, str]]:
    """Which copies of one set of copies go, and why: a leaked image's copies outside the winning split, then
    all but one (``_keeper``)."""
    planned: list[tuple[Finding, str]] = []
    if kind == LEAKAGE:
        winner = min((f.split for f in cluster), key=lambda s: _rank(s, priority), default=None)
        staying = [f for f in cluster if f.split == winner]
        planned += [(f, f"leaked copy: the copy in split {winner} is kept ({_keeper(str(s.path) for s in staying)})")
                    for f in cluster if f.split != winner]
        cluster = staying
    if len(cluster) >= 2:
        kept = _keeper(str(f.path) for f in cluster)
        planned += [(f, f"duplicate of {kept} (kept)") for f in cluster if f.path != kept]
    return planned


def _methods(finding: Finding) -> list[str]:
    methods = finding.details.get("methods")
    return [str(m) for m in methods] if isinstance(methods, list | tuple) else []


def _witness(finding: Finding, group: list[Finding], rows: dict[str, dict[str, Any]]) -> str:
    """What vouches for the finding's copy (its nearest partner, ``other_path``): the duplicates check's methods
    (sha256, pixels, perceptual, levelled, semantic), joined with ``+``; for results that recorded none,
    ``sha256`` when another member has the same bytes."""
    recorded = "+".join(_methods(finding))
    if recorded:
        return recorded
    sha = rows[str(finding.path)]["sha256"]
    twins = sum(rows[str(f.path)]["sha256"] == sha for f in group)
    return "sha256" if twins >= 2 else "unrecorded"


def _relabel(findings: list[Finding], decisions: list[Decision], options: FixOptions,
             rows: dict[str, dict[str, Any]], dropped: set[str], fix: Fix, today: date) -> None:
    """Reviewed relabels (by content, while the label is still the one reviewed), then, above
    ``relabel_above``, the label_error findings' suggestions: those the scan trusted, or every one with
    ``drop_weak`` (a finding demoted to ``info`` as unreliable is weak evidence, not a label to write)."""
    targets: dict[str, tuple[str, str, float | None, str]] = {}
    if options.relabel_above is not None:
        for finding in findings:
            if (finding.check == "label_error" and finding.path and finding.suggested_label
                    and finding.score >= options.relabel_above
                    and (options.drop_weak or finding.severity is not Severity.INFO)):
                targets[finding.path] = (finding.suggested_label, f"label_error score {finding.score:.3g} >= "
                                         f"{options.relabel_above:g}: {finding.message}", finding.score,
                                         "label_error score")
    for decision in decisions:
        if decision.action != "relabel" or decision.expired(today) or decision.new_label is None:
            continue
        for path, row in rows.items():
            if row["sha256"] == decision.sha256 and (decision.label is None or row["label"] == decision.label):
                targets[path] = (decision.new_label, f"reviewed by {decision.who}: {decision.reason}", None,
                                 "review decision")
    for path, (new_label, reason, score, witness) in sorted(targets.items()):
        row = rows[path]
        if path in dropped or row["label"] == new_label:
            continue
        fix.changes.append({"action": "relabel", "path": path, "split": row["split"], "label": row["label"],
                            "new_label": new_label, "kind": "label_error", "score": score, "witness": witness,
                            "reason": reason})
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
