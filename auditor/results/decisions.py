"""Reviewed decisions about findings (``audit-decisions.toml``): the model, validation, and matching.

A team that looked at a flagged image and decided "this is fine" needs that decision to stick without
hiding every other finding. Decisions are keyed by content (the file's sha256, plus the partner's for
pair findings), never by path, so they survive renames and moves; a decision whose image is gone is
*stale*, one past its ``expires`` date no longer waives anything. Both are reported, never silently used.

This module is in the core so that the pipeline (which applies decisions after the checks), the gate and
the review/fix commands share one definition without importing the checks.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.core.config import did_you_mean
from auditor.core.errors import ConfigError
from auditor.core.toml_files import parse_toml, read_text
from auditor.results.findings import Finding

DECISIONS_FILE = "audit-decisions.toml"
# Findings whose identity includes the partner image: accepting "A copies B" says nothing about "A copies C".
PAIR_KINDS = frozenset({"exact_duplicate", "near_duplicate", "split_leakage"})
_SHA256 = r"^[0-9a-f]{64}$"


class Decision(BaseModel):
    """One reviewed finding. ``accept``: the data is right as it is (the finding is waived);
    ``relabel``: the image's label should be ``new_label`` (``audit fix`` applies it; not waived)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["accept", "relabel"] = "accept"
    # The finding kind (findings.parquet ``check``), e.g. label_error, exact_duplicate.
    check: str = Field(min_length=1)
    sha256: str = Field(pattern=_SHA256)
    # Pair findings (duplicates, leakage): the partner's content; unset matches any partner.
    other_sha256: str | None = Field(None, pattern=_SHA256)
    # The image's label when decided; set, a finding matches only while the image keeps this label.
    label: str | None = None
    new_label: str | None = None
    # Where the image was when decided: informational (stale decisions name it), never used to match.
    path: str | None = None
    reason: str = Field(min_length=1)
    who: str = Field(min_length=1)
    when: datetime
    # Last day the decision holds (inclusive); unset: it never expires.
    expires: date | None = None

    @field_validator("when", "expires", mode="before")
    @classmethod
    def _a_date_not_a_number(cls, value: Any) -> Any:
        # pydantic reads a number as Unix seconds: `expires = 20260101` would mean a day in 1970.
        if isinstance(value, int | float):
            raise ValueError("must be a date (YYYY-MM-DD), not a number")
        return value

    @field_validator("label", "new_label")
    @classmethod
    def _printable_label(cls, value: str | None) -> str | None:
        problem = label_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _relabel_has_a_target(self) -> Decision:
        if self.action == "relabel" and not self.new_label:
            raise ValueError("a relabel decision needs new_label")
        if self.action == "accept" and self.new_label is not None:
            raise ValueError("new_label only applies to action = 'relabel'")
        return self

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires

    def describe(self) -> str:
        where = self.path or f"sha256 {self.sha256[:12]}"
        target = f" -> {self.new_label}" if self.new_label else ""
        return f"{self.action} {self.check} {where}{target} ({self.who}, {self.when:%Y-%m-%d})"

    def record(self) -> dict[str, Any]:
        """What a waived finding carries about the decision that waived it."""
        return {
            "action": self.action, "reason": self.reason, "who": self.who,
            "when": self.when.isoformat(), "expires": self.expires.isoformat() if self.expires else None,
        }


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a class name, or None: a control character (a newline, an escape) would break
    the manifest ``audit fix`` writes and every table that shows the label."""
    if any(unicodedata.category(ch) == "Cc" for ch in label):
        return f"label {label!r} contains control characters (e.g. a newline or an escape sequence)"
    return None


class _DecisionsDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: list[Decision] = Field(default_factory=list)


def load_decisions(path: Path) -> list[Decision]:
    """The decisions in ``path``, in file order; a malformed file is a one-line ``ConfigError`` (exit 2)."""
    return parse_decisions(read_text(path, "decisions file"), path)


def parse_decisions(text: str, path: Path) -> list[Decision]:
    """The decisions in ``text`` (the contents of ``path``, named in errors)."""
    data = parse_toml(text, path, "decisions file")
    try:
        return _DecisionsDocument.model_validate(data).decision
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            loc = item["loc"]
            where = (f"decision {int(loc[1]) + 1}" + (f" {'.'.join(map(str, loc[2:]))}" if loc[2:] else "")
                     if len(loc) >= 2 and loc[0] == "decision" and isinstance(loc[1], int)
                     else ".".join(map(str, loc)) or "(top level)")
            problems.append(f"{where}: {item['msg']}")
        raise ConfigError(f"invalid decisions file {path}: {'; '.join(problems)}") from None


def default_decisions_path(dataset_root: Path) -> Path:
    """Beside the dataset folder (not in it: auditor never writes into a dataset)."""
    return Path(dataset_root).resolve().parent / DECISIONS_FILE


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _toml_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    # A JSON string (ASCII, escaped) is a valid TOML basic string.
    return json.dumps(str(value), ensure_ascii=True)


def decision_toml(decision: Decision) -> str:
    """One ``[[decision]]`` table, fields in model order, unset ones left out."""
    lines = ["[[decision]]"]
    for name, value in decision.model_dump(exclude_none=True).items():
        lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def appended_text(existing: str, decisions: Iterable[Decision]) -> str:
    """``existing`` file text with ``decisions`` appended: comments and other entries stay as they were.

    Appending is enough because the last decision for a finding wins (see ``match``)."""
    text = existing
    if text and not text.endswith("\n"):
        text += "\n"
    for decision in decisions:
        text += ("\n" if text else "") + decision_toml(decision)
    return text


def partner_sha(finding: Finding, sha_by_path: Mapping[str, str]) -> str | None:
    if finding.check in PAIR_KINDS and finding.other_path:
        return sha_by_path.get(finding.other_path)
    return None


def match(finding: Finding, decisions: Iterable[Decision], sha_by_path: Mapping[str, str]) -> Decision | None:
    """The last decision about ``finding`` (by content, label and partner), or None."""
    if finding.sha256 is None:
        return None
    partner = partner_sha(finding, sha_by_path)
    found = None
    for decision in decisions:
        if (decision.check == finding.check and decision.sha256 == finding.sha256
                and (decision.other_sha256 is None or decision.other_sha256 == partner)
                and (decision.label is None or decision.label == finding.label)):
            found = decision
    return found


@dataclass
class Applied:
    """Findings with waivers set, and what run.json records about the decisions."""

    findings: list[Finding]
    waived: int = 0
    expired: list[Decision] = field(default_factory=list)
    stale: list[Decision] = field(default_factory=list)
    relabels: int = 0

    def record(self, path: Path | None, present: bool, total: int) -> dict[str, Any]:
        return {
            "file": str(path) if path is not None else None,
            "present": present,
            "decisions": total,
            "waived_findings": self.waived,
            "relabel_decisions": self.relabels,
            "expired": [d.describe() for d in self.expired],
            "stale": [d.describe() for d in self.stale],
        }

    def warnings(self, path: Path | None) -> list[str]:
        notes: list[str] = []
        where = f" in {path}" if path is not None else ""
        if self.expired:
            notes.append(f"{len(self.expired)} decision(s){where} expired and no longer waive their findings: "
                         + "; ".join(d.describe() for d in self.expired[:5]))
        if self.stale:
            notes.append(f"{len(self.stale)} stale decision(s){where}: their image is no longer in the dataset "
                         "(remove them or re-review): " + "; ".join(d.describe() for d in self.stale[:5]))
        return notes


def refuse_unknown_kinds(decisions: list[Decision], kinds: Collection[str]) -> None:
    """A decision about a kind no check produces (``exact_duplicates`` for ``exact_duplicate``) would waive
    nothing and never turn stale: a ``ConfigError`` naming it, with the kind it probably means."""
    known = sorted(kinds)
    for number, decision in enumerate(decisions, start=1):
        if decision.check not in kinds:
            raise ConfigError(f"decision {number} ({decision.describe()}): unknown finding kind "
                              f"{decision.check!r}{did_you_mean(decision.check, known)}; "
                              f"valid kinds: {', '.join(known)}")


def apply_decisions(
    findings: list[Finding], decisions: list[Decision], sha_by_path: Mapping[str, str], today: date,
    kinds: Collection[str],
) -> Applied:
    """Mark the findings that a current ``accept`` decision covers as waived (they stay in the findings).

    ``kinds``: every finding kind the checks can produce; a decision about any other is refused."""
    refuse_unknown_kinds(decisions, kinds)
    present = set(sha_by_path.values())
    current = [d for d in decisions if not d.expired(today)]
    applied = Applied(findings=[])
    applied.expired = [d for d in decisions if d.expired(today)]
    applied.stale = [d for d in decisions if d.sha256 not in present
                     or (d.other_sha256 is not None and d.other_sha256 not in present)]
    applied.relabels = sum(d.action == "relabel" for d in current)
    for finding in findings:
        decision = match(finding, current, sha_by_path)
        if decision is not None and decision.action == "accept":
            finding = dataclasses.replace(finding, waived=True, waiver=decision.record())
            applied.waived += 1
        applied.findings.append(finding)
    return applied
