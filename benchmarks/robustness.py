"""Robustness benchmark: every check on collections made differently, scored against planted problems.

    python benchmarks/robustness.py --data /work/bench-data \
        --cnn-model .../site-packages/fastdup/UndisclosedFastdupModel2.ort [--runs photos/onnx,digits/builtin]
    python benchmarks/robustness.py --smoke   # a tiny generated collection, every kind of run, in seconds

``--smoke`` needs no data: it builds a tiny ``shapes`` collection, its ``.cnn.parquet`` from a small untrained
ONNX net (``collections.py``'s ``tiny_onnx_model``) and scores ``builtin+cnnprobs``, ``onnx`` and
``precomputed`` runs over it (and ``datalab`` where the ``bench`` extra is installed).

Collections are built by ``benchmarks/collections.py`` (see its docstring; real photos and the CNN are
fetched for measuring only, never committed): ``shapes`` (drawn), ``digits`` (scikit-learn's real 8x8
scans, deduplicated), ``photos`` (real photos, e.g. the PyTorch tutorial's hymenoptera_data),
``cifar10n`` (CIFAR-10 training images under CIFAR-10N's crowd labels: real human label noise). Each run scans one
collection with one encoder: ``builtin``, ``onnx`` (the ``--cnn-model`` file through ``--encoder onnx``:
NHWC float32 RGB 0-255 at 224 px, as fastdup 2.54's MobileNetV3-Large ``UndisclosedFastdupModel2.ort``
wants; CC BY-NC-ND, measure only) or ``precomputed`` (``<collection>.cnn.parquet`` beside the collection).
An encoder suffixed ``+cnnprobs`` (``photos/builtin+cnnprobs``) also passes ``--pred-probs``: 5-fold
cross-validated logistic-regression probabilities on ``<collection>.cnn.parquet`` with the given (folder)
labels, as a team with its own model would supply them. ``<collection>/datalab`` runs no scan: it scores
cleanlab's Datalab label issues found from ``<collection>.cnn.parquet`` (``features=``) as a reference.

Scores, per check, against ``planted.json``:
- duplicates (exact_duplicate + near_duplicate + split_leakage findings): every pair of images sharing a
  group is a predicted pair; true pairs are planted (original, copy) pairs and natural pixel-identical
  pairs. Precision, recall (also per copy transform), and groups whose members carry different labels.
- split_leakage: predicted pairs of a leakage group in different splits, against cross-split plants.
- label_error: flagged images against planted label flips.
- ambiguous: flagged images against planted two-class blends.
- outlier and the rest: nothing is planted; only the flagged rate on clean images.
"clean %" is the share of clean images (no plant touches them) with a finding of that check: false alarms.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
import tomllib
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

DUPLICATE_CHECKS = ("exact_duplicate", "near_duplicate", "split_leakage")
# Finding kind (table row) -> the check whose run.json summary may carry a reliability verdict.
CHECK_OF_KIND = {"label_error": "label_errors", "ambiguous": "ambiguous", "outlier": "outliers",
                 "class_overlap": "class_overlap"}
DEFAULT_RUNS = ("shapes/builtin", "digits/builtin", "photos/builtin", "photos/onnx")


def cnn_pred_probs(collection: Path, out: Path) -> Path:
    """Out-of-sample probabilities from the CNN embeddings, keyed by path, one column per class."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    table = pd.read_parquet(collection.parent / f"{collection.name}.cnn.parquet")
    vectors = np.stack(table["embedding"].to_list()).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([path.split("/")[-2] for path in table["path"]])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    probs = cross_val_predict(LogisticRegression(max_iter=2000), vectors, labels, cv=folds, method="predict_proba")
    frame = pd.DataFrame(probs, columns=sorted(set(labels)))
    frame.insert(0, "path", table["path"])
    target = out / f"{collection.name}.cnn-probs.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target)
    return target


def datalab_findings(collection: Path) -> tuple[pd.DataFrame, dict]:
    """Reference: cleanlab's Datalab label issues on the CNN vectors, as label_error findings."""
    import numpy as np
    from cleanlab import Datalab

    table = pd.read_parquet(collection.parent / f"{collection.name}.cnn.parquet")
    vectors = np.stack(table["embedding"].to_list()).astype(np.float64)
    labels = [path.split("/")[-2] for path in table["path"]]
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={"label": {}})
    flagged = table["path"][lab.get_issues("label")["is_label_issue"].to_numpy()]
    findings = pd.DataFrame({"check": "label_error", "path": flagged, "severity": "warning", "group_id": None,
                             "other_path": None, "message": ""})
    return findings, {"encoder": {"identity": f"cleanlab Datalab(features={collection.name}.cnn.parquet)"},
                      "checks": {}}


def _setting(text: str) -> tuple[list[str], Any]:
    """``checks.label_errors.filter_by=prune_by_class`` -> (dotted path, TOML value; bare words are strings)."""
    key, _, raw = text.partition("=")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def scan(collection: Path, encoder_spec: str, out: Path, cache: Path, cnn_model: Path | None,
         checks: list[str] | None = None, settings: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    from auditor.core.config import load_config
    from auditor.scan import run_scan

    encoder, _, extra = encoder_spec.partition("+")
    pred_probs = cnn_pred_probs(collection, out.parent) if extra == "cnnprobs" else None

    overrides: dict[str, Any] = {"scan": {"cache_dir": str(cache)}, "encoder": {"name": encoder}}
    if checks:
        overrides["scan"]["checks"] = checks
    for text in settings or []:
        (*sections, key), value = _setting(text)
        table = overrides
        for section in sections:
            table = table.setdefault(section, {})
        table[key] = value
    if encoder == "onnx":
        if cnn_model is None:
            raise SystemExit("an onnx run needs --cnn-model FILE")
        overrides["encoder"].update(model_file=str(cnn_model),
                                    onnx={"scaling": "0-255", "resize": "stretch", "layout": "NHWC"})
    elif encoder == "precomputed":
        overrides["encoder"]["precomputed_file"] = str(collection.parent / f"{collection.name}.cnn.parquet")
    # Keyword only when used, so the script also scores branches that predate --pred-probs.
    extra_args = {"pred_probs": pred_probs} if pred_probs is not None else {}
    result = run_scan(collection, load_config(overrides=overrides), out, **extra_args)
    return pd.read_parquet(out / "findings.parquet"), result.run


def _pairs(groups: dict[Any, list[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for members in groups.values() for p in combinations(sorted(set(members)), 2)}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None or precision + recall == 0:
        return None
    return 2 * precision * recall / (precision + recall)


def score(findings: pd.DataFrame, planted: dict[str, Any], split_of: dict[str, str],
          label_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    clean = set(planted["clean"])
    rows: dict[str, dict[str, Any]] = {}

    truth_pairs = {frozenset((c["original"], c["copy"])) for c in planted["copies"]}
    for group in planted["natural_copies"]:
        truth_pairs |= {frozenset(p) for p in combinations(group, 2)}
    transform_of = {frozenset((c["original"], c["copy"])): c["transform"] for c in planted["copies"]}
    dup = findings[findings["check"].isin(DUPLICATE_CHECKS)]
    groups: dict[Any, list[str]] = defaultdict(list)
    for _, row in dup.iterrows():
        key = row["group_id"] if pd.notna(row["group_id"]) else ("pair", row["path"])
        groups[key].append(row["path"])
        if isinstance(row["other_path"], str):
            groups[key].append(row["other_path"])
    predicted = _pairs(groups)
    hit = predicted & truth_pairs
    mixed = sum(1 for members in groups.values() if len({label_of.get(p) for p in members}) > 1)
    per_transform: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair, transform in transform_of.items():
        per_transform[transform][1] += 1
        per_transform[transform][0] += pair in predicted
    flagged_paths = set(dup["path"])
    largest = max((len(set(m)) for m in groups.values()), default=0)
    missed = sorted(f"{transform_of.get(p, 'natural')}: {' ~ '.join(sorted(p))}" for p in truth_pairs - predicted)
    wrong = sorted(" ~ ".join(sorted(p)) for p in predicted - truth_pairs)
    rows["duplicates (pairs)"] = {
        "missed": missed, "wrong": wrong,
        "flagged": len(predicted), "precision": _ratio(len(hit), len(predicted)),
        "recall": _ratio(len(hit), len(truth_pairs)),
        "f1": _f1(_ratio(len(hit), len(predicted)), _ratio(len(hit), len(truth_pairs))),
        "clean": _ratio(len(flagged_paths & clean), len(clean)),
        "extra": f"groups {len(groups)}, mixed-label groups {mixed}, largest {largest}; "
                 + " ".join(f"{t} {h}/{n}" for t, (h, n) in sorted(per_transform.items())),
    }

    leak_truth = {frozenset((c["original"], c["copy"])) for c in planted["copies"] if c["cross_split"]}
    leak_ids = set(dup.loc[dup["check"] == "split_leakage", "group_id"])
    leak_groups = {k: v for k, v in groups.items() if k in leak_ids}
    leak_pred = {p for p in _pairs(leak_groups) if len({split_of.get(x) for x in p}) > 1}
    leak_hit = leak_pred & leak_truth
    leak_flagged = set(findings.loc[findings["check"] == "split_leakage", "path"])
    rows["split_leakage (pairs)"] = {
        "flagged": len(leak_pred), "precision": _ratio(len(leak_hit), len(leak_pred)),
        "recall": _ratio(len(leak_hit), len(leak_truth)),
        "f1": _f1(_ratio(len(leak_hit), len(leak_pred)), _ratio(len(leak_hit), len(leak_truth))),
        "clean": _ratio(len(leak_flagged & clean), len(clean)),
        "extra": f"{len(leak_flagged)} split_leakage findings",
    }

    def image_row(check: str, truth: set[str]) -> dict[str, Any]:
        rows_of = findings[findings["check"] == check]
        flagged = set(rows_of["path"])
        hits = flagged & truth
        severities = rows_of["severity"].astype(str).value_counts()
        # Findings a check marks as unreliable come as severity info: say how many.
        extra = f"{int(severities.get('info', 0))} of them info" if severities.get("info", 0) else ""
        precision = _ratio(len(hits), len(flagged)) if truth else None
        recall = _ratio(len(hits), len(truth))
        return {"flagged": len(flagged), "precision": precision, "recall": recall, "f1": _f1(precision, recall),
                "clean": _ratio(len(flagged & clean), len(clean)), "extra": extra}

    rows["label_error"] = image_row("label_error", {f["path"] for f in planted["label_flips"]})
    blends = {b["path"] for b in planted["blends"]}
    rows["ambiguous"] = image_row("ambiguous", blends)
    if blends:
        flagged_le = set(findings.loc[findings["check"] == "label_error", "path"])
        note = f"blends flagged as label_error: {len(flagged_le & blends)}/{len(blends)}"
        rows["ambiguous"]["extra"] = "; ".join(filter(None, [rows["ambiguous"]["extra"], note]))
    rows["outlier"] = image_row("outlier", set())
    overlap = findings[findings["check"] == "class_overlap"]
    rows["class_overlap"] = {"flagged": len(overlap), "precision": None, "recall": None, "f1": None, "clean": None,
                             "extra": "; ".join(str(m) for m in overlap["message"].head(3))}
    return rows


def _reliable(run: dict[str, Any], check: str | None) -> str:
    summary = run.get("checks", {}).get(check) if check else None
    if not isinstance(summary, dict) or "reliable" not in summary:
        return "-"
    return "yes" if summary["reliable"] else "NO"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def smoke_collection(work: Path) -> tuple[Path, Path, str]:
    """A tiny shapes collection with its CNN vectors from a small untrained ONNX net; returns the data folder,
    the model and the runs that score every path over it."""
    from vectors import DATALAB_MISSING, datalab_available  # benchmarks/vectors.py, beside this

    # By file: as a script this folder is on sys.path, but the name ``collections`` is the standard library's.
    spec = importlib.util.spec_from_file_location("bench_collections", Path(__file__).with_name("collections.py"))
    assert spec is not None and spec.loader is not None
    collections = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collections)
    data = work / "data"
    collections.build_shapes(data / "shapes", per_class=12)
    model = collections.tiny_onnx_model(work / "cnn.onnx")
    collections.embed_collection(data / "shapes", model, data / "shapes.cnn.parquet")
    runs = ["shapes/builtin+cnnprobs", "shapes/onnx", "shapes/precomputed"]
    if datalab_available():
        runs.append("shapes/datalab")
    else:
        print(DATALAB_MISSING)
    return data, model, ",".join(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/bench-data"), help="folder of built collections")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="collection/encoder pairs, comma-separated")
    parser.add_argument("--cnn-model", type=Path, help="ONNX CNN (NHWC, 0-255, 224 px) for */onnx runs")
    parser.add_argument("--out", type=Path, default=Path("/tmp/robustness"), help="scan outputs and cache")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--checks", help="run only these checks (comma-separated; default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. checks.label_errors.filter_by=prune_by_class (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="list missed planted copies and some wrong pairs")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny generated collection and a tiny ONNX net instead of --data and --cnn-model")
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="robustness-smoke-") as tmp:
            args.data, args.cnn_model, args.runs = smoke_collection(Path(tmp))
            args.out = Path(tmp) / "out"
            score_runs(args)
        return
    score_runs(args)


def score_runs(args: argparse.Namespace) -> None:
    """Scan (or run Datalab on) each collection, score it against planted.json, print the tables."""

    table: list[dict[str, Any]] = []
    for run_name in [r.strip() for r in args.runs.split(",") if r.strip()]:
        collection_name, encoder = run_name.split("/")
        collection = args.data / collection_name
        planted = json.loads((collection / "planted.json").read_text())
        started = time.perf_counter()
        if encoder == "datalab":
            findings, run = datalab_findings(collection)
            split_of = {path: path.split("/")[0] for path in planted["clean"]}
            label_of = {path: path.split("/")[-2] for path in planted["clean"]}
        else:
            findings, run = scan(collection, encoder, args.out / run_name.replace("/", "-"), args.out / "cache",
                                 args.cnn_model, args.checks.split(",") if args.checks else None, args.set)
            images = pd.read_parquet(args.out / run_name.replace("/", "-") / "images.parquet")
            split_of = dict(zip(images["path"], images["split"].fillna(""), strict=True))
            label_of = dict(zip(images["path"], images["label"].fillna(""), strict=True))
        elapsed = time.perf_counter() - started
        rows = score(findings, planted, split_of, label_of)
        for check, row in rows.items():
            figures = {k: v for k, v in row.items() if k not in ("missed", "wrong")}
            table.append({"run": run_name, "check": check, **figures,
                          "reliable": _reliable(run, CHECK_OF_KIND.get(check))})
        counts = planted["counts"]
        print(f"\n{run_name}: {counts['images']} images, {counts['copies']} copies ({counts['leaks']} leaks), "
              f"{counts['label_flips']} flips, {counts['blends']} blends, {counts['clean']} clean; "
              f"encoder {run['encoder']['identity']}; {elapsed:.0f} s", flush=True)
        verdicts = {name: summary["reliable"] for name, summary in run["checks"].items()
                    if isinstance(summary, dict) and "reliable" in summary}
        if verdicts:
            print(f"  reliable: {verdicts}")
        for check, row in rows.items():
            print(f"  {check:22s} flagged {row['flagged']:5d}  P {_fmt(row['precision'])}  R {_fmt(row['recall'])}"
                  f"  F1 {_fmt(row['f1'])}"
                  f"  clean {_fmt(row['clean'])}  {row['extra']}", flush=True)
            if args.verbose and "missed" in row:
                for line in row["missed"]:
                    print(f"      missed {line}")
                for line in row["wrong"][:10]:
                    print(f"      wrong  {line}")

    print("\n| run | check | flagged | precision | recall | F1 | clean flagged | reliable |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table:
        clean = "-" if row["clean"] is None else f"{100 * row['clean']:.1f}%"
        print(f"| {row['run']} | {row['check']} | {row['flagged']} | {_fmt(row['precision'])} | "
              f"{_fmt(row['recall'])} | {_fmt(row['f1'])} | {clean} | {row['reliable']} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
