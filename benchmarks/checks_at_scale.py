"""Every check on N synthetic embeddings, without images: time per check, search recall, peak memory.

Builds the check context a scan would build (one labelled, readable image per vector, with pHash/dHash and
levelled hashes and image properties per image) around synthetic 512-d float32 vectors and runs the shared
evidence and every registered check on it, so the cost of the evidence (out-of-sample probabilities, k-NN vote,
class closeness, neighbour searches) can be measured at 1M vectors without writing 1M image files. Prints seconds
(wall and CPU) per step, every search record from run.json's "searches" (method, cells probed, measured recall;
for hashes: radius, candidates, and the recall of the candidate pairs), and the process's peak RSS (getrusage).

Vectors, two kinds:

- ``modes`` (default): each class a mixture of ``--modes`` tight modes, as real image embeddings are
  (photos of one class cluster by viewpoint, background, breed...); 1% of labels flipped.
- ``isotropic``: each class one Gaussian of isotropic 512-d noise around its centre (benchmarks/scale.py's
  generator): near neighbours are barely nearer than the rest of the class, the hardest case for an
  approximate index (recall needs many cells probed, or the search falls back to exact).

Hashes (128 bits per method), two kinds: ``random`` (default; photos' pHash + dHash look nearly so: the
nearest unrelated hash is far, the radius the global test allows wide) and ``families`` (look-alikes: scans,
digits, product shots; a narrow radius). ``--copies`` of the images are planted copies of others: two thirds
re-encoded (embedding nudged, hashes a few bits off), one third brightened (levelled hashes a few bits off,
plain hashes unrelated, embedding moved more), so the hash searches' recall is measured on pairs that matter.

    nice python3 benchmarks/checks_at_scale.py --images 100000 [--classes 100] [--checks label_errors]
    flock /work/1M.lock nice python3 benchmarks/checks_at_scale.py --images 1000000   # every check at 1M
    python3 benchmarks/checks_at_scale.py --smoke   # 600 vectors, 5 classes of 5 modes: the code path in seconds
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
from auditor.core.config import AuditConfig
from auditor.core.encoder_facts import EncoderInfo

DIM = 512
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


def _flipped(words: np.ndarray, most: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) words with 0 to ``most`` random bits of each 128-bit row flipped."""
    out = words.copy()
    for row in range(len(out)):
        for bit in rng.choice(126, size=int(rng.integers(most + 1)), replace=False):
            out[row, bit // 63] ^= np.int64(1) << np.int64(bit % 63)
    return out


def plant_copies(matrix: np.ndarray, labels: np.ndarray, hashes: np.ndarray, share: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Make the last ``share`` of the images copies of earlier ones, in place: two thirds re-encoded (embedding
    nudged, every hash within 6 bits), one third brightened (levelled hashes within 4 bits, plain hashes
    unrelated, embedding moved 5x more). Returns the (copy, source) pairs."""
    count = len(matrix)
    copies = int(count * share)
    if copies == 0:
        return np.zeros((0, 2), dtype=np.int64)
    copy = np.arange(count - copies, count)
    source = rng.integers(count - copies, size=copies)
    bright = rng.random(copies) < 1 / 3
    scale = float(np.linalg.norm(matrix[source[:100]], axis=1).mean()) / np.sqrt(DIM)
    noise = rng.standard_normal((copies, DIM), dtype=np.float32) * np.float32(0.01 * scale)
    noise[bright] *= 5
    matrix[copy] = matrix[source] + noise
    labels[copy] = labels[source]
    hashes[copy[~bright], :2] = _flipped(hashes[source[~bright], :2], 6, rng)
    hashes[copy, 2:] = _flipped(hashes[source, 2:], 4 if bright.any() else 6, rng)
    return np.stack([copy, source], axis=1)


def properties(count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Image properties (images.parquet columns the image_quality check reads), spread as photos' are."""
    width = rng.choice([640, 800, 1024, 1280], size=count)
    height = (width * rng.choice([0.75, 0.5625, 1.0], size=count)).astype(np.int64)
    brightness = rng.beta(5, 5, size=count)
    return {
        "width": width, "height": height, "aspect_ratio": width / height,
        "brightness": brightness, "luminance_p95": np.clip(brightness + rng.beta(2, 5, size=count), 0, 1),
        "highlight_fraction": rng.beta(1, 30, size=count), "sharpness": rng.lognormal(3, 0.5, size=count),
        "entropy": np.clip(rng.normal(7.2, 0.4, size=count), 0, 8), "border_fraction": rng.beta(1, 50, size=count),
        "colour_fraction": rng.beta(8, 2, size=count),
    }


def context(matrix: np.ndarray, labels: np.ndarray, classes: int, seed: int, with_hashes: bool,
            hash_kind: str = "random", semantic: bool = True, copies: float = 0.0) -> tuple[CheckContext, np.ndarray]:
    """The check context around ``matrix`` (modified in place by the planted copies), and the (copy, source)
    row pairs planted."""
    rng = np.random.default_rng(seed + 1)
    count = len(matrix)
    names = [f"class_{c}" for c in range(classes)]
    hashes = hash_words(count, hash_kind, rng)
    planted = plant_copies(matrix, labels, hashes, copies, rng)
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
        **properties(count, rng),
    })
    config = AuditConfig()
    config.checks["duplicates"] = {"semantic": semantic}
    ctx = CheckContext(images=images, embeddings=matrix, classes=names, splits=[], empty_classes={},
                       encoder=EncoderInfo("precomputed", "precomputed", "synthetic", DIM, True), config=config)
    return ctx, planted


def _run(ctx: CheckContext, name: str, planted: np.ndarray) -> str:
    """Runs one check; its findings count (duplicates: and how many planted copies share a group with their
    source)."""
    result = REGISTRY[name](check_params(ctx.config, name)).run(ctx)
    note = f"{len(result.findings)} findings"
    if name == "duplicates" and len(planted):
        group = result.columns["duplicate_group"].to_numpy()
        same = pd.notna(group[planted[:, 0]]) & (group[planted[:, 0]] == group[planted[:, 1]])
        note += f"; planted copies found {int(same.sum()):,} of {len(planted):,}"
    return note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--kind", choices=("modes", "isotropic"), default="modes")
    parser.add_argument("--modes", type=int, default=100, help="modes per class (kind modes)")
    parser.add_argument("--checks", default=",".join(REGISTRY),
                        help="comma-separated registered checks (default: every one); empty: evidence only")
    parser.add_argument("--evidence", default=EVIDENCE,
                        help="shared evidence timed on its own first (the k-NN vote needs the regression)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-hashes", action="store_true",
                        help="no perceptual hashes (duplicates then runs its embedding search only)")
    parser.add_argument("--hashes", choices=("random", "families"), default="random")
    parser.add_argument("--no-semantic", action="store_true", help="duplicates: hash methods only")
    parser.add_argument("--copies", type=float, default=0.01, help="share of images planted as copies of others")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (600 vectors, 5 classes of 5 modes)")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.classes, args.modes = 600, 5, 5
    started = time.perf_counter()
    matrix, labels = vectors(args.images, args.classes, args.kind, args.modes, args.seed)
    ctx, planted = context(matrix, labels, args.classes, args.seed, not args.no_hashes, args.hashes,
                           not args.no_semantic, args.copies)
    print(f"generated {args.images:,} x {DIM} {args.kind} vectors ({args.classes} classes, {args.hashes} hashes, "
          f"{len(planted):,} planted copies) in {time.perf_counter() - started:.1f} s; "
          "seconds wall / CPU (CPU: all threads; on a shared machine wall time includes waiting)", flush=True)
    wall = cpu = 0.0
    evidence: dict[str, Callable[[], object]] = {
        "regression": lambda: ctx.evidence.regression_probs,
        "knn_vote": lambda: ctx.evidence.pred_probs,
        "class_closeness": lambda: ctx.evidence.class_neighbourhoods,
    }
    # The shared evidence first, so each check's figure is its own work.
    steps: list[tuple[str, Callable[[], object]]] = [
        (f"evidence: {name}", evidence[name]) for name in args.evidence.split(",") if name
    ]
    steps += [(name, partial(_run, ctx, name, planted)) for name in args.checks.split(",") if name]
    for name, step in steps:
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = step()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        wall, cpu = wall + seconds, cpu + cpu_seconds
        note = f"  {outcome}" if isinstance(outcome, str) else ""
        print(f"{name:<28} {seconds:8.1f} {cpu_seconds:8.1f}{note}", flush=True)
    print(f"{'total':<28} {wall:8.1f} {cpu:8.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    for record in ctx.searches.records:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
