"""``audit export``: hand the label findings to a labelling tool (Label Studio) or a dataset browser (FiftyOne).

Label Studio import format (one task per image with a label_error or ambiguous finding; waived findings
are left out, a reviewer already decided them):

- ``data.image``: ``image_prefix`` + the dataset-relative path, URL-encoded with its ``/`` separators kept
  (a path may hold spaces, ``#``, ``?`` or ``%``, which a URL or Label Studio's local-files path reads as syntax);
  ``data.path``, ``data.split``: the path as in the findings and its split.
- ``predictions[0]``: the *given* label as a ``choices`` result (``from_name``/``to_name`` must match the
  labelling config written beside the tasks), so annotators confirm or change it; ``model_version``
  names auditor; ``score`` is the finding's score.
- ``meta``: ``findings`` (kinds), ``suggested_label`` and ``score`` (label_error), ``candidates``
  (ambiguous: the plausible classes), ``messages``, ``sha256``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from auditor import __version__
from auditor.core.errors import AuditorError
from auditor.results.findings import Finding
from auditor.results.reading import Results

LABEL_KINDS = ("label_error", "ambiguous")


def _label_findings(results: Results, kinds: tuple[str, ...]) -> dict[str, list[Finding]]:
    """Path -> its unwaived label findings, strongest first; paths in file order of the findings."""
    by_path: dict[str, list[Finding]] = {}
    for finding in results.finding_objects():
        if finding.check in kinds and finding.path and not finding.waived:
            by_path.setdefault(finding.path, []).append(finding)
    for items in by_path.values():
        items.sort(key=lambda f: (kinds.index(f.check), -f.score))
    return by_path


def label_studio_tasks(results: Results, image_prefix: str = "", from_name: str = "label",
                       to_name: str = "image", kinds: tuple[str, ...] = LABEL_KINDS) -> list[dict[str, Any]]:
    """Image-classification tasks in Label Studio's import format (see the module docstring)."""
    tasks = []
    for path, items in _label_findings(results, kinds).items():
        first = items[0]
        error = next((f for f in items if f.check == "label_error"), None)
        candidates = sorted({c for f in items if f.check == "ambiguous" for c in f.classes})
        result = []
        if first.label is not None:
            result.append({"id": "given", "from_name": from_name, "to_name": to_name, "type": "choices",
                           "value": {"choices": [first.label]}})
        tasks.append({
            "data": {"image": f"{image_prefix}{quote(path, safe='/')}", "path": path, "split": first.split},
            "predictions": [{"model_version": f"auditor {__version__} (given label)", "score": first.score,
                             "result": result}],
            "meta": {
                "findings": [f.check for f in items],
                "suggested_label": error.suggested_label if error else None,
                "score": error.score if error else first.score,
                "candidates": candidates,
                "messages": [f.message for f in items],
                "sha256": first.sha256,
            },
        })
    return tasks


def label_studio_config(classes: list[str], from_name: str = "label", to_name: str = "image") -> str:
    """The labelling config the tasks' predictions refer to (paste into the project's Labeling Interface)."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (f"<View>\n  <Image name={quoteattr(to_name)} value=\"$image\"/>\n"
            f"  <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} choice=\"single\">\n"
            f"{choices}\n  </Choices>\n</View>\n")


def fiftyone_records(results: Results, dataset_root: Path) -> list[dict[str, Any]]:
    """One record per readable image: absolute file path, label, split, and its findings as tags and fields."""
    findings: dict[str, list[Finding]] = {}
    for finding in results.finding_objects():
        if finding.path:
            findings.setdefault(finding.path, []).append(finding)
    records = []
    for row in results.images.to_dict("records"):
        if not bool(row["readable"]):
            continue
        path = str(row["path"])
        items = findings.get(path, [])
        error = next((f for f in items if f.check == "label_error"), None)
        records.append({
            "filepath": str((dataset_root / path).resolve()),
            "label": row["label"] if isinstance(row["label"], str) else None,
            "split": row["split"] if isinstance(row["split"], str) else None,
            "tags": sorted({("waived:" if f.waived else "") + f.check for f in items}),
            "auditor_findings": [f.check for f in items if not f.waived],
            "auditor_max_score": max((f.score for f in items if not f.waived), default=None),
            "auditor_suggested_label": error.suggested_label if error else None,
        })
    return records


def to_fiftyone(records: list[dict[str, Any]], name: str) -> Any:
    """A persistent FiftyOne dataset (replacing one of the same name); ``fiftyone`` is optional."""
    try:
        import fiftyone as fo  # optional and heavy (starts a database): imported only for this export
    except ImportError:
        raise AuditorError("--to fiftyone needs the optional package: pip install fiftyone") from None
    dataset = fo.Dataset(name, overwrite=True)
    samples = []
    for record in records:
        sample = fo.Sample(filepath=record["filepath"], tags=record["tags"])
        if record["label"] is not None:
            sample["ground_truth"] = fo.Classification(label=record["label"])
        if record["auditor_suggested_label"] is not None:
            sample["auditor_suggestion"] = fo.Classification(label=record["auditor_suggested_label"])
        for key in ("split", "auditor_findings", "auditor_max_score"):
            sample[key] = record[key]
        samples.append(sample)
    dataset.add_samples(samples)
    dataset.persistent = True
    return dataset
