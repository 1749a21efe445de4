"""``audit report``: a scan's results as a terminal report, a Markdown comment, or a self-contained HTML page.

Each format is a plug-in behind ``Renderer``; ``RENDERERS`` maps every ``ReportFormat`` to one (a test
asserts the mapping is exhaustive), so adding a format is an enum member plus a renderer module.
"""

from __future__ import annotations

from pathlib import Path

from auditor.report.base import Renderer, ReportData, ReportFormat, ReportOptions, prepare
from auditor.report.html import HtmlRenderer
from auditor.report.markdown import MarkdownRenderer
from auditor.report.safe import encodable
from auditor.report.terminal import TerminalRenderer
from auditor.results.outputs import atomic_write
from auditor.results.reading import Results, ResultsError, load_results, with_current_decisions

__all__ = [
    "RENDERERS",
    "ReportData",
    "ReportFormat",
    "ReportOptions",
    "Renderer",
    "Results",
    "ResultsError",
    "load_results",
    "render",
    "render_results",
    "renderer_for",
    "write_report",
]

RENDERERS: dict[ReportFormat, type[Renderer]] = {
    ReportFormat.TERMINAL: TerminalRenderer,
    ReportFormat.MARKDOWN: MarkdownRenderer,
    ReportFormat.HTML: HtmlRenderer,
}


def renderer_for(fmt: ReportFormat) -> Renderer:
    return RENDERERS[ReportFormat(fmt)]()


def render(results: Results, fmt: ReportFormat, options: ReportOptions | None = None) -> str:
    """Render loaded results; raises ``AuditorError`` for an unknown ``--check`` or ``--dataset``."""
    options = options or ReportOptions()
    # Whatever a renderer passed through as is, the text must encode as UTF-8 (stdout, a report file).
    return encodable(renderer_for(fmt).render(prepare(results, options), options))


def write_report(path: Path, text: str) -> None:
    """Write atomically, so an interrupted run never leaves half a page where a report was."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def render_results(directory: Path, fmt: ReportFormat, options: ReportOptions | None = None) -> str:
    """Load a results folder written by ``audit scan`` and render it (waivers as the decisions file is now)."""
    return render(with_current_decisions(load_results(directory)), fmt, options)
