"""The checks at scale on synthetic vectors, side by side with cleanlab's Datalab on the same vectors.

    nice python benchmarks/scale.py --vectors 1000,20000,100000 --datalab 1000,20000,100000
    nice python benchmarks/vectors.py --child auditor --n 20000      # one run, its figures as JSON
    python benchmarks/vectors.py --smoke   # 400 vectors, auditor (and Datalab's label analysis if installed)

Data (the same for both sides, regenerated from one seed in each run's own process): N 512-d float32
vectors, 10 classes at N < 10,000 and 100 above (100 classes at 20k is issue 18's measurement), balanced.
``--data modes`` (default): each class a mixture of 20 modes (mode = class centre + N(0, 0.7²) per dimension,
image = mode + N(0, 0.25²)), as real embeddings cluster by viewpoint, background, breed;
``--data isotropic``: class centre plus N(0, 1.2²) noise, as scale.py's images: no neighbourhood structure,
so approximate indexes cannot reach their recall target and fall back to exact search.
Planted: 1% of images carry another class's vector under their own label (label errors), 0.5% are near
copies of the image before them (noise 0.01), 0.1% exact copies (same vector, same pixel hash). Image facts
the checks read are synthetic too: unique content hashes, random 64-bit pHash/dHash and levelled hashes (near
copies differ in 2 bits), 640x480, pixel properties uniform in 0.2..0.8. No image file is written: the whole
check stage runs on the in-memory context (``auditor.scan.pipeline.run_checks``), default config.

What each side computes:
- auditor, every registered check (unreadable, class_imbalance, duplicates, label_errors, class_overlap,
  ambiguous, outliers, image_quality), default config. The shared evidence is timed first, on its own:
  the K-fold linear-discriminant out-of-sample probabilities ("classifier"), their blend with the
  leave-one-out k-NN vote ("k-NN vote"), class closeness (each image against its nearest members of every
  class); the check rows are what is left to each check. "label-error stage" = classifier + k-NN vote +
  the label_errors check: what a scan's label_errors row costs.
- Datalab "label": ``Datalab(data={"label": labels}, label_name="label")`` then
  ``find_issues(features=vectors, issue_types={"label": {}})``: cleanlab builds a k-NN graph (sklearn,
  exact) and derives its k-NN out-of-sample probabilities from it, then confident learning.
- Datalab "all": the same with ``issue_types={"label", "near_duplicate", "outlier", "class_imbalance"}``:
  one k-NN graph shared by all four. Datalab has no ambiguity or class-overlap analysis and no
  perceptual-hash duplicates; auditor has no non-IID check.

Each run is its own child process (``nice``d like its parent); peak memory is that process's ru_maxrss
(``os.wait4``), so it includes the vectors themselves (N x 2 KiB) and the libraries' imports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 512
SPREAD = 1.2  # isotropic: noise around the class centre, per dimension
MODES = 20  # modes: modes per class, each N(centre, 0.7^2) per dimension, images N(mode, 0.25^2)
MODE_SPREAD, MODE_NOISE = 0.7, 0.25
LABEL_NOISE = 0.01
NEAR_COPIES = 0.005
EXACT_COPIES = 0.001


def classes_for(count: int) -> int:
    return 10 if count < 10_000 else 100


def synthetic(count: int, seed: int = 0, kind: str = "modes") -> dict[str, np.ndarray]:
    """Vectors, given labels and planted problems, generated in chunks (no float64 copy of the matrix)."""
    rng = np.random.default_rng(seed)
    classes = classes_for(count)
    centres = rng.standard_normal((classes, DIM), dtype=np.float32)
    modes = centres[:, None, :] + MODE_SPREAD * rng.standard_normal((classes, MODES, DIM), dtype=np.float32)
    labels = np.arange(count) % classes
    flipped = rng.random(count) < LABEL_NOISE
    source = labels.copy()
    source[flipped] = (labels[flipped] + rng.integers(1, classes, size=int(flipped.sum()))) % classes
    vectors = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 65_536):
        stop = min(start + 65_536, count)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        if kind == "isotropic":
            vectors[start:stop] = centres[source[start:stop]] + SPREAD * noise
        else:
            mode = rng.integers(MODES, size=stop - start)
            vectors[start:stop] = modes[source[start:stop], mode] + MODE_NOISE * noise
    draw = rng.random(count)
    near = np.flatnonzero(draw < NEAR_COPIES)
    near = near[near > 0]
    exact = np.flatnonzero((draw >= NEAR_COPIES) & (draw < NEAR_COPIES + EXACT_COPIES))
    exact = exact[exact > 0]
    vectors[near] = vectors[near - 1] + 0.01 * rng.standard_normal((len(near), DIM), dtype=np.float32)
    vectors[exact] = vectors[exact - 1]
    # A copy shares its original's label (copying the vector of a flipped image copies its flip too).
    labels[near], labels[exact], flipped[near], flipped[exact] = (labels[near - 1], labels[exact - 1],
                                                                 flipped[near - 1], flipped[exact - 1])
    return {"vectors": vectors, "labels": labels, "flipped": flipped, "near": near, "exact": exact}


def _images_frame(data: dict[str, np.ndarray], seed: int) -> Any:
    import pandas as pd

    from auditor.ingest.properties import PROPERTY_COLUMNS

    rng = np.random.default_rng(seed + 1)
    count = len(data["labels"])
    content = np.arange(count)
    content[data["exact"]] = data["exact"] - 1
    hashes = rng.integers(0, 2**63, size=(4, count), dtype=np.int64)  # pHash, dHash, levelled pHash + dHash
    flip = np.int64(0b101) << rng.integers(0, 60, size=len(data["near"]))
    hashes[:, data["near"]] = hashes[:, data["near"] - 1] ^ flip
    hashes[:, data["exact"]] = hashes[:, data["exact"] - 1]
    shas = [f"{c:064x}" for c in content]
    return pd.DataFrame({
        "path": [f"class_{label:03d}/img_{i:07d}.jpg" for i, label in enumerate(data["labels"])],
        "label": [f"class_{label:03d}" for label in data["labels"]],
        "split": None, "sha256": shas, "size_bytes": 50_000, "width": 640, "height": 480, "format": "JPEG",
        "mode": "RGB", "readable": True, "unreadable_reason": None, "pixel_sha256": shas,
        "phash": [f"{h:016x}" for h in hashes[0]], "dhash": [f"{h:016x}" for h in hashes[1]],
        "levelled_hash": [f"{p:016x}{d:016x}" for p, d in zip(hashes[2], hashes[3], strict=True)],
        **{name: rng.uniform(0.2, 0.8, size=count) for name in PROPERTY_COLUMNS},
        "embedding_row": np.arange(count),
    })


def _planted_recall(flagged: set[int], data: dict[str, np.ndarray]) -> dict[str, Any]:
    truth = set(np.flatnonzero(data["flipped"]).tolist())
    hits = len(flagged & truth)
    return {"flagged": len(flagged), "planted": len(truth), "recall": hits / max(len(truth), 1),
            "precision": hits / max(len(flagged), 1)}


def _copy_recall(pairs_found: set[int], data: dict[str, np.ndarray]) -> float:
    planted = set(data["near"].tolist()) | set(data["exact"].tolist())
    return len(pairs_found & planted) / max(len(planted), 1)


def run_auditor(count: int, seed: int, kind: str) -> dict[str, Any]:
    from auditor.checks import CheckContext
    from auditor.core import slow_imports
    from auditor.core.config import AuditConfig
    from auditor.core.encoder_facts import EncoderInfo
    from auditor.scan.pipeline import run_checks

    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = synthetic(count, seed, kind)
    images = _images_frame(data, seed)
    timings["generate"] = time.perf_counter() - started
    # cleanlab, scipy.stats and scipy.optimize, imported as a scan imports them: in the background while it reads
    # images. Timed on their own, as Datalab's side imports cleanlab before its clock starts.
    started = time.perf_counter()
    slow_imports.start()
    slow_imports.wait()
    timings["imports"] = time.perf_counter() - started
    classes = sorted(images["label"].unique().tolist())
    context = CheckContext(images=images, embeddings=data["vectors"], classes=classes, splits=[],
                           empty_classes={}, encoder=EncoderInfo("precomputed", "precomputed", "synthetic", DIM,
                                                                 False),
                           config=AuditConfig())
    for stage, evidence in (("classifier", "regression_probs"), ("k-NN vote", "pred_probs"),
                            ("class closeness", "class_neighbourhoods")):
        started = time.perf_counter()
        getattr(context.evidence, evidence)
        timings[stage] = time.perf_counter() - started
    stage_result = run_checks(context)
    timings.update({f"check {name}": seconds for name, seconds in stage_result.timings.items()})
    row_of = {path: i for i, path in enumerate(images["path"])}
    by_kind: dict[str, set[int]] = {}
    for finding in stage_result.findings:
        by_kind.setdefault(finding.check, set()).add(row_of[finding.path])
    copies = by_kind.get("exact_duplicate", set()) | by_kind.get("near_duplicate", set())
    return {
        "timings": timings,
        "findings": {kind: len(rows) for kind, rows in sorted(by_kind.items())},
        "label": _planted_recall(by_kind.get("label_error", set()), data),
        "copy_recall": _copy_recall(copies, data),
        "summaries": {name: {k: v for k, v in summary.as_json().items() if k in ("search", "recall", "ann", "index")}
                      for name, summary in stage_result.summaries.items()},
        "warnings": stage_result.warnings,
        # Each neighbour search (exact or approximate, measured recall) where the code records them.
        "searches": [dict(r) for r in getattr(getattr(context, "searches", None), "records", [])],
    }


DATALAB_MISSING = ("Datalab comparison skipped: cleanlab's Datalab needs the bench extra "
                   "(pip install -e '.[bench]')")


def datalab_available() -> bool:
    """Whether cleanlab's Datalab can run here (it needs Hugging Face datasets, the ``bench`` extra)."""
    from cleanlab import Datalab

    return isinstance(Datalab, type)


def run_datalab(count: int, seed: int, kind: str, issue_types: list[str]) -> dict[str, Any]:
    import warnings

    from cleanlab import Datalab

    warnings.filterwarnings("ignore")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = synthetic(count, seed, kind)
    timings["generate"] = time.perf_counter() - started
    started = time.perf_counter()
    lab = Datalab(data={"label": data["labels"]}, label_name="label", verbosity=0)
    lab.find_issues(features=data["vectors"], issue_types={name: {} for name in issue_types})
    timings["datalab"] = time.perf_counter() - started
    issues = lab.get_issues()
    result: dict[str, Any] = {"timings": timings,
                              "label": _planted_recall(set(np.flatnonzero(issues["is_label_issue"]).tolist()), data)}
    if "near_duplicate" in issue_types:
        result["copy_recall"] = _copy_recall(set(np.flatnonzero(issues["is_near_duplicate_issue"]).tolist()), data)
    if "outlier" in issue_types:
        result["outliers"] = int(issues["is_outlier_issue"].sum())
    return result


DATALAB_ALL = ["label", "near_duplicate", "outlier", "class_imbalance"]


def child(kind: str, count: int, seed: int, data: str, out: Path) -> None:
    if kind == "auditor":
        result = run_auditor(count, seed, data)
    else:
        result = run_datalab(count, seed, data, ["label"] if kind == "datalab-label" else DATALAB_ALL)
    out.write_text(json.dumps(result))


# Datalab's address space is capped, so a run that would need more memory than the machine has fails with
# MemoryError in its own process instead of waking the kernel's OOM killer among other people's processes.
DATALAB_MAX_GIB = 14


def _limit_memory() -> None:
    import resource

    limit = DATALAB_MAX_GIB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def measure(kind: str, count: int, seed: int, data: str, timeout: float) -> dict[str, Any]:
    """One run in its own process: its figures, wall seconds, peak RSS (GiB) and the 1-min load average
    seen while it ran (sampled every 5 s)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__)), "--child", kind, "--n", str(count), "--seed", str(seed),
                   "--data", data, "--out", str(out)]
        started = time.perf_counter()
        loads = [os.getloadavg()[0]]
        errors = Path(tmp) / "stderr.txt"
        with errors.open("w") as stderr:
            process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL,
                                       preexec_fn=None if kind == "auditor" else _limit_memory)
        status, usage, timed_out = 0, None, False
        next_sample = started + 5
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now - started > timeout:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                timed_out = True
                break
            if now >= next_sample:
                loads.append(os.getloadavg()[0])
                next_sample = now + 5
            time.sleep(0.2)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        error = errors.read_text(errors="replace")
        wall = time.perf_counter() - started
        record: dict[str, Any] = {"kind": kind, "n": count, "data": data, "wall_s": wall,
                                  "peak_rss_gib": usage.ru_maxrss / 2**20,
                                  # CPU seconds (all threads): the work done, whatever share of the cores it got.
                                  "cpu_s": usage.ru_utime + usage.ru_stime, "load_avg": float(np.mean(loads)),
                                  "load_max": float(max(loads))}
        if timed_out:
            record["failed"] = f"stopped after {timeout:.0f} s"
        elif process.returncode != 0 or not out.exists():
            record["failed"] = f"exit {process.returncode}: {error.strip().splitlines()[-1] if error.strip() else ''}"
        else:
            record.update(json.loads(out.read_text()))
        return record


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def compare(sizes: list[int], datalab_sizes: set[int], label_sizes: set[int], timeout: float,
            datalab_timeout: float, json_out: Path | None, data: str = "modes", seed: int = 0,
            ) -> list[dict[str, Any]]:
    """Runs every size (auditor, then Datalab's label analysis alone where asked, then its four issue types),
    prints the tables."""
    records: list[dict[str, Any]] = []
    for count in sizes:
        runs = [("auditor", timeout)]
        if count in label_sizes:
            runs.append(("datalab-label", datalab_timeout))
        if count in datalab_sizes:
            runs.append(("datalab-all", datalab_timeout))
        for kind, limit in runs:
            print(f"N = {count:,} {kind}: load average {os.getloadavg()[0]:.2f}", flush=True)
            record = measure(kind, count, seed, data, limit)
            print("  " + json.dumps({k: v for k, v in record.items() if k != "summaries"}), flush=True)
            records.append(record)
            if json_out is not None:
                json_out.write_text(json.dumps(records, indent=1))
    print_tables(records)
    return records


def _stage_totals(timings: dict[str, float]) -> tuple[float, float]:
    """(label-error stage, whole check stage) seconds from an auditor run's timings."""
    label = timings["classifier"] + timings["k-NN vote"] + timings.get("check label_errors", 0.0)
    checks = sum(v for k, v in timings.items() if k not in ("generate", "imports"))
    return label, checks


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "—"


def print_tables(records: list[dict[str, Any]]) -> None:
    """Markdown tables: auditor's stages per N, then each N side by side with Datalab."""
    sizes = list(dict.fromkeys(r["n"] for r in records))
    ours = {r["n"]: r for r in records if r["kind"] == "auditor"}
    print("\nauditor, seconds per stage (synthetic 512-d vectors, every check, default config):\n")
    stages = list(dict.fromkeys(k for r in ours.values() for k in r.get("timings", {})))
    print("| stage | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))

    def row(label: str, cell: Any) -> None:
        print(f"| {label} | " + " | ".join(cell(ours[n]) if n in ours else "" for n in sizes) + " |")

    for stage in stages:
        row(stage, lambda r, stage=stage: _seconds(r.get("timings", {}).get(stage)))
    row("**checks stage**", lambda r: f"**{_seconds(_stage_totals(r['timings'])[1])}**" if "timings" in r
        else r.get("failed", ""))
    row("peak RSS (GiB)", lambda r: f"{r['peak_rss_gib']:.2f}")
    row("load average (1 min, mean)", lambda r: f"{r['load_avg']:.1f}")

    print("\nside by side (seconds excluding generation; ratio = auditor / Datalab, same vectors, same run):\n")
    print("| N | classes | auditor label-error stage | Datalab label | ratio | auditor all checks | Datalab label + "
          "near_duplicate + outlier + class_imbalance | ratio | CPU s, whole process: auditor / Datalab 4 types "
          "| peak RSS auditor / Datalab (GiB) | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for count in sizes:
        mine = ours.get(count, {})
        theirs = {r["kind"]: r for r in records if r["n"] == count and r["kind"] != "auditor"}
        label_ours = checks_ours = None
        if "timings" in mine:
            label_ours, checks_ours = _stage_totals(mine["timings"])
        label_theirs, all_theirs = (theirs[kind]["timings"]["datalab"] if "timings" in theirs.get(kind, {})
                                    else None for kind in ("datalab-label", "datalab-all"))
        failures = [f"{r['kind']}: {r['failed']}" for r in [mine, *theirs.values()] if r.get("failed")]
        rss_theirs = theirs.get("datalab-all", theirs.get("datalab-label", {})).get("peak_rss_gib")
        loads = [r["load_avg"] for r in [mine, *theirs.values()] if "load_avg" in r]
        rss = f"{mine['peak_rss_gib']:.2f}" if "peak_rss_gib" in mine else "—"
        print("| " + " | ".join([
            f"{count:,}", str(classes_for(count)), _seconds(label_ours), _seconds(label_theirs),
            _ratio(label_ours, label_theirs), _seconds(checks_ours), _seconds(all_theirs),
            _ratio(checks_ours, all_theirs),
            f"{_seconds(mine.get('cpu_s'))} / {_seconds(theirs.get('datalab-all', {}).get('cpu_s'))}",
            f"{rss} / {rss_theirs:.2f}" if rss_theirs is not None else rss,
            f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—",
        ]) + " |" + (f" ({'; '.join(failures)})" if failures else ""))

    print("\nplanted problems found (label errors: recall / precision of flagged images; copies: recall):")
    for record in records:
        if "label" in record:
            label = record["label"]
            copies = f", copies recall {record['copy_recall']:.2f}" if "copy_recall" in record else ""
            outliers = record.get("outliers", record.get("findings", {}).get("outlier"))
            flagged = f", outliers flagged {outliers}" if outliers is not None else ""
            print(f"  {record['n']:>9,} {record['kind']:<14} label errors {label['flagged']:>6} flagged, recall "
                  f"{label['recall']:.2f}, precision {label['precision']:.2f}{copies}{flagged}")
    print("\nneighbour searches (auditor; run.json 'searches'):")
    for record in records:
        for search in record.get("searches", []):
            shown = {k: search[k] for k in ("search", "method", "vectors", "cells_joined", "recall", "fallback",
                                            "seconds") if k in search}
            print(f"  {record['n']:>9,} {json.dumps(shown)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=["auditor", "datalab-label", "datalab-all"])
    parser.add_argument("--n", type=int)
    parser.add_argument("--tables", type=Path, nargs="*", help="print the tables of these --json files instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=["modes", "isotropic"], default="modes")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: stdout)")
    parser.add_argument("--smoke", action="store_true",
                        help="one tiny comparison (400 vectors, child processes and tables as at scale)")
    args = parser.parse_args()
    if args.smoke:
        with_datalab = datalab_available()
        if not with_datalab:
            print(DATALAB_MISSING)
        records = compare([400], set(), {400} if with_datalab else set(), 300, 300, None, args.data, args.seed)
        failed = [f"{r['kind']}: {r['failed']}" for r in records if "failed" in r]
        if failed:
            raise SystemExit(f"smoke run failed: {'; '.join(failed)}")
        return
    if args.tables:
        print_tables([record for path in args.tables for record in json.loads(path.read_text())])
        return
    if args.child is None or args.n is None:
        parser.error("--child and --n, or --tables")
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            child(args.child, args.n, args.seed, args.data, out)
            print(out.read_text())
    else:
        child(args.child, args.n, args.seed, args.data, args.out)


if __name__ == "__main__":
    main()
