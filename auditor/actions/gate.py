"""The CI gate: pass/fail rules over a scan's findings, optionally counting only what a baseline lacks.

A pull request should fail for what it adds, not for the backlog already on main, so with a baseline
only *new* findings count. Findings are matched by content, not path (see ``finding_key``), so renaming
or moving files never creates new findings; adding another copy of an image that already had copies does.
Findings waived by a reviewed decision (``auditor.results.decisions``) never count; the verdict lists them apart.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from auditor.core.config import COUNT_RULES, GateConfig, did_you_mean
from auditor.core.errors import ConfigError
from auditor.results.decisions import Decision, now_utc
from auditor.results.findings import Finding
from auditor.results.reading import Results, describe_encoder, produced_kinds, sha_by_path, with_decisions

LABEL_ERROR = "label_error"
IMBALANCE_CHECK = "class_imbalance"

# Pair findings whose partner is part of the problem's identity: "X is near Y" and "X is near Z" are two
# problems. Exact copies share their content, so the partner adds nothing; an outlier's neighbour is context.
_PARTNER_IDENTIFIES = frozenset({"near_duplicate"})

class RuleStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"  # the scan holds nothing to evaluate the rule on (e.g. the check did not run)


@dataclass(frozen=True)
class RuleResult:
    name: str
    description: str
    status: RuleStatus
    limit: float
    observed: float | None
    detail: str
    offending: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Verdict:
    passed: bool
    rules: tuple[RuleResult, ...]
    results_dir: str
    baseline_dir: str | None
    total_findings: int
    # The findings the rules counted: all of them, or with a baseline only the new ones.
    counted: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The encoder that produced the findings: a verdict built on a weak fallback must say so.
    encoder: str = "unknown"
    # Findings accepted in review (not counted by any rule), listed so a reader sees what was waived.
    waived: tuple[Finding, ...] = ()

    @property
    def failed_rules(self) -> tuple[RuleResult, ...]:
        return tuple(rule for rule in self.rules if rule.status is RuleStatus.FAIL)

    @property
    def offending(self) -> int:
        """Distinct findings behind the failed rules (what to fix), as opposed to every finding counted."""
        return len({id(f) for rule in self.failed_rules for f in rule.offending})

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "encoder": self.encoder,
            "results": self.results_dir,
            "baseline": self.baseline_dir,
            "total_findings": self.total_findings,
            "counted_findings": len(self.counted),
            "counted_per_check": dict(sorted(Counter(f.check for f in self.counted).items())),
            "rules": [
                {
                    "name": rule.name,
                    "description": rule.description,
                    "status": str(rule.status),
                    "limit": rule.limit,
                    "observed": rule.observed,
                    "detail": rule.detail,
                    "offending": [_finding_dict(f) for f in rule.offending],
                }
                for rule in self.rules
            ],
            "counted": [_finding_dict(f) for f in self.counted],
            "waived_findings": len(self.waived),
            "waived": [_finding_dict(f) for f in self.waived],
            "notes": list(self.notes),
        }


def _finding_dict(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["severity"] = str(finding.severity)
    data["classes"] = list(finding.classes)
    return data


def finding_key(finding: Finding, sha_by_path: dict[str, str]) -> tuple[Hashable, ...]:
    """What makes two findings 'the same problem' across scans, independent of file names.

    Image findings: check + the file's content hash (+ the partner's content for near duplicates).
    Class findings: check + classes + split. Files without a hash (unreadable before hashing) fall
    back to their path.
    """
    if finding.path is None:
        return ("classes", finding.check, tuple(sorted(finding.classes)), finding.split)
    partner = None
    if finding.check in _PARTNER_IDENTIFIES and finding.other_path:
        partner = sha_by_path.get(finding.other_path, f"path:{finding.other_path}")
    return ("image", finding.check, finding.sha256 or f"path:{finding.path}", partner)


def new_findings(current: Results, baseline: Results) -> list[Finding]:
    """Findings of ``current`` that ``baseline`` lacks, matched as multisets of ``finding_key``.

    Same-path matches are taken first so that, when a key gains members (a third copy of an image),
    the finding reported as new is the added file rather than an arbitrary one.
    """
    base_sha = sha_by_path(baseline.images)
    remaining: Counter[tuple[Hashable, ...]] = Counter()
    by_path: Counter[tuple[tuple[Hashable, ...], str | None]] = Counter()
    for finding in baseline.finding_objects():
        key = finding_key(finding, base_sha)
        remaining[key] += 1
        by_path[(key, finding.path)] += 1
    current_sha = sha_by_path(current.images)
    keyed = [(finding_key(f, current_sha), f) for f in current.finding_objects()]
    unmatched: list[tuple[tuple[Hashable, ...], Finding]] = []
    for key, finding in keyed:
        if by_path[(key, finding.path)] > 0:
            by_path[(key, finding.path)] -= 1
            remaining[key] -= 1
        else:
            unmatched.append((key, finding))
    added: list[Finding] = []
    for key, finding in unmatched:
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            added.append(finding)
    return added


def unavailable_findings(run: dict[str, Any]) -> dict[str, str]:
    """Finding check -> why this scan could not have produced it (its check did not run or was skipped),
    or why its findings cannot be judged (the check found its own evidence unreliable: ``reliable: false``).

    Which check produces which findings comes from run.json (``check_info``, recorded by the scan). A
    finding check no check there declares is absent here: the gate cannot tell, so it evaluates the rule.
    """
    summaries = run.get("checks", {})
    reasons: dict[str, str] = {}
    for name, produces in produced_kinds(run).items():
        summary = summaries.get(name)
        if summary is None:
            why = f"the {name} check did not run in this scan"
        elif isinstance(summary, dict) and summary.get("skipped"):
            why = f"the {name} check was skipped: {summary['skipped']}"
        elif isinstance(summary, dict) and summary.get("reliable") is False:
            why = f"the {name} check judged its evidence unreliable: {summary.get('reliability_reason')}"
        else:
            continue
        for produced in produces:
            reasons[produced] = why
    return reasons


def _count_rule(name: str, check: str, limit: int, counted: list[Finding], new: bool,
                unavailable: dict[str, str]) -> RuleResult:
    offending = tuple(f for f in counted if f.check == check)
    what = f"new `{check}` findings" if new else f"`{check}` findings"
    description = f"at most {limit} {what}"
    if not offending and check in unavailable:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, unavailable[check])
    return RuleResult(
        name=name,
        description=description,
        status=RuleStatus.FAIL if len(offending) > limit else RuleStatus.PASS,
        limit=limit,
        observed=len(offending),
        detail=f"{len(offending)} {what} (limit {limit})",
        offending=offending if len(offending) > limit else (),
    )


def _labelled_counts(images: pd.DataFrame) -> pd.Series:
    labelled = images[images["readable"].astype(bool) & images["label"].notna()]
    return labelled["label"].astype(str).value_counts()


def _label_error_rate_rule(limit: float, counted: list[Finding], images: pd.DataFrame, new: bool,
                           unavailable: dict[str, str]) -> RuleResult:
    name = "max_label_error_rate"
    errors = tuple(f for f in counted if f.check == LABEL_ERROR)
    total = int(_labelled_counts(images).sum())
    what = "new label errors" if new else "label errors"
    description = f"{what} in at most {limit:.2%} of labelled images"
    if not errors and LABEL_ERROR in unavailable:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, unavailable[LABEL_ERROR])
    if total == 0:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
    rate = len(errors) / total
    failed = rate > limit
    return RuleResult(
        name=name,
        description=description,
        status=RuleStatus.FAIL if failed else RuleStatus.PASS,
        limit=limit,
        observed=rate,
        detail=f"{len(errors)} {what} in {total} labelled images = {rate:.2%} (limit {limit:.2%})",
        offending=errors if failed else (),
    )


def _label_error_rate_per_class_rule(
    limit: float, counted: list[Finding], images: pd.DataFrame, new: bool, unavailable: dict[str, str]
) -> RuleResult:
    name = "max_label_error_rate_per_class"
    sizes = _labelled_counts(images)
    what = "new label errors" if new else "label errors"
    description = f"{what} in at most {limit:.2%} of each class's labelled images"
    if LABEL_ERROR in unavailable and not any(f.check == LABEL_ERROR for f in counted):
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, unavailable[LABEL_ERROR])
    if sizes.empty:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
    per_class: dict[str, list[Finding]] = defaultdict(list)
    for finding in counted:
        if finding.check == LABEL_ERROR and finding.label is not None:
            per_class[finding.label].append(finding)
    rates = {label: len(per_class[label]) / int(size) for label, size in sizes.items()}
    failing = sorted((label for label, rate in rates.items() if rate > limit), key=lambda c: -rates[c])
    worst = max(rates, key=lambda c: rates[c])
    if failing:
        detail = "; ".join(
            f"{label}: {len(per_class[label])}/{int(sizes[label])} = {rates[label]:.2%}" for label in failing
        ) + f" (limit {limit:.2%})"
    else:
        detail = f"worst class {worst}: {rates[worst]:.2%} (limit {limit:.2%})"
    return RuleResult(
        name=name,
        description=description,
        status=RuleStatus.FAIL if failing else RuleStatus.PASS,
        limit=limit,
        observed=rates[worst],
        detail=detail,
        offending=tuple(f for label in failing for f in per_class[label]),
    )


def _split_ratios(run: dict[str, Any]) -> dict[str, float] | None:
    """Imbalance ratio per split from run.json; None when class_imbalance did not run."""
    summary = run.get("checks", {}).get(IMBALANCE_CHECK)
    if not isinstance(summary, dict) or "skipped" in summary:
        return None
    return {
        str(split): float(values["imbalance_ratio"])
        for split, values in summary.items()
        if isinstance(values, dict) and values.get("imbalance_ratio") is not None
    }


def _imbalance_rule(limit: float, current: Results, baseline: Results | None) -> RuleResult:
    """Fails for a split above ``limit``; with a baseline only if the ratio also grew since then."""
    name = "max_imbalance_ratio"
    description = f"class imbalance ratio at most {limit:g} in every split"
    ratios = _split_ratios(current.run)
    if ratios is None:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None,
                          f"the {IMBALANCE_CHECK} check did not run in this scan")
    if not ratios:
        return RuleResult(name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
    before = (_split_ratios(baseline.run) or {}) if baseline is not None else {}
    failing = [
        split for split, ratio in sorted(ratios.items())
        if ratio > limit and (baseline is None or ratio > before.get(split, 0.0))
    ]
    worst = max(ratios, key=lambda s: ratios[s])
    parts = []
    for split in failing or [worst]:
        grew = f", was {before[split]:.1f}" if split in before else ""
        parts.append(f"{split}: {ratios[split]:.1f}{grew}")
    above_but_not_worse = not failing and ratios[worst] > limit
    suffix = " (above the limit but not worse than the baseline)" if above_but_not_worse else ""
    offending = tuple(
        f for f in current.finding_objects()
        if f.check == IMBALANCE_CHECK and f.path is None and (f.split or "all") in failing
        and "imbalance_ratio" in f.details
    )
    return RuleResult(
        name=name,
        description=description,
        status=RuleStatus.FAIL if failing else RuleStatus.PASS,
        limit=limit,
        observed=ratios[worst],
        detail="; ".join(parts) + f" (limit {limit:g})" + suffix,
        offending=offending,
    )


def known_kinds(run: dict[str, Any]) -> set[str]:
    """Finding kinds a scan could produce: what run.json records its checks produce, and what it found."""
    kinds = {kind for produced in produced_kinds(run).values() for kind in produced}
    kinds.update(str(kind) for kind in run.get("findings_per_check") or {})
    return kinds


def check_rule_kinds(config: GateConfig, known: set[str]) -> None:
    """Refuse limits on finding kinds no check produces: `outliers = 0` must not pass every gate."""
    unknown = sorted(set(config.max_findings) - known)
    if not unknown:
        return
    parts = [f"{name!r}{did_you_mean(name, sorted(known))}" for name in unknown]
    raise ConfigError(
        f"unknown finding kind {', '.join(parts)} in [gate.max_findings]; valid kinds: {', '.join(sorted(known))}"
    )


def evaluate(current: Results, config: GateConfig, baseline: Results | None = None,
             decisions: list[Decision] | None = None) -> Verdict:
    """Apply every enabled rule of ``config`` to ``current`` (only findings new since ``baseline``).

    Waived findings never count. ``decisions`` (the decisions file as it is now) replaces the waivers the
    scan recorded, so a decision made in review counts before the next scan."""
    check_rule_kinds(config, known_kinds(current.run) | (known_kinds(baseline.run) if baseline else set()))
    notes: list[str] = []
    if decisions is not None:
        current, applied = with_decisions(current, decisions, now_utc().date())
        notes.extend(applied.warnings(None))
    all_findings = current.finding_objects()
    if baseline is None:
        counted = all_findings
    else:
        counted = new_findings(current, baseline)
        notes.extend(_baseline_notes(current, baseline))
    waived = tuple(f for f in all_findings if f.waived)
    counted = [f for f in counted if not f.waived]
    is_new = baseline is not None
    unavailable = unavailable_findings(current.run)
    # Findings their own check could not vouch for (details.reliable = false: the embedding does not
    # separate the classes) are not evidence a gate can act on; a rule left with none is skipped, with
    # the check's reason (label conflicts between copies, which need no classifier, still count).
    counted = [f for f in counted if (f.details or {}).get("reliable") is not False]
    rules: list[RuleResult] = []
    for key, check in COUNT_RULES.items():
        limit = getattr(config, key)
        if limit is not None:
            rules.append(_count_rule(key, check, limit, counted, is_new, unavailable))
    for check, limit in sorted(config.max_findings.items()):
        rules.append(_count_rule(f"max_findings.{check}", check, limit, counted, is_new, unavailable))
    if config.max_label_error_rate is not None:
        rules.append(_label_error_rate_rule(config.max_label_error_rate, counted, current.images, is_new,
                                            unavailable))
    if config.max_label_error_rate_per_class is not None:
        rules.append(_label_error_rate_per_class_rule(
            config.max_label_error_rate_per_class, counted, current.images, is_new, unavailable))
    if config.max_imbalance_ratio is not None:
        rules.append(_imbalance_rule(config.max_imbalance_ratio, current, baseline))
    notes.extend(f"rule {r.name} not evaluated: {r.detail}" for r in rules if r.status is RuleStatus.SKIPPED)
    return Verdict(
        passed=all(rule.status is not RuleStatus.FAIL for rule in rules),
        rules=tuple(rules),
        results_dir=str(current.directory),
        baseline_dir=str(baseline.directory) if baseline is not None else None,
        total_findings=len(all_findings),
        counted=tuple(counted),
        notes=tuple(notes),
        waived=waived,
        encoder=describe_encoder(current.run),
    )


def _baseline_notes(current: Results, baseline: Results) -> Iterable[str]:
    """Differences that make 'new' less meaningful: findings differ for reasons other than the data."""
    now, then = current.run.get("encoder", {}), baseline.run.get("encoder", {})
    if now.get("identity") != then.get("identity"):
        yield (f"baseline used encoder {then.get('identity')}, this scan {now.get('identity')}: "
               "embedding-based findings are not comparable, so many may count as new")
    missing = sorted(set(current.run.get("checks", {})) - set(baseline.run.get("checks", {})))
    if missing:
        yield f"baseline did not run {', '.join(missing)}: all their findings count as new"
