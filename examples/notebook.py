"""auditor from Python, as in a notebook: scan a dataset, look at the findings, gate them, write a report.

Run it as a script (``python examples/notebook.py [DATASET] [OUT]``; defaults: sample_data and a temporary
folder), or paste the cells (``# %%``) into Jupyter, where ``audit`` on its own shows the counts per check and
the best-scored findings with thumbnails. docs/python-api.md explains each call.
"""

# %%
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import auditor


def main(dataset: Path, out: Path) -> None:
    # %% Scan: the options are `audit scan`'s flags as keywords (here the built-in encoder, no worker processes).
    audit = auditor.scan(dataset, out, encoder="builtin", workers=0)
    print(audit)

    # %% Findings per check and severity, as a DataFrame.
    print(audit.summary())

    # %% The findings and images are DataFrames: filter, join and plot them like any other.
    findings = audit.findings
    label_errors = findings[findings["check"] == "label_error"]
    print(label_errors[["path", "label", "suggested_label", "score"]].head())
    images = audit.images
    print(f"{int(images['readable'].sum())} of {len(images)} files readable")

    # %% The CI gate's verdict, with the rules given as the [gate] table of a config file.
    verdict = audit.gate({"max_label_error_rate": 0.05, "max_unreadable": 0})
    for rule in verdict.rules:
        print(f"{rule.status:>7}  {rule.name}: {rule.detail}")

    # %% Any report format as text; the HTML page is also written to a file.
    report = out / "report.html"
    audit.report("html", report)
    print(f"report: {report}")

    # %% A later session opens the same results without scanning again.
    again = auditor.Audit.load(out)
    print(again.summary().loc[:, "total"].sum(), "findings, read back")

    # %% In Jupyter, `audit` as a cell's last line shows this HTML.
    print(f"{len(audit._repr_html_()):,} characters of notebook HTML")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    dataset = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "sample_data"
    if len(sys.argv) > 2:
        main(dataset, Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(dataset, Path(folder) / "audit_results")
