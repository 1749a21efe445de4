"""``audit report``'s options name the formats without importing the renderers (which load pandas)."""

from __future__ import annotations

from typing import get_args

from auditor.cli.gate import GateFormatName
from auditor.cli.report import ReportFormatName
from auditor.report import ReportFormat
from auditor.report.gate_render import GateFormat


def test_the_spelled_out_formats_are_the_renderers_formats() -> None:
    assert set(get_args(ReportFormatName)) == {fmt.value for fmt in ReportFormat}
    assert set(get_args(GateFormatName)) == {fmt.value for fmt in GateFormat}
