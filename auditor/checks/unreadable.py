"""Files that cannot be read or decoded: reported with the reason, never fatal."""

from __future__ import annotations

from auditor.checks.base import Check, CheckContext, CheckResult, NoParams
from auditor.results.findings import Finding, FindingKind, Severity, plain
from auditor.results.summaries import UnreadableSummary


class UnreadableCheck(Check[NoParams]):
    name = "unreadable"
    description = "files that cannot be read or decoded as images (corrupt, truncated, empty, bombs, bad names)"
    kinds = {
        "unreadable": FindingKind(
            "Unreadable files",
            "Files that could not be decoded; they were left out of every other check.",
            layout="unreadable", order=0,
        ),
    }

    def run(self, ctx: CheckContext) -> CheckResult:
        bad = ctx.images[~ctx.images["readable"]]
        findings = [
            Finding(
                check=self.name,
                severity=Severity.ERROR,
                message=f"unreadable: {row.unreadable_reason}",
                path=row.path,
                label=plain(row.label),
                split=plain(row.split),
                sha256=plain(row.sha256),
                score=1.0,
                details={"reason": row.unreadable_reason, "size_bytes": plain(row.size_bytes)},
            )
            for row in bad.itertuples(index=False)
        ]
        return CheckResult(findings, summary=UnreadableSummary(count=len(findings)))
