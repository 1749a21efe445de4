"""Duplicate detection benchmark: quality on a folder with planted copies, and neighbour search at scale.

    python benchmarks/duplicates.py                       # both parts, scale at 100k and 1M
    python benchmarks/duplicates.py --part quality --images 400
    python benchmarks/duplicates.py --part scale --sizes 20000,100000
    python benchmarks/duplicates.py --part collections --collections /work/bench-data/digits,/work/bench-data/photos
    python benchmarks/duplicates.py --smoke   # every part at tiny sizes, on generated data only, in seconds

(a) quality: photo-like procedural images (gradients, low-frequency texture, random shapes, noise,
blur) in train/val/test with planted copies -- byte-exact, JPEG q70 re-encodes, 5-10% resizes, +-15%
brightness, 2-px shifts (a 2-px crop) -- within and across splits. Runs ``audit scan`` (built-in
encoder) and cleanvision's exact/near duplicate checks on the same folder, and prints precision and
recall over planted pairs. A second variant adds one truncated JPEG: we report it, cleanvision stops.

(c) collections: folders built by ``benchmarks/collections.py`` (real photos, scikit-learn digits, generated
shapes; ground truth in each folder's planted.json) scanned with ``--checks duplicates`` and the built-in
encoder, and with ``--encoder precomputed`` when ``<folder>.cnn.parquet`` (real-CNN vectors) lies beside the
folder. Prints pair precision/recall over planted copies, recall per transform, leaks found, and groups
mixing labels that no planted pair explains.

(b) scale: synthetic clustered 512-d embeddings with 1% planted near-duplicates (cosine ~0.97-0.99),
grouped by the duplicates check itself (neighbour search, data-relative tests, complete linkage) at
each size, each size in a fresh process so its peak memory (max RSS) is its own. Reports time, memory,
precision and recall of planted pairs, and (where N allows) the inverted-file result's recall of the
pairs the exact search finds.

``--smoke``: (a) with 30 pictures and 10 copies, (b) at 2,000 vectors, (c) on a tiny generated shapes collection
with vectors from a small untrained ONNX net (``collections.py``); cleanvision only where it is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SPLITS = ("train", "val", "test")
CLASSES = ("alpha", "beta", "gamma", "delta")
TRANSFORMS = ("byte_copy", "jpeg_q70", "resize", "brightness", "shift_2px")
DIM = 512


# ----------------------------------------------------------------------------- (a) quality


def scene(rng: random.Random) -> Image.Image:
    """A photo-like picture: gradient sky, coarse texture, 3-8 shapes, sensor noise, slight blur."""
    width, height = rng.randint(140, 256), rng.randint(120, 224)
    start = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    end = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = ((ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6))[..., None]
    base = start * (1 - ramp) + end * ramp
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    coarse = nprng.normal(0, 1, size=(max(2, height // 24), max(2, width // 24), 3))
    texture = Image.fromarray(np.uint8(np.clip(128 + 40 * coarse, 0, 255)))
    texture = texture.resize((width, height), Image.BICUBIC)
    base = base * 0.7 + np.asarray(texture, dtype=np.float32) * 0.3
    image = Image.fromarray(np.uint8(np.clip(base, 0, 255)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 8)):
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.08, 0.35) * min(width, height)
        kind = rng.choice(["ellipse", "polygon", "rectangle", "line"])
        if kind == "ellipse":
            draw.ellipse((cx - r, cy - r * rng.uniform(0.5, 1.5), cx + r, cy + r), fill=colour)
        elif kind == "rectangle":
            draw.rectangle((cx - r, cy - r / 2, cx + r, cy + r / 2), fill=colour)
        elif kind == "line":
            end_x = cx + r * rng.uniform(-1, 1)
            draw.line((cx - r, cy - r, end_x, cy + r), fill=colour, width=rng.randint(2, 8))
        else:
            sides = rng.randint(3, 7)
            corners = [
                (cx + r * rng.uniform(0.5, 1) * math.cos(2 * math.pi * k / sides + rng.uniform(0, 0.5)),
                 cy + r * rng.uniform(0.5, 1) * math.sin(2 * math.pi * k / sides))
                for k in range(sides)
            ]
            draw.polygon(corners, fill=colour)
    noisy = np.asarray(image, dtype=np.float32) + nprng.normal(0, rng.uniform(2, 10), size=(height, width, 3))
    blur = ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))
    return Image.fromarray(np.uint8(np.clip(noisy, 0, 255))).filter(blur)


def transformed(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    if kind == "resize":
        factor = rng.choice([rng.uniform(0.90, 0.95), rng.uniform(1.05, 1.10)])
        return image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)
    if kind == "brightness":
        return ImageEnhance.Brightness(image).enhance(rng.choice([0.85, 1.15]))
    if kind == "shift_2px":
        dx, dy = rng.choice([(2, 0), (0, 2), (2, 2)])
        return image.crop((dx, dy, image.width, image.height))
    return image  # jpeg_q70 and byte_copy: the change is in how it is saved


def build_folder(root: Path, distinct: int, planted: int, seed: int) -> list[dict[str, str]]:
    """Write ``distinct`` pictures and ``planted`` copies of some of them; returns the planted pairs."""
    rng = random.Random(seed)
    sources: list[str] = []
    for i in range(distinct):
        split = rng.choices(SPLITS, weights=(6, 2, 2))[0]
        rel = f"{split}/{rng.choice(CLASSES)}/img_{i:05d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        scene(rng).save(root / rel)
        sources.append(rel)
    pairs = []
    for n, source in enumerate(rng.sample(sources, planted)):
        kind = TRANSFORMS[n % len(TRANSFORMS)]
        source_split, label = source.split("/")[:2]
        cross = n % 2 == 1
        split = rng.choice([s for s in SPLITS if s != source_split]) if cross else source_split
        ext = ".jpg" if kind == "jpeg_q70" else ".png"
        rel = f"{split}/{label}/copy_{n:04d}_{kind}{ext}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if kind == "byte_copy":
            shutil.copyfile(root / source, root / rel)
        else:
            with Image.open(root / source) as image:
                copy = transformed(image.convert("RGB"), kind, rng)
            copy.save(root / rel, **({"quality": 70} if ext == ".jpg" else {}))
        pairs.append({"source": source, "copy": rel, "kind": kind, "cross_split": str(cross)})
    return pairs


def planted_truth(pairs: list[dict[str, str]]) -> set[frozenset[str]]:
    """All pairs inside each planted group (a source copied twice gives three pairs)."""
    groups: dict[str, set[str]] = {}
    for pair in pairs:
        groups.setdefault(pair["source"], {pair["source"]}).add(pair["copy"])
    return {frozenset(p) for members in groups.values() for p in itertools.combinations(sorted(members), 2)}


def group_pairs(groups: list[set[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for members in groups for p in itertools.combinations(sorted(members), 2)}


def precision_recall(found: set[frozenset[str]], truth: set[frozenset[str]]) -> tuple[float, float]:
    hits = len(found & truth)
    return hits / max(len(found), 1), hits / max(len(truth), 1)


def run_ours(root: Path, work: Path) -> tuple[dict[str, list[set[str]]], float, dict[str, object]]:
    """Run ``audit scan`` (built-in encoder) and return its duplicate groups per finding kind."""
    import pandas as pd

    out = work / f"out_{root.name}"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "auditor", "scan", str(root), "--out", str(out), "--cache-dir",
                    str(work / "cache"), "--encoder", "builtin"], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    findings = pd.read_parquet(out / "findings.parquet")
    groups: dict[str, list[set[str]]] = {}
    for kind in ("split_leakage", "exact_duplicate", "near_duplicate"):
        rows = findings[findings["check"] == kind]
        groups[kind] = [set(members["path"]) for _, members in rows.groupby("group_id")]
    run = json.loads((out / "run.json").read_text())
    unreadable = int((findings["check"] == "unreadable").sum())
    return groups, elapsed, {"summary": run["checks"]["duplicates"], "unreadable_findings": unreadable}


def run_cleanvision(root: Path) -> tuple[dict[str, list[set[str]]] | None, float, str | None]:
    """cleanvision's exact and near duplicate sets, or the error that stopped it."""
    try:
        from cleanvision import Imagelab
    except ImportError:
        return None, 0.0, "cleanvision is not installed (pip install cleanvision)"
    import contextlib

    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            lab = Imagelab(data_path=str(root))
            lab.find_issues({"exact_duplicates": {}, "near_duplicates": {}})
    except Exception as exc:  # noqa: BLE001 - the point is to show how it fails
        return None, time.perf_counter() - started, f"{type(exc).__name__}: {str(exc)[:120]}"
    base = str(root.resolve()) + "/"
    sets = {
        kind: [{str(p).removeprefix(base) for p in members} for members in lab.info[kind]["sets"]]
        for kind in ("exact_duplicates", "near_duplicates")
    }
    return sets, time.perf_counter() - started, None


def quality(distinct: int, planted: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dup_bench_") as tmp:
        work = Path(tmp)
        root = work / "clean"
        pairs = build_folder(root, distinct, planted, seed)
        truth = planted_truth(pairs)
        cross_truth = {frozenset((p["source"], p["copy"])) for p in pairs if p["cross_split"] == "True"}
        files = sum(1 for p in root.rglob("*") if p.is_file())
        print(f"(a) quality: {files} files ({distinct} distinct pictures, {planted} planted copies, "
              f"{len(truth)} planted pairs, {len(cross_truth)} across splits)")

        ours, ours_s, info = run_ours(root, work)
        all_groups = [g for kind in ours.values() for g in kind]
        found = group_pairs(all_groups)
        leak_found = group_pairs(ours["split_leakage"])
        theirs, theirs_s, error = run_cleanvision(root)

        print(f"\n{'method':<28}{'precision':>10}{'recall':>9}{'pairs':>8}{'time s':>9}")
        precision, recall = precision_recall(found, truth)
        print(f"{'auditor (all groups)':<28}{precision:>10.3f}{recall:>9.3f}{len(found):>8}{ours_s:>9.1f}")
        if theirs is not None:
            cv_found = group_pairs(theirs["exact_duplicates"] + theirs["near_duplicates"])
            cv_precision, cv_recall = precision_recall(cv_found, truth)
            print(f"{'cleanvision (exact+near)':<28}{cv_precision:>10.3f}{cv_recall:>9.3f}"
                  f"{len(cv_found):>8}{theirs_s:>9.1f}")
        else:
            print(f"{'cleanvision':<28}  did not run: {error}")

        print(f"\nrecall per transform{'':<8}{'auditor':>9}{'cleanvision':>13}")
        cv_pairs = group_pairs(theirs["exact_duplicates"] + theirs["near_duplicates"]) if theirs else set()
        for kind in TRANSFORMS:
            kind_truth = {frozenset((p["source"], p["copy"])) for p in pairs if p["kind"] == kind}
            ours_recall = precision_recall(found, kind_truth)[1]
            theirs_recall = precision_recall(cv_pairs, kind_truth)[1] if theirs is not None else float("nan")
            print(f"  {kind:<26}{ours_recall:>9.3f}{theirs_recall:>13.3f}")
        if theirs is not None:
            exact_truth = {frozenset((p["source"], p["copy"])) for p in pairs if p["kind"] == "byte_copy"}
            cv_exact = precision_recall(group_pairs(theirs["exact_duplicates"]), exact_truth)
            print(f"  cleanvision exact_duplicates on byte copies: precision {cv_exact[0]:.3f} "
                  f"recall {cv_exact[1]:.3f}")
        print(f"\nleakage: {len(leak_found & cross_truth)}/{len(cross_truth)} planted cross-split pairs "
              f"reported as split_leakage; {len(leak_found - truth)} split_leakage pairs not planted")
        summary = info["summary"]
        print(f"auditor summary: groups {summary['groups']}, pairs per method {summary['pairs']}")

        broken = work / "with_unreadable"
        shutil.copytree(root, broken)
        jpeg = io.BytesIO()
        scene(random.Random(seed + 1)).save(jpeg, format="JPEG")
        data = jpeg.getvalue()
        (broken / "train" / CLASSES[0] / "truncated.jpg").write_bytes(data[: len(data) // 3])
        _, _, broken_info = run_ours(broken, work)
        _, _, broken_error = run_cleanvision(broken)
        print("\nvariant with one truncated JPEG:")
        print(f"  auditor: completed, {broken_info['unreadable_findings']} unreadable finding(s), "
              f"groups {broken_info['summary']['groups']}")
        print(f"  cleanvision: {'completed' if broken_error is None else 'stopped with ' + broken_error}")


# ----------------------------------------------------------------------------- (b) scale


def synthetic_embeddings(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors, the last 1% near-copies of earlier rows; returns (vectors, planted pairs)."""
    rng = np.random.default_rng(seed)
    planted = count // 100
    base = count - planted
    centres = rng.standard_normal((max(1, base // 1000), DIM), dtype=np.float32)
    vectors = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, base, 100_000):
        stop = min(base, start + 100_000)
        block = centres[rng.integers(0, len(centres), stop - start)]
        block += rng.standard_normal(block.shape, dtype=np.float32) * 1.2
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    sources = rng.choice(base, size=planted, replace=False)
    noise = rng.standard_normal((planted, DIM), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    copies = vectors[sources] + noise * rng.uniform(0.15, 0.25, size=(planted, 1)).astype(np.float32)
    vectors[base:] = copies / np.linalg.norm(copies, axis=1, keepdims=True)
    return vectors, np.stack([sources, np.arange(base, count)], axis=1)


def _check_on_vectors(vectors: np.ndarray, exact_max: int) -> tuple[set[tuple[int, int]], str]:
    """Run the duplicates check itself on bare vectors (no hashes); returns its pairs and search."""
    import pandas as pd

    from auditor.checks.base import CheckContext
    from auditor.checks.duplicates import DuplicatesCheck, DuplicatesParams
    from auditor.core.config import AuditConfig, SearchParams
    from auditor.core.encoder_facts import EncoderInfo

    count = len(vectors)
    ids = [f"{i}" for i in range(count)]
    images = pd.DataFrame({"path": ids, "label": None, "split": None, "sha256": ids, "readable": True,
                           "pixel_sha256": ids, "phash": None, "dhash": None, "levelled_hash": None,
                           "embedding_row": np.arange(count)})
    ctx = CheckContext(images=images, embeddings=vectors, classes=[], splits=[], empty_classes={},
                       encoder=EncoderInfo("precomputed", "precomputed", "bench", vectors.shape[1], True),
                       config=AuditConfig(search=SearchParams(exact_max_vectors=exact_max)))
    # The embedding search is the one [search] governs (shared with the k-NN vote); the hash searches,
    # exact_max_images: there are no hashes here.
    result = DuplicatesCheck(DuplicatesParams(exact_max_images=exact_max)).run(ctx)
    members: dict[int, list[int]] = {}
    for finding in result.findings:
        assert finding.group_id is not None and finding.path is not None
        members.setdefault(finding.group_id, []).append(int(finding.path))
    pairs = {(min(a, b), max(a, b)) for group in members.values() for a, b in itertools.combinations(group, 2)}
    return pairs, str(result.summary.semantic["search"])


def scale_one(count: int, exact_all: bool, seed: int) -> dict[str, object]:
    """The check end to end (neighbour search, data-relative tests, complete linkage) at one size."""
    from auditor.core.config import SearchParams

    vectors, planted = synthetic_embeddings(count, seed)
    started = time.perf_counter()
    found, search = _check_on_vectors(vectors, SearchParams().exact_max_vectors)
    elapsed = time.perf_counter() - started
    # Peak memory of generating the data and grouping it, before the exact comparison adds its own.
    grouping_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    truth = {(min(a, b), max(a, b)) for a, b in planted.tolist()}
    result: dict[str, object] = {
        "n": count, "search": search, "seconds": elapsed, "pairs": len(found),
        "planted_recall": len(found & truth) / len(truth),
        "precision": len(found & truth) / max(len(found), 1),
    }
    if exact_all and search != "exact":
        started = time.perf_counter()
        exact, _ = _check_on_vectors(vectors, count)
        result["exact_seconds"] = time.perf_counter() - started
        result["recall_vs_exact"] = len(found & exact) / max(len(exact), 1)
    result["peak_rss_mb"] = grouping_rss
    return result


def scale(sizes: list[int], seed: int) -> None:
    import faiss

    print(f"\n(b) scale: {DIM}-d clustered embeddings, 1% planted near-copies, the duplicates check end to end, "
          f"faiss threads {faiss.omp_get_max_threads()}")
    print(f"{'N':>9}{'search':>8}{'check s':>9}{'pairs':>9}{'precision':>11}{'planted recall':>16}"
          f"{'vs exact':>10}{'peak RSS MB':>13}")
    for count in sizes:
        command = [sys.executable, __file__, "--scale-one", str(count), "--seed", str(seed)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        versus = f"{r['recall_vs_exact']:.3f}" if "recall_vs_exact" in r else "-"
        extra = f" (exact search {r['exact_seconds']:.1f} s)" if "exact_seconds" in r else ""
        print(f"{r['n']:>9}{r['search']:>8}{r['seconds']:>9.1f}{r['pairs']:>9}{r['precision']:>11.3f}"
              f"{r['planted_recall']:>16.3f}{versus:>10}{r['peak_rss_mb']:>13.0f}{extra}")


# ----------------------------------------------------------------------------- (c) collections


def collection_truth(planted: dict[str, Any]) -> set[frozenset[str]]:
    """Every pair within a planted copy family (an original and all its copies, plus natural copies)."""
    pairs = [(c["original"], c["copy"]) for c in planted["copies"]]
    pairs += [(group[0], other) for group in planted.get("natural_copies", []) for other in group[1:]]
    families: dict[str, set[str]] = {}
    for a, b in pairs:
        merged = families.get(a, {a}) | families.get(b, {b})
        for member in merged:
            families[member] = merged
    return {frozenset(p) for family in map(frozenset, families.values())
            for p in itertools.combinations(sorted(family), 2)}


def collection_one(root: Path, work: Path, encoder_args: list[str], label: str) -> None:
    import pandas as pd

    planted = json.loads((root / "planted.json").read_text())
    truth = collection_truth(planted)
    out = work / f"{root.name}_{label}"
    subprocess.run([sys.executable, "-m", "auditor", "scan", str(root), "--out", str(out), "--checks", "duplicates",
                    "--cache-dir", str(work / "cache"), "--quiet", *encoder_args], check=True, capture_output=True)
    findings = pd.read_parquet(out / "findings.parquet")
    findings = findings[findings["check"].isin(["split_leakage", "exact_duplicate", "near_duplicate"])]
    found: set[frozenset[str]] = set()
    leaks: set[frozenset[str]] = set()
    mixed = largest = 0
    for (kind, _), group in findings.groupby(["check", "group_id"]):
        pairs = {frozenset(p) for p in itertools.combinations(sorted(group["path"]), 2)}
        found |= pairs
        leaks |= pairs if kind == "split_leakage" else set()
        mixed += group["label"].nunique() > 1 and not pairs & truth
        largest = max(largest, len(group))
    precision, recall = precision_recall(found, truth)
    leak_truth = {frozenset((c["original"], c["copy"])) for c in planted["copies"] if c["cross_split"]}
    per_transform: dict[str, list[int]] = {}
    for copy in planted["copies"]:
        hits = per_transform.setdefault(copy["transform"], [0, 0])
        hits[0] += frozenset((copy["original"], copy["copy"])) in found
        hits[1] += 1
    transforms = ", ".join(f"{name} {hit}/{total}" for name, (hit, total) in per_transform.items())
    print(f"{root.name:<10}{label:<12}{precision:>10.3f}{recall:>8.3f}{len(found):>7}{len(truth):>7}"
          f"{f'{len(leaks & leak_truth)}/{len(leak_truth)}':>7}{len(leaks - truth):>11}{mixed:>7}{largest:>8}  "
          f"{transforms}")


def collections(folders: list[Path]) -> None:
    print("\n(c) collections: pair precision/recall of duplicate + leakage groups over planted copies")
    print(f"{'folder':<10}{'encoder':<12}{'precision':>10}{'recall':>8}{'pairs':>7}{'truth':>7}{'leaks':>7}"
          f"{'false leak':>11}{'mixed':>7}{'largest':>8}  recall per transform")
    with tempfile.TemporaryDirectory(prefix="dup_collections_") as tmp:
        for root in folders:
            collection_one(root, Path(tmp), ["--encoder", "builtin"], "builtin")
            vectors = root.with_name(f"{root.name}.cnn.parquet")
            if vectors.exists():
                collection_one(root, Path(tmp), ["--encoder", "precomputed", "--embeddings", str(vectors)], "cnn")


def smoke_collection(work: Path) -> Path:
    """A tiny shapes collection with a ``.cnn.parquet`` beside it, built by ``collections.py``."""
    # By file: as a script this folder is on sys.path, but the name ``collections`` is the standard library's.
    spec = importlib.util.spec_from_file_location("bench_collections", Path(__file__).with_name("collections.py"))
    assert spec is not None and spec.loader is not None
    builders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builders)
    root = work / "shapes"
    builders.build_shapes(root, per_class=8)
    builders.embed_collection(root, builders.tiny_onnx_model(work / "cnn.onnx"), work / "shapes.cnn.parquet")
    return root


def smoke(seed: int) -> None:
    """Every part at tiny sizes, on generated data only."""
    quality(30, 10, seed)
    scale([2000], seed)
    with tempfile.TemporaryDirectory(prefix="dup_smoke_") as tmp:
        collections([smoke_collection(Path(tmp))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["quality", "scale", "collections", "all"], default="all")
    parser.add_argument("--collections", default="", help="comma-separated collection folders for part (c)")
    parser.add_argument("--images", type=int, default=400, help="distinct pictures in the quality folder")
    parser.add_argument("--copies", type=int, default=150, help="planted copies in the quality folder")
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated embedding counts for the scale part")
    parser.add_argument("--exact-up-to", type=int, default=200_000,
                        help="also run exact all-pairs search (for recall) up to this size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="every part at tiny sizes on generated data")
    args = parser.parse_args()
    if args.smoke:
        smoke(args.seed)
        return
    if args.scale_one:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        print(json.dumps(scale_one(args.scale_one, args.scale_one <= args.exact_up_to, args.seed)))
        return
    if args.part in ("quality", "all"):
        quality(args.images, args.copies, args.seed)
    if args.part in ("scale", "all"):
        scale([int(s) for s in args.sizes.split(",")], args.seed)
    if args.part in ("collections", "all") and args.collections:
        collections([Path(folder) for folder in args.collections.split(",")])


if __name__ == "__main__":
    main()
