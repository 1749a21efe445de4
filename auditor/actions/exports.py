"""``audit export``: hand the label findings to a labelling tool (Label Studio) or a dataset browser (FiftyOne).

Label Studio import format (one task per image with a label_error or ambiguous finding; waived findings
are left out, a reviewer already decided them):

- ``data.image``: ``image_prefix`` + the dataset-relative path, URL-encoded with its ``/`` separators kept
  (a path may hold spaces, ``#``, ``?``, ``+`` or ``%``, which a URL or Label Studio's local-files path reads as
  syntax); ``local_files_prefix`` gives the prefix for Label Studio's own file serving.
- ``data.labels`` and ``data.findings``: what the labelling view shows beside the image (the given and the
  suggested label; each finding's kind, score and evidence), as plain text; ``data.path``, ``data.split``.
- ``predictions``: the *suggested* label as a ``choices`` result with its probability as the score (a label
  error's suggestion is what auditor believes; the given label is what it doubts), so annotators accept or
  change it; none when auditor suggests no label (an ambiguous image: the view lists its candidates).
- ``meta``: each finding's kind, score, suggestion, probability, classes and details, and the content hash.

FiftyOne: one sample per readable image with one field per check (``auditor_<check>``: its own score, and its
duplicate group and partners, candidate classes or suggestion), the suggestion as a ``Classification`` with its
probability, and the run (encoder, reliability, run id) in ``dataset.info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from auditor import __version__
from auditor.core.errors import AuditorError
from auditor.results.findings import Finding
from auditor.results.reading import Results, describe_encoder
from auditor.results.summaries import JudgedSummary

LABEL_KINDS = ("label_error", "ambiguous")
# Label Studio serves files under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT at this URL (query ``d``: the path).
LOCAL_FILES_URL = "/data/local-files/?d="
NONE_SHOWN = "(none)"


def _label_findings(results: Results, kinds: tuple[str, ...]) -> dict[str, list[Finding]]:
    """Path -> its unwaived label findings, strongest first; paths in file order of the findings."""
    by_path: dict[str, list[Finding]] = {}
    for finding in results.finding_objects():
        if finding.check in kinds and finding.path and not finding.waived:
            by_path.setdefault(finding.path, []).append(finding)
    for items in by_path.values():
        items.sort(key=lambda f: (kinds.index(f.check), -f.score))
    return by_path


def suggestion_probability(finding: Finding) -> float | None:
    """How sure auditor is of a label error's suggested label: the out-of-sample probability of that class, or,
    for a conflict between identical copies, the share of the copies that carry it. None without a suggestion."""
    if finding.suggested_label is None:
        return None
    probability = finding.details.get("suggested_label_probability")
    if isinstance(probability, int | float):
        return float(probability)
    counts = finding.details.get("label_counts")
    if isinstance(counts, dict) and counts:
        return float(counts.get(finding.suggested_label, 0)) / float(sum(counts.values()))
    return None


def local_files_prefix(document_root: Path, dataset_root: Path) -> str:
    """The ``data.image`` prefix that Label Studio's local-files serving resolves: the dataset folder's path
    below the server's document root, URL-encoded, after ``/data/local-files/?d=``."""
    document, dataset = document_root.resolve(), dataset_root.resolve()
    if not dataset.is_relative_to(document):
        raise AuditorError(f"--local-files {document_root}: the dataset folder {dataset} is not inside it "
                           "(Label Studio serves only files below its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
    below = dataset.relative_to(document).as_posix()
    return LOCAL_FILES_URL + ("" if below == "." else quote(below, safe="/") + "/")


def _shown_labels(given: str | None, error: Finding | None, candidates: list[str]) -> str:
    suggestion = NONE_SHOWN
    if error is not None and error.suggested_label is not None:
        probability = suggestion_probability(error)
        suggestion = error.suggested_label + ("" if probability is None else f" ({probability:.0%})")
    shown = f"given: {given if given is not None else NONE_SHOWN} · suggested: {suggestion}"
    return shown + (f" · candidates: {', '.join(candidates)}" if candidates else "")


def _finding_meta(finding: Finding) -> dict[str, Any]:
    return {"check": finding.check, "score": finding.score, "suggested_label": finding.suggested_label,
            "probability": suggestion_probability(finding), "classes": list(finding.classes),
            "message": finding.message, "details": finding.details}


def _prediction(error: Finding | None, from_name: str, to_name: str) -> list[dict[str, Any]]:
    """The suggested label as Label Studio's pre-annotation, scored by its probability; none without both."""
    if error is None or error.suggested_label is None:
        return []
    probability = suggestion_probability(error)
    if probability is None:
        return []
    return [{"model_version": f"auditor {__version__}", "score": probability,
             "result": [{"id": "suggested", "from_name": from_name, "to_name": to_name, "type": "choices",
                         "value": {"choices": [error.suggested_label]}, "score": probability}]}]


def label_studio_tasks(results: Results, image_prefix: str = "", from_name: str = "label",
                       to_name: str = "image", kinds: tuple[str, ...] = LABEL_KINDS) -> list[dict[str, Any]]:
    """Image-classification tasks in Label Studio's import format (see the module docstring)."""
    tasks = []
    for path, items in _label_findings(results, kinds).items():
        first = items[0]
        error = next((f for f in items if f.check == "label_error"), None)
        candidates = sorted({c for f in items if f.check == "ambiguous" for c in f.classes})
        tasks.append({
            "data": {
                "image": f"{image_prefix}{quote(path, safe='/')}",
                "labels": _shown_labels(first.label, error, candidates),
                "findings": "\n".join(f"{f.check} · score {f.score:.3f} · {f.message}" for f in items),
                "path": path,
                "split": first.split or "",
            },
            "predictions": _prediction(error, from_name, to_name),
            "meta": {"findings": [_finding_meta(f) for f in items], "given_label": first.label,
                     "sha256": first.sha256},
        })
    return tasks


def label_studio_config(classes: list[str], from_name: str = "label", to_name: str = "image") -> str:
    """The labelling config the tasks refer to: the image, beside it the labels and findings, then the choices
    (create the project with it, or paste it into the project's Labeling Interface)."""
    choices = "\n".join(f"        <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        '  <View style="display: flex; gap: 1em; align-items: flex-start">\n'
        f'    <View style="flex: 2">\n      <Image name={quoteattr(to_name)} value="$image"/>\n    </View>\n'
        '    <View style="flex: 1">\n'
        '      <Header value="$labels" size="5"/>\n'
        '      <Text name="findings" value="$findings"/>\n'
        f'      <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} choice="single" showInline="false">\n'
        f"{choices}\n      </Choices>\n"
        "    </View>\n  </View>\n</View>\n"
    )


def _check_fields(check: str, items: list[Finding], groups: dict[tuple[str, int], set[str]],
                  path: str) -> dict[str, Any]:
    """One check's field for one image: its score, and what that check found about the image."""
    strongest = max(items, key=lambda f: f.score)
    fields: dict[str, Any] = {"score": strongest.score, "messages": [f.message for f in items]}
    if strongest.group_id is not None:
        fields["group_id"] = strongest.group_id
        partners = set(groups.get((check, strongest.group_id), set())) | {f.other_path for f in items if f.other_path}
        fields["partners"] = sorted(partners - {path})
    if check == "ambiguous":
        fields["candidates"] = sorted({c for f in items for c in f.classes})
    if strongest.suggested_label is not None:
        fields["suggested_label"] = strongest.suggested_label
        probability = suggestion_probability(strongest)
        if probability is not None:
            fields["probability"] = probability
    return fields


def _findings_by_path(results: Results) -> tuple[dict[str, list[Finding]], dict[tuple[str, int], set[str]]]:
    """Path -> its findings (waived ones too), and (check, group id) -> the paths in that group."""
    findings: dict[str, list[Finding]] = {}
    groups: dict[tuple[str, int], set[str]] = {}
    for finding in results.finding_objects():
        if finding.path:
            findings.setdefault(finding.path, []).append(finding)
            if finding.group_id is not None:
                groups.setdefault((finding.check, finding.group_id), set()).add(finding.path)
    return findings, groups


def fiftyone_records(results: Results, dataset_root: Path) -> list[dict[str, Any]]:
    """One record per readable image: absolute file path, label, split, its findings as tags, and per check
    with an unwaived finding, that check's fields (``checks``); the label error's suggestion and probability."""
    findings, groups = _findings_by_path(results)
    records = []
    for row in results.images.to_dict("records"):
        if not bool(row["readable"]):
            continue
        path = str(row["path"])
        items = findings.get(path, [])
        unwaived: dict[str, list[Finding]] = {}
        for finding in items:
            if not finding.waived:
                unwaived.setdefault(finding.check, []).append(finding)
        error = max(unwaived.get("label_error", []), key=lambda f: f.score, default=None)
        records.append({
            "filepath": str((dataset_root / path).resolve()),
            "label": row["label"] if isinstance(row["label"], str) else None,
            "split": row["split"] if isinstance(row["split"], str) else None,
            "tags": sorted({("waived:" if f.waived else "") + f.check for f in items}),
            "auditor_findings": sorted(unwaived),
            "checks": {check: _check_fields(check, found, groups, path) for check, found in sorted(unwaived.items())},
            "suggested_label": error.suggested_label if error else None,
            "suggestion_probability": suggestion_probability(error) if error else None,
        })
    return records


def fiftyone_info(results: Results) -> dict[str, Any]:
    """What ``dataset.info`` records about the run: which encoder ran, whether each model-based check's
    evidence was judged reliable, and the run id to find the results folder again."""
    reliability = {check: {"reliable": summary.reliable, "reason": summary.reliability_reason}
                   for check, summary in results.summaries.items() if isinstance(summary, JudgedSummary)}
    return {"auditor_version": __version__, "run_id": results.run.get("run_id"),
            "created": results.run.get("created"), "encoder": describe_encoder(results.run),
            "encoder_details": results.run.get("encoder") or {}, "reliability": reliability,
            "results": str(results.directory.resolve())}


def _database_error(exc: Exception) -> AuditorError:
    return AuditorError(
        f"FiftyOne's database did not start ({type(exc).__name__}: {exc}); check FiftyOne's setup: the "
        "fiftyone-db package must provide a mongod that runs on this machine, or set FIFTYONE_DATABASE_URI to a "
        "MongoDB you run (https://docs.voxel51.com/installation/troubleshooting.html)")


def _open_fiftyone() -> Any:
    try:
        import fiftyone as fo  # optional and heavy (starts a database): imported only for this export
    except ImportError:
        raise AuditorError("--to fiftyone needs the optional package: pip install fiftyone") from None
    return fo


def _sample(fo: Any, record: dict[str, Any]) -> Any:
    sample = fo.Sample(filepath=record["filepath"], tags=record["tags"])
    if record["label"] is not None:
        sample["ground_truth"] = fo.Classification(label=record["label"])
    if record["suggested_label"] is not None:
        sample["auditor_suggestion"] = fo.Classification(label=record["suggested_label"],
                                                         confidence=record["suggestion_probability"])
    sample["split"] = record["split"]
    sample["auditor_findings"] = record["auditor_findings"]
    for check, fields in record["checks"].items():
        sample[f"auditor_{check}"] = fo.DynamicEmbeddedDocument(**fields)
    return sample


def to_fiftyone(records: list[dict[str, Any]], info: dict[str, Any], name: str, overwrite: bool = False) -> Any:
    """A persistent FiftyOne dataset named ``name``; one of that name is replaced only with ``overwrite``."""
    fo = _open_fiftyone()
    try:
        exists = bool(fo.dataset_exists(name))
    except Exception as exc:  # noqa: BLE001 - whatever a database that cannot start raises (fiftyone, pymongo)
        raise _database_error(exc) from None
    if exists and not overwrite:
        raise AuditorError(f"a FiftyOne dataset named {name!r} already exists; pass --overwrite to replace it, "
                           "or --name another")
    dataset = fo.Dataset(name, overwrite=overwrite)
    dataset.add_samples([_sample(fo, record) for record in records])
    dataset.info = info
    dataset.persistent = True
    dataset.save()
    return dataset
