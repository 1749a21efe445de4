"""Renderings of a gate verdict: rich terminal text, GitHub Markdown, and JSON (``audit gate --format``).

``auditor.actions.gate`` only evaluates; how a verdict looks lives here, in the interface layer, beside the reports.
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditor.actions.gate import LISTED_FINDINGS, RuleStatus, Verdict
from auditor.report.base import waiver_text
from auditor.report.safe import gfm, gfm_code, gfm_html, gfm_quoted, rich_text, visible
from auditor.results.findings import Finding

# Findings listed per rule (and in the new-findings section) by the text and Markdown renderers;
# GitHub caps a step summary at 1 MiB. JSON lists up to LISTED_FINDINGS per list, or all on request.
SHOWN_PER_SECTION = 50
# The section of model-based findings a baseline does not count (``Verdict.untouched``), and why not.
UNTOUCHED_TITLE = "changed on untouched images, not counted"
UNTOUCHED_WHY = ("Model-based findings that are new on images (or class pairs) this pull request did not add, "
                 "change, relabel or move: the classifier and neighbour graph are refit on every change, so "
                 "marginal images cross the bar either way")


class GateFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


def _where(finding: Finding) -> str:
    if finding.path is None:
        scope = f" in {finding.split}" if finding.split else ""
        return f"classes {', '.join(finding.classes)}{scope}"
    return finding.path + (f" (other: {finding.other_path})" if finding.other_path else "")


def _by_check(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.check].append(finding)
    return dict(sorted(grouped.items()))


def _counts(findings: Iterable[Finding]) -> str:
    """Findings per check, e.g. ``label_error: 3, outlier: 1``."""
    return ", ".join(f"{check}: {len(items)}" for check, items in _by_check(findings).items())


def _status_mark(status: RuleStatus) -> str:
    return {RuleStatus.PASS: "✅ pass", RuleStatus.FAIL: "❌ fail", RuleStatus.SKIPPED: "⚠️ skipped"}[status]


def _md_findings(findings: list[Finding], waived: bool = False) -> list[str]:
    last = "accepted because" if waived else "message"
    lines = [f"| check | file | split | label | {last} |", "|---|---|---|---|---|"]
    for finding in findings[:SHOWN_PER_SECTION]:
        lines.append(
            f"| {gfm(finding.check)} | {gfm_code(_where(finding), 300)} | {gfm(finding.split or '')} | "
            f"{gfm(finding.label or '', 200)} | {gfm(waiver_text(finding) if waived else finding.message, 300)} |"
        )
    if len(findings) > SHOWN_PER_SECTION:
        lines.append(f"\n…and {len(findings) - SHOWN_PER_SECTION} more (see `audit gate --format json`).")
    return lines


def render_markdown(verdict: Verdict) -> str:
    """GitHub-flavoured Markdown for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment.

    Rule texts embed data (class names, paths), so every one goes through ``gfm`` like the findings.
    """
    head = "✅ passed" if verdict.passed else "❌ failed"
    scope = (f"{len(verdict.counted)} new findings (of {verdict.total_findings}) against baseline "
             f"{gfm(verdict.baseline_dir)}" if verdict.baseline_dir else f"{verdict.total_findings} findings")
    lines = [f"## Dataset audit gate: {head}", "", f"Results {gfm(verdict.results_dir)}: {scope}.", "",
             f"Encoder: {gfm_code(verdict.encoder)}.", ""]
    if not verdict.passed:
        lines[-2:-1] = [lines[-2], "", _failure_summary(verdict) + "."]
    if verdict.rules:
        lines += ["| rule | status | observed | detail |", "|---|---|---|---|"]
        for rule in verdict.rules:
            observed = "" if rule.observed is None else f"{rule.observed:g}"
            lines.append(f"| {gfm_quoted(rule.description)} | {_status_mark(rule.status)} | {observed} | "
                         f"{gfm_quoted(rule.detail, 1000)} |")
    else:
        lines.append("No gate rules are enabled.")
    for note in verdict.notes:
        lines += ["", f"> **Note:** {gfm(note, 1000)}"]
    for rule in verdict.rules:
        if rule.status is RuleStatus.FAIL and rule.offending:
            lines += ["", f"### ❌ {gfm_quoted(rule.description)}", "", *_md_findings(list(rule.offending))]
    if verdict.counted:
        title = "New findings" if verdict.baseline_dir else "All findings"
        lines += ["", f"<details><summary>{title} ({gfm_html(_counts(verdict.counted), 1000)})</summary>", "",
                  *_md_findings(list(verdict.counted)), "", "</details>"]
    if verdict.waived:
        lines += ["", f"<details><summary>Waived by reviewed decisions, not counted ({len(verdict.waived)})"
                  "</summary>", "", *_md_findings(list(verdict.waived), waived=True), "", "</details>"]
    if verdict.untouched:
        lines += ["", f"<details><summary>{UNTOUCHED_TITLE.capitalize()} ({len(verdict.untouched)}: "
                  f"{gfm_html(_counts(verdict.untouched), 1000)})</summary>", "", UNTOUCHED_WHY + ".", "",
                  *_md_findings(list(verdict.untouched)), "", "</details>"]
    return "\n".join(lines) + "\n"


def render_json(verdict: Verdict, listed: int | None = LISTED_FINDINGS) -> str:
    """``listed``: findings per list (None: all); the JSON counts those left out (``*_left_out``)."""
    return json.dumps(verdict.to_dict(listed), indent=2, default=str) + "\n"


def _unquoted(text: str) -> str:
    """A rule's sentence for the terminal: the names it quotes in Markdown backticks, without them."""
    return re.sub(r"`([^`]*)`", r"\1", text)


def print_verdict(console: Console, verdict: Verdict) -> None:
    """Rich terminal rendering: the rules table, then what each failed rule objects to."""
    styles = {RuleStatus.PASS: "green", RuleStatus.FAIL: "bold red", RuleStatus.SKIPPED: "yellow"}
    table = Table(title="Gate rules", show_lines=False)
    for column in ("rule", "status", "detail"):
        table.add_column(column)
    for rule in verdict.rules:
        status = f"[{styles[rule.status]}]{rule.status}[/]"
        table.add_row(rich_text(_unquoted(rule.description)), status, rich_text(_unquoted(rule.detail)))
    if verdict.rules:
        console.print(table)
    else:
        console.print("no gate rules are enabled")
    for note in verdict.notes:
        console.print(f"[yellow]note:[/] {escape(visible(note))}")
    for rule in verdict.rules:
        if rule.status is not RuleStatus.FAIL or not rule.offending:
            continue
        console.print(f"[bold red]{escape(visible(rule.name))}[/]: {escape(visible(_unquoted(rule.detail)))}")
        for finding in rule.offending[:SHOWN_PER_SECTION]:
            console.print(f"  {escape(visible(_where(finding)))}: {escape(visible(finding.message))}",
                          highlight=False)
        if len(rule.offending) > SHOWN_PER_SECTION:
            console.print(f"  …and {len(rule.offending) - SHOWN_PER_SECTION} more")
    _print_aside(console, f"waived by reviewed decisions, not counted: {len(verdict.waived)}", verdict.waived,
                 waiver_text)
    _print_aside(console, f"{UNTOUCHED_TITLE} ({len(verdict.untouched)}: {_counts(verdict.untouched)}); the model "
                 "is refit on every change", verdict.untouched, lambda finding: finding.message)
    console.print(f"encoder: {escape(visible(verdict.encoder))}", highlight=False)
    scope = f"{verdict.total_findings} findings"
    if verdict.baseline_dir:
        scope = f"{len(verdict.counted)} new of {scope} (baseline {verdict.baseline_dir})"
        if verdict.untouched:
            scope += f", {len(verdict.untouched)} on untouched images not counted"
    if verdict.passed:
        console.print(f"[bold green]gate passed[/]: {escape(visible(scope))}", highlight=False)
    else:
        console.print(f"[bold red]gate FAILED[/]: {escape(_failure_summary(verdict))} ({escape(visible(scope))})",
                      highlight=False)


def _print_aside(console: Console, title: str, findings: tuple[Finding, ...], why: Callable[[Finding], str]) -> None:
    """A dimmed list of findings the rules did not count (``why``: the text after each one); nothing if none."""
    if not findings:
        return
    console.print(f"[dim]{escape(visible(title))}[/]", highlight=False)
    for finding in findings[:SHOWN_PER_SECTION]:
        line = f"{finding.check} {_where(finding)}: {why(finding)}"
        console.print(f"  [dim]{escape(visible(line))}[/]", highlight=False)
    if len(findings) > SHOWN_PER_SECTION:
        console.print(f"  …and {len(findings) - SHOWN_PER_SECTION} more")


def _failure_summary(verdict: Verdict) -> str:
    """What broke, in the terms a reader acts on: rules and the findings behind them, not every finding."""
    failed = verdict.failed_rules
    rules = f"{len(failed)} of {len(verdict.rules)} rule{'s' if len(verdict.rules) != 1 else ''} failed"
    behind = verdict.offending
    return rules + (f", {behind} finding{'s' if behind != 1 else ''} to fix" if behind else "")


def render_text(verdict: Verdict) -> str:
    """The terminal rendering without colour, for ``--output FILE`` with ``--format text``."""
    buffer = io.StringIO()
    print_verdict(Console(file=buffer, width=120, no_color=True, highlight=False), verdict)
    return buffer.getvalue()


_RENDERERS = {GateFormat.TEXT: render_text, GateFormat.MARKDOWN: render_markdown}


def render(verdict: Verdict, fmt: GateFormat, listed: int | None = LISTED_FINDINGS) -> str:
    """``verdict`` in ``fmt``; ``listed`` caps the findings JSON lists (text and Markdown show fewer anyway)."""
    return render_json(verdict, listed) if fmt is GateFormat.JSON else _RENDERERS[fmt](verdict)
