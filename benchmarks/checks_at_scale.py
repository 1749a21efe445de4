"""The checks on N synthetic embeddings, without images: time per check, neighbour-search recall, peak memory.

Builds the check context a scan would build (one labelled, readable image per vector, random 64-bit
pHash/dHash and levelled hashes per image) around synthetic 512-d float32 vectors and runs the model-based checks and
duplicates on it, so the cost of the evidence (out-of-sample probabilities, k-NN vote, class closeness,
neighbour searches) can be measured at 1M vectors without writing 1M image files. Prints seconds per
check, every neighbour search from run.json's "searches" (method, cells probed, measured recall), and the
process's peak RSS (getrusage). Two kinds of vectors:

- ``modes`` (default): each class a mixture of ``--modes`` tight modes, as real image embeddings are
  (photos of one class cluster by viewpoint, background, breed...); 1% of labels flipped.
- ``isotropic``: each class one Gaussian of isotropic 512-d noise around its centre (benchmarks/scale.py's
  generator): near neighbours are barely nearer than the rest of the class, the hardest case for an
  approximate index (recall needs many cells probed, or the search falls back to exact).

    nice python3 benchmarks/checks_at_scale.py --images 100000 [--kind isotropic] [--checks label_errors]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from auditor.checks import REGISTRY, check_params
from auditor.checks.base import CheckContext
from auditor.config import AuditConfig
from auditor.encoder_facts import EncoderInfo

DIM = 512
CHECKS = "label_errors,class_overlap,ambiguous,outliers,duplicates"
EVIDENCE = "regression,knn_vote,class_closeness"


def vectors(count: int, classes: int, kind: str, modes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (count, DIM) vectors and int labels, generated in chunks (no float64 copy of the matrix)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, DIM), dtype=np.float32)
    mode_centres = centres[:, None, :] + 0.7 * rng.standard_normal((classes, modes, DIM), dtype=np.float32)
    labels = np.arange(count) % classes
    out = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 65_536):
        stop = min(count, start + 65_536)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        if kind == "isotropic":
            out[start:stop] = centres[labels[start:stop]] + 1.2 * noise
        else:
            mode = rng.integers(modes, size=stop - start)
            out[start:stop] = mode_centres[labels[start:stop], mode] + 0.25 * noise
    flipped = rng.random(count) < 0.01
    labels = np.where(flipped, (labels + rng.integers(1, classes, size=count)) % classes, labels)
    return out, labels


def hash_words(count: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """(count, 4) 64-bit words: pHash, dHash, levelled pHash, levelled dHash. ``random``: every bit a coin
    (photos' hashes come close: their nearest unrelated hash is far, so the radius the tests allow is wide);
    ``families``: 1,000 families of look-alikes, each image its family's code with 5% of bits flipped (scans,
    digits, product shots: many near hashes, a narrow radius)."""
    if kind == "random":
        return rng.integers(0, 2**63, size=(count, 4), dtype=np.int64)
    families = rng.integers(0, 2**63, size=(1000, 4), dtype=np.int64)
    words = families[rng.integers(1000, size=count)]
    for bit in range(63):
        flip = rng.random((count, 4)) < 0.05
        words ^= flip.astype(np.int64) << bit
    return words


def context(matrix: np.ndarray, labels: np.ndarray, classes: int, seed: int, with_hashes: bool,
            hash_kind: str = "random", semantic: bool = True) -> CheckContext:
    rng = np.random.default_rng(seed + 1)
    count = len(matrix)
    names = [f"class_{c}" for c in range(classes)]
    hashes = hash_words(count, hash_kind, rng)
    images = pd.DataFrame({
        "path": [f"class_{label}/{i:07d}.png" for i, label in enumerate(labels)],
        "label": np.array(names, dtype=object)[labels],
        "split": [None] * count,
        "sha256": [f"{i:064x}" for i in range(count)],
        "readable": np.ones(count, dtype=bool),
        "pixel_sha256": [f"p{i:063x}" for i in range(count)],
        "phash": [f"{h:016x}" for h in hashes[:, 0]] if with_hashes else [None] * count,
        "dhash": [f"{h:016x}" for h in hashes[:, 1]] if with_hashes else [None] * count,
        "levelled_hash": [f"{p:016x}{d:016x}" for p, d in hashes[:, 2:]] if with_hashes else [None] * count,
        "embedding_row": np.arange(count),
    })
    config = AuditConfig()
    config.checks["duplicates"] = {"semantic": semantic}
    return CheckContext(images=images, embeddings=matrix, classes=names, splits=[], empty_classes={},
                        encoder=EncoderInfo("precomputed", "precomputed", "synthetic", DIM, True), config=config)


def _run(ctx: CheckContext, name: str) -> int:
    return len(REGISTRY[name](check_params(ctx.config, name)).run(ctx).findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--kind", choices=("modes", "isotropic"), default="modes")
    parser.add_argument("--modes", type=int, default=100, help="modes per class (kind modes)")
    parser.add_argument("--checks", default=CHECKS)
    parser.add_argument("--evidence", default=EVIDENCE,
                        help="shared evidence timed on its own first (the k-NN vote needs the regression)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-hashes", action="store_true",
                        help="no perceptual hashes (duplicates then runs its embedding search only)")
    parser.add_argument("--hashes", choices=("random", "families"), default="random")
    parser.add_argument("--no-semantic", action="store_true", help="duplicates: hash methods only")
    args = parser.parse_args()
    started = time.perf_counter()
    matrix, labels = vectors(args.images, args.classes, args.kind, args.modes, args.seed)
    ctx = context(matrix, labels, args.classes, args.seed, not args.no_hashes, args.hashes, not args.no_semantic)
    print(f"generated {args.images:,} x {DIM} {args.kind} vectors in {time.perf_counter() - started:.1f} s; "
          "seconds wall / CPU (CPU: all threads; on a shared machine wall time includes waiting)", flush=True)
    wall = cpu = 0.0
    evidence: dict[str, Callable[[], object]] = {
        "regression": lambda: ctx.regression_probs,
        "knn_vote": lambda: ctx.pred_probs,
        "class_closeness": lambda: ctx.class_neighbourhoods,
    }
    # The shared evidence first, so each check's figure is its own work.
    steps: list[tuple[str, Callable[[], object]]] = [
        (f"evidence: {name}", evidence[name]) for name in args.evidence.split(",") if name
    ]
    steps += [(name, partial(_run, ctx, name)) for name in args.checks.split(",") if name]
    for name, step in steps:
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = step()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        wall, cpu = wall + seconds, cpu + cpu_seconds
        note = f"  {outcome} findings" if isinstance(outcome, int) else ""
        print(f"{name:<28} {seconds:8.1f} {cpu_seconds:8.1f}{note}", flush=True)
    print(f"{'total':<28} {wall:8.1f} {cpu:8.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    for record in ctx.searches.records:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
