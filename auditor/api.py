"""The Python API for notebooks and scripts: ``auditor.scan(path, **options)`` scans and returns an ``Audit``.

An ``Audit`` is one results folder seen from Python: the findings and images as DataFrames, counts per
check, the gate's verdict, any report format as text, and a summary with thumbnails when a notebook shows
it. It reads the same files the CLI writes, so a scan from either is opened by the other
(``Audit.load("audit_results")``). The options are the CLI's, as keyword arguments.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.actions.gate import Verdict, evaluate
from auditor.checks import PARAMS
from auditor.cli.scan import config_overrides
from auditor.core.config import AuditConfig, GateConfig, load_config
from auditor.report import ReportFormat, ReportOptions, render, write_report
from auditor.report.base import SEVERITIES, format_score, subject
from auditor.report.safe import encodable
from auditor.report.thumbnails import Thumbnailer
from auditor.results.decisions import load_decisions
from auditor.results.findings import Finding
from auditor.results.reading import Results, load_results, recorded_decisions_file, with_current_decisions
from auditor.scan.pipeline import run_scan

__all__ = ["DEFAULT_OUT", "Audit", "scan"]

DEFAULT_OUT = Path("audit_results")  # as `audit scan`
# The options `audit scan` takes as flags, under their Python names (see ``auditor.cli.scan.config_overrides``).
SCAN_OPTIONS = frozenset({"encoder", "device", "batch_size", "workers", "embeddings", "model_file", "cache_dir",
                          "engine", "ray_address"})
# Findings a notebook shows under the counts, best first (all of them are in ``Audit.findings``).
SHOWN_FINDINGS = 8


def scan(
    dataset: str | Path,
    out: str | Path = DEFAULT_OUT,
    *,
    config: str | Path | AuditConfig | None = None,
    checks: Sequence[str] | None = None,
    use_cache: bool = True,
    manifest: str | Path | None = None,
    pred_probs: str | Path | None = None,
    **options: Any,
) -> Audit:
    """Scan ``dataset`` as ``audit scan`` does, write the results to ``out``, and return them as an ``Audit``.

    ``config``: a TOML file or an ``AuditConfig``; ``checks``: the checks to run (default: all); ``options``:
    the scan's flags by their Python names (``encoder="builtin"``, ``workers=0``, ``cache_dir=...``), which
    override the config as on the command line. Raises ``AuditorError`` where the CLI exits with 2.
    """
    unknown = sorted(set(options) - SCAN_OPTIONS)
    if unknown:
        raise TypeError(f"scan() got unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(SCAN_OPTIONS))}")
    overrides = config_overrides(**options)
    if not use_cache:
        overrides.setdefault("scan", {})["use_cache"] = False
    if checks is not None:
        overrides.setdefault("scan", {})["checks"] = list(checks)
    if isinstance(config, AuditConfig):
        # Overrides apply on top of the given config, as they do on top of a config file.
        cfg = load_config(None, _merged(config.model_dump(mode="json", exclude_defaults=True), overrides),
                          check_params=PARAMS)
    else:
        cfg = load_config(Path(config) if config is not None else None, overrides, check_params=PARAMS)
    run_scan(Path(dataset), cfg, Path(out), manifest=_path(manifest), pred_probs=_path(pred_probs))
    return Audit.load(out)


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merged(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


class Audit:
    """One scan's results. Waivers are applied as the decisions file is now, as ``audit report`` applies them."""

    def __init__(self, results: Results) -> None:
        self._recorded = results  # as the scan wrote it: the gate applies the decisions file itself
        self._results = with_current_decisions(results)

    @classmethod
    def load(cls, results_dir: str | Path) -> Audit:
        """Open a results folder written by ``audit scan`` or ``auditor.scan``."""
        return cls(load_results(Path(results_dir)))

    @property
    def directory(self) -> Path:
        return self._results.directory

    @property
    def run(self) -> dict[str, Any]:
        """run.json: the dataset, the encoder, each check's summary, the warnings."""
        return self._results.run

    @property
    def findings(self) -> pd.DataFrame:
        """One row per finding (findings.parquet's columns; ``details`` is JSON text); a copy to change freely."""
        return self._results.findings.copy()

    @property
    def images(self) -> pd.DataFrame:
        """One row per file the scan saw, readable or not, with its label, split and measured properties."""
        return self._results.images.copy()

    def summary(self) -> pd.DataFrame:
        """Findings per kind (rows) and severity (columns), with their total and how many a review waived."""
        columns = [*SEVERITIES, "total", "waived"]
        rows: dict[str, dict[str, int]] = {}
        for finding in self._results.finding_objects():
            row = rows.setdefault(finding.check, dict.fromkeys(columns, 0))
            if finding.waived:
                row["waived"] += 1
                continue
            row[str(finding.severity)] += 1
            row["total"] += 1
        table = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(int)
        table.index.name = "check"
        return table.sort_values(["total", "check"], ascending=[False, True], kind="stable") if rows else table

    def gate(self, config: str | Path | GateConfig | Mapping[str, Any] | None = None,
             baseline: Audit | str | Path | None = None) -> Verdict:
        """The CI gate's verdict (``verdict.passed``, ``verdict.rules``). ``config``: a TOML file with a [gate]
        section, a ``GateConfig``, or the [gate] table as a dict; None: the default rules. ``baseline``: count
        only findings it lacks, as ``audit gate --baseline``."""
        if isinstance(config, GateConfig):
            rules = config
        elif isinstance(config, Mapping):
            rules = load_config(overrides={"gate": dict(config)}).gate
        else:
            rules = load_config(Path(config) if config is not None else None).gate
        if isinstance(baseline, Audit):
            base: Results | None = baseline._recorded
        else:
            base = load_results(Path(baseline)) if baseline is not None else None
        decisions = recorded_decisions_file(self._recorded)
        return evaluate(self._recorded, rules, base, load_decisions(decisions) if decisions is not None else None)

    def report(self, format: str = "markdown", path: str | Path | None = None, *,  # noqa: A002 - the CLI's name
               checks: Sequence[str] = (), top: int | None = None, dataset: str | Path | None = None) -> str:
        """The report as ``audit report --format`` writes it (terminal, markdown or html); also written to
        ``path`` when given. ``top``: findings per check (0: all); ``dataset``: where the images are now."""
        options = ReportOptions(checks=tuple(checks), top=top, dataset=_path(dataset))
        text = render(self._results, ReportFormat(format), options)
        if path is not None:
            write_report(Path(path), text)
        return text

    def __repr__(self) -> str:
        counts = self.summary()["total"]
        return f"<Audit {self.directory}: {int(counts.sum())} findings in {len(counts)} kinds>"

    def _repr_html_(self) -> str:
        """What a notebook shows: the counts per check, then the best-scored findings with thumbnails."""
        return encodable(notebook_html(self._results, self.summary()))


def notebook_html(results: Results, summary: pd.DataFrame) -> str:
    """A compact HTML summary: the counts, then the ``SHOWN_FINDINGS`` best-scored findings. Every data string
    is escaped (a label or path is never markup)."""
    dataset = results.run.get("dataset") or {}
    root = dataset.get("root")
    max_pixels = int(((results.run.get("config") or {}).get("scan") or {}).get("max_image_pixels", 89_478_485))
    readable = dict(zip(results.images["path"].astype(str), results.images["readable"].astype(bool), strict=True))
    thumbs = Thumbnailer(Path(root) if root and Path(root).is_dir() else None, readable, max_pixels)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in summary.columns)
    rows = "".join(
        f"<tr><th>{html.escape(str(check))}</th>" + "".join(f"<td>{int(n)}</td>" for n in row) + "</tr>"
        for check, row in summary.iterrows()
    )
    best = sorted((f for f in results.finding_objects() if not f.waived), key=lambda f: -f.score)[:SHOWN_FINDINGS]
    cards = "".join(_card(finding, thumbs) for finding in best)
    title = html.escape(f"Audit of {root or '?'}: {int(summary['total'].sum())} findings")
    return (f'<div class="auditor-audit"><p><strong>{title}</strong> '
            f'<span style="opacity:.7">({html.escape(str(results.directory))})</span></p>'
            f'<table><thead><tr><th>check</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
            f'<div style="display:flex;flex-wrap:wrap;gap:10px">{cards}</div></div>')


def _card(finding: Finding, thumbs: Thumbnailer) -> str:
    uri = thumbs.uri(finding.path)
    image = f'<img src="{html.escape(uri)}" alt="" style="width:96px;height:96px;object-fit:contain">' if uri else ""
    change = f"{finding.label} → {finding.suggested_label}" if finding.suggested_label else (finding.label or "")
    lines = [f"<strong>{html.escape(finding.check)}</strong> · {html.escape(str(finding.severity))} · "
             f"{html.escape(format_score(finding.score))}",
             html.escape(change), f"<code>{html.escape(subject(finding))}</code>"]
    return (f'<div style="width:180px;font-size:12px;overflow-wrap:break-word">{image}<div>'
            + "<br>".join(line for line in lines if line) + "</div></div>")
