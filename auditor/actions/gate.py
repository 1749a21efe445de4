"""The CI gate: pass/fail rules over a scan's findings, optionally counting only what a baseline lacks.

A pull request should fail for what it adds, not for the backlog already on main, so with a baseline
only *new* findings count. Findings are matched by content, not path (see ``finding_key``), so renaming
or moving files never creates new findings; adding another copy of an image that already had copies does.
Model-based findings (``MODEL_FINDINGS``) count only where the pull request changed something (``Touched``):
the models behind them are refit on every change, so their findings move on images nobody touched.
Findings waived by a reviewed decision (``auditor.results.decisions``) never count; the verdict lists them apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
from auditor.results.summaries import ClassImbalanceSummary, Skipped, reliability_problem

LABEL_ERROR = "label_error"
IMBALANCE_CHECK = "class_imbalance"
# Findings listed per list in the JSON verdict unless every one is asked for (``audit gate --all-findings``):
# a verdict on a million findings would otherwise take gigabytes to build.
LISTED_FINDINGS = 1000

# Pair findings whose partner is part of the problem's identity: "X is near Y" and "X is near Z" are two
# problems. Exact copies share their content, so the partner adds nothing; an outlier's neighbour is context.
_PARTNER_IDENTIFIES = frozenset({"near_duplicate"})
# Image findings about the image's label: "X labelled cat looks like a dog" is another problem once X is
# relabelled dog, so a relabelled image's label error is new even where its content had one before.
_LABEL_IDENTIFIES = frozenset({LABEL_ERROR})

# Findings of models fitted to the whole dataset (the cross-validated classifier, the neighbour graph). Any
# change refits them, so such findings appear and vanish on images a pull request never touched: with a
# baseline they count only for what the pull request changed (``Touched``). The rest (copies, leakage,
# unreadable files, image quality, imbalance) are facts about the files themselves and keep the baseline rule.
MODEL_FINDINGS = frozenset({"label_error", "ambiguous", "outlier", "class_overlap"})

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
    # New model-based findings on images (or class pairs) the pull request did not touch: refit churn, listed
    # so a reader sees them, never counted.
    untouched: tuple[Finding, ...] = ()

    @property
    def failed_rules(self) -> tuple[RuleResult, ...]:
        return tuple(rule for rule in self.rules if rule.status is RuleStatus.FAIL)

    @property
    def offending(self) -> int:
        """Distinct findings behind the failed rules (what to fix), as opposed to every finding counted."""
        return len({id(f) for rule in self.failed_rules for f in rule.offending})

    def to_dict(self, listed: int | None = LISTED_FINDINGS) -> dict[str, Any]:
        """The verdict as JSON data. Each list of findings holds at most ``listed`` (None: all of them) and its
        ``*_left_out`` key counts the rest, so a verdict on millions of findings stays small."""
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
                    **_listed("offending", rule.offending, listed),
                }
                for rule in self.rules
            ],
            **_listed("counted", self.counted, listed),
            "waived_findings": len(self.waived),
            **_listed("waived", self.waived, listed),
            "untouched_findings": len(self.untouched),
            "untouched_per_check": dict(sorted(Counter(f.check for f in self.untouched).items())),
            **_listed("untouched", self.untouched, listed),
            "notes": list(self.notes),
        }


def _listed(key: str, findings: tuple[Finding, ...], listed: int | None) -> dict[str, Any]:
    """``key``: the first ``listed`` findings (None: all); ``key_left_out``: how many more there are."""
    shown = findings if listed is None else findings[:listed]
    return {key: [_finding_dict(f) for f in shown], f"{key}_left_out": len(findings) - len(shown)}


def _finding_dict(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["severity"] = str(finding.severity)
    data["classes"] = list(finding.classes)
    return data


def finding_key(finding: Finding, sha_by_path: dict[str, str]) -> tuple[Hashable, ...]:
    """What makes two findings 'the same problem' across scans, independent of file names.

    Image findings: check + the file's content hash (+ the partner's content for near duplicates, + the
    label for label errors). Class findings: check + classes + split. Files without a hash (unreadable
    before hashing) fall back to their path.
    """
    if finding.path is None:
        return ("classes", finding.check, tuple(sorted(finding.classes)), finding.split)
    partner = None
    if finding.check in _PARTNER_IDENTIFIES and finding.other_path:
        partner = sha_by_path.get(finding.other_path, f"path:{finding.other_path}")
    label = finding.label if finding.check in _LABEL_IDENTIFIES else None
    return ("image", finding.check, finding.sha256 or f"path:{finding.path}", partner, label)


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


@dataclass(frozen=True)
class Touched:
    """What a pull request changed, by content rather than path: the current images whose (content, label,
    split) the baseline lacks (added, re-encoded, relabelled or moved to another split; renaming is no
    change), and every class that gained or lost such an image (deleted images count for their class)."""

    paths: frozenset[str]
    classes: frozenset[str]

    def covers(self, finding: Finding) -> bool:
        """Whether ``finding`` is about something the pull request changed: its image, or for a finding
        about classes (``class_overlap``: a pair) any of its classes."""
        if finding.path is None:
            return not self.classes.isdisjoint(finding.classes)
        return finding.path in self.paths


_Placement = tuple[str | None, str | None, str | None]  # (sha256, label, split)


def _placements(images: pd.DataFrame) -> list[tuple[str, _Placement]]:
    """(path, (sha256, label, split)) per image; missing values are None."""
    columns = [images[name].astype(object).where(images[name].notna(), None).tolist()
               for name in ("sha256", "label", "split")]
    return list(zip(images["path"].astype(str).tolist(), zip(*columns, strict=True), strict=True))


def touched(current: Results, baseline: Results) -> Touched:
    """What ``current`` changed against ``baseline`` (see ``Touched``). A file without a content hash (it
    could not be read far enough) counts as changed: nothing shows it is the baseline's."""
    now = _placements(current.images)
    before = {placement for _, placement in _placements(baseline.images)}
    changed = [(path, placement) for path, placement in now if placement[0] is None or placement not in before]
    gone = before - {placement for _, placement in now}
    labels = [placement[1] for _, placement in changed] + [placement[1] for placement in gone]
    return Touched(frozenset(path for path, _ in changed), frozenset(label for label in labels if label))


def scope_to_pull_request(findings: list[Finding], changed: Touched) -> tuple[list[Finding], list[Finding]]:
    """(counted, untouched): model-based findings count only where ``changed`` covers them; every other
    finding counts as it is."""
    counted: list[Finding] = []
    untouched: list[Finding] = []
    for finding in findings:
        churn = finding.check in MODEL_FINDINGS and not changed.covers(finding)
        (untouched if churn else counted).append(finding)
    return counted, untouched


def unavailable_findings(results: Results) -> dict[str, str]:
    """Finding check -> why this scan could not have produced it (its check did not run or was skipped),
    or why its findings cannot be judged (the check found its own evidence unreliable: ``reliable: false``).

    Which check produces which findings comes from run.json (``check_info``, recorded by the scan). A
    finding check no check there declares is absent here: the gate cannot tell, so it evaluates the rule.
    """
    reasons: dict[str, str] = {}
    for name, produces in produced_kinds(results.run).items():
        summary = results.summaries.get(name)
        if summary is None:
            why = f"the {name} check did not run in this scan"
        elif isinstance(summary, Skipped):
            why = f"the {name} check was skipped: {summary.skipped}"
        elif (problem := reliability_problem(summary)) is not None:
            why = f"the {name} check judged its evidence unreliable: {problem}"
        else:
            continue
        for produced in produces:
            reasons[produced] = why
    return reasons


@dataclass(frozen=True)
class Scope:
    """What every rule judges: the scan, its baseline, the findings that count, and which finding kinds
    the scan could not have produced (``unavailable_findings``)."""

    current: Results
    baseline: Results | None
    counted: list[Finding]
    unavailable: dict[str, str]

    @property
    def new(self) -> bool:
        """Whether only findings new since a baseline count (the rules' texts say so)."""
        return self.baseline is not None

    def skipped_for(self, check: str) -> bool:
        """A rule on ``check`` findings is skipped when none count and the scan could not produce them."""
        return check in self.unavailable and not any(f.check == check for f in self.counted)


@dataclass(frozen=True)
class GateRule(ABC):
    """One gate rule: the ``[gate]`` limit it reads and how it judges a scan against that limit."""

    name: str

    @abstractmethod
    def limit(self, config: GateConfig) -> float | None:
        """The configured limit; None disables the rule."""

    @abstractmethod
    def judge(self, limit: float, scope: Scope) -> RuleResult:
        """Pass, fail or skip, with the figure observed and the findings behind a failure."""


@dataclass(frozen=True)
class FindingCountRule(GateRule):
    """At most ``limit`` findings of kind ``check``; the limit is the ``[gate]`` key named like the rule."""

    check: str

    def limit(self, config: GateConfig) -> float | None:
        limit: float | None = getattr(config, self.name)
        return limit

    def judge(self, limit: float, scope: Scope) -> RuleResult:
        offending = tuple(f for f in scope.counted if f.check == self.check)
        what = f"new `{self.check}` findings" if scope.new else f"`{self.check}` findings"
        description = f"at most {limit} {what}"
        if scope.skipped_for(self.check):
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None, scope.unavailable[self.check])
        return RuleResult(
            name=self.name,
            description=description,
            status=RuleStatus.FAIL if len(offending) > limit else RuleStatus.PASS,
            limit=limit,
            observed=len(offending),
            detail=f"{len(offending)} {what} (limit {limit})",
            offending=offending if len(offending) > limit else (),
        )


@dataclass(frozen=True)
class KindCountRule(FindingCountRule):
    """``[gate.max_findings]``: at most ``limit`` findings of any finding kind a check produces."""

    def limit(self, config: GateConfig) -> float | None:
        return config.max_findings.get(self.check)


def _labelled_counts(images: pd.DataFrame) -> pd.Series:
    labelled = images[images["readable"].astype(bool) & images["label"].notna()]
    return labelled["label"].astype(str).value_counts()


@dataclass(frozen=True)
class LabelErrorRateRule(GateRule):
    """Label errors in at most a share of the labelled readable images."""

    name: str = "max_label_error_rate"

    def limit(self, config: GateConfig) -> float | None:
        return config.max_label_error_rate

    def judge(self, limit: float, scope: Scope) -> RuleResult:
        errors = tuple(f for f in scope.counted if f.check == LABEL_ERROR)
        total = int(_labelled_counts(scope.current.images).sum())
        what = "new label errors" if scope.new else "label errors"
        description = f"{what} in at most {limit:.2%} of labelled images"
        if scope.skipped_for(LABEL_ERROR):
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None,
                              scope.unavailable[LABEL_ERROR])
        if total == 0:
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
        rate = len(errors) / total
        failed = rate > limit
        return RuleResult(
            name=self.name,
            description=description,
            status=RuleStatus.FAIL if failed else RuleStatus.PASS,
            limit=limit,
            observed=rate,
            detail=f"{len(errors)} {what} in {total} labelled images = {rate:.2%} (limit {limit:.2%})",
            offending=errors if failed else (),
        )


@dataclass(frozen=True)
class LabelErrorRatePerClassRule(GateRule):
    """Label errors in at most a share of each class's labelled readable images."""

    name: str = "max_label_error_rate_per_class"

    def limit(self, config: GateConfig) -> float | None:
        return config.max_label_error_rate_per_class

    def judge(self, limit: float, scope: Scope) -> RuleResult:
        sizes = _labelled_counts(scope.current.images)
        what = "new label errors" if scope.new else "label errors"
        description = f"{what} in at most {limit:.2%} of each class's labelled images"
        if scope.skipped_for(LABEL_ERROR):
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None,
                              scope.unavailable[LABEL_ERROR])
        if sizes.empty:
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
        per_class: dict[str, list[Finding]] = defaultdict(list)
        for finding in scope.counted:
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
            name=self.name,
            description=description,
            status=RuleStatus.FAIL if failing else RuleStatus.PASS,
            limit=limit,
            observed=rates[worst],
            detail=detail,
            offending=tuple(f for label in failing for f in per_class[label]),
        )


def _split_ratios(results: Results) -> dict[str, float] | None:
    """Imbalance ratio per split from the class_imbalance summary; None when that check did not run."""
    summary = results.summaries.get(IMBALANCE_CHECK)
    return summary.ratios() if isinstance(summary, ClassImbalanceSummary) else None


@dataclass(frozen=True)
class ImbalanceRule(GateRule):
    """Fails for a split above ``limit``; with a baseline only if the ratio also grew since then."""

    name: str = "max_imbalance_ratio"

    def limit(self, config: GateConfig) -> float | None:
        return config.max_imbalance_ratio

    def judge(self, limit: float, scope: Scope) -> RuleResult:
        description = f"class imbalance ratio at most {limit:g} in every split"
        ratios = _split_ratios(scope.current)
        if ratios is None:
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None,
                              f"the {IMBALANCE_CHECK} check did not run in this scan")
        if not ratios:
            return RuleResult(self.name, description, RuleStatus.SKIPPED, limit, None, "no labelled readable images")
        before = (_split_ratios(scope.baseline) or {}) if scope.baseline is not None else {}
        failing = [
            split for split, ratio in sorted(ratios.items())
            if ratio > limit and (scope.baseline is None or ratio > before.get(split, 0.0))
        ]
        worst = max(ratios, key=lambda s: ratios[s])
        parts = []
        for split in failing or [worst]:
            grew = f", was {before[split]:.1f}" if split in before else ""
            parts.append(f"{split}: {ratios[split]:.1f}{grew}")
        above_but_not_worse = not failing and ratios[worst] > limit
        suffix = " (above the limit but not worse than the baseline)" if above_but_not_worse else ""
        offending = tuple(
            f for f in scope.current.finding_objects()
            if f.check == IMBALANCE_CHECK and f.path is None and (f.split or "all") in failing
            and "imbalance_ratio" in f.details
        )
        return RuleResult(
            name=self.name,
            description=description,
            status=RuleStatus.FAIL if failing else RuleStatus.PASS,
            limit=limit,
            observed=ratios[worst],
            detail="; ".join(parts) + f" (limit {limit:g})" + suffix,
            offending=offending,
        )


# The rules besides the finding counts, in the order verdicts list them; a new rule is one entry here.
RATE_AND_SUMMARY_RULES: tuple[GateRule, ...] = (LabelErrorRateRule(), LabelErrorRatePerClassRule(), ImbalanceRule())


def gate_rules(config: GateConfig) -> tuple[GateRule, ...]:
    """Every rule ``config`` can enable, in verdict order: the fixed counts, each ``[gate.max_findings]``
    kind (sorted), then the rate and summary rules."""
    return (
        *(FindingCountRule(key, check) for key, check in COUNT_RULES.items()),
        *(KindCountRule(f"max_findings.{check}", check) for check in sorted(config.max_findings)),
        *RATE_AND_SUMMARY_RULES,
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
    waived = tuple(f for f in all_findings if f.waived)
    # Findings their own check could not vouch for (details.reliable = false: the embedding does not
    # separate the classes) are not evidence a gate can act on; a rule left with none is skipped, with
    # the check's reason (label conflicts between copies, which need no classifier, still count).
    counted = [f for f in (all_findings if baseline is None else new_findings(current, baseline))
               if not f.waived and (f.details or {}).get("reliable") is not False]
    untouched: list[Finding] = []
    if baseline is not None:
        counted, untouched = scope_to_pull_request(counted, touched(current, baseline))
        notes.extend(_baseline_notes(current, baseline))
    scope = Scope(current, baseline, counted, unavailable_findings(current))
    rules = [rule.judge(limit, scope) for rule in gate_rules(config)
             if (limit := rule.limit(config)) is not None]
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
        untouched=tuple(untouched),
        encoder=describe_encoder(current.run),
    )


def _baseline_notes(current: Results, baseline: Results) -> Iterable[str]:
    """Differences that make 'new' less meaningful: findings differ for reasons other than the data."""
    now, then = current.run.get("encoder", {}), baseline.run.get("encoder", {})
    if now.get("identity") != then.get("identity"):
        yield (f"baseline used encoder {then.get('identity')}, this scan {now.get('identity')}: "
               "embedding-based findings are not comparable, so many may count as new")
    missing = sorted(set(current.summaries) - set(baseline.summaries))
    if missing:
        yield f"baseline did not run {', '.join(missing)}: all their findings count as new"
