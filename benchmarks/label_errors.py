"""Label-error benchmark: injected label noise, our scan against cleanlab's Datalab on the same embeddings.

    python benchmarks/label_errors.py                     # quality at 5% and 20% noise
    python benchmarks/label_errors.py --noise 0.05 --scale  # plus the out-of-sample timing at 100k x 512
    python benchmarks/label_errors.py --smoke               # both parts at tiny sizes, in seconds

(a) quality: scikit-learn's bundled digits (1,797 8x8 scans, 10 classes) upscaled to 32x32 PNGs in
class folders, with a share of labels flipped to a random other class (uniform noise) or to the next
class (systematic noise, ``--kind pair``). ``audit scan`` runs with the built-in encoder and only the
label_errors check; we score its ``label_error`` findings (precision, recall, F1) and its
``label_quality`` column (AUPRC, AUROC of 1 - quality) against the flipped set. Side by side, on the
same embeddings read back from embeddings.parquet: cleanlab's Datalab with ``features=`` (its own
out-of-sample k-NN probabilities), and Datalab given our out-of-sample probabilities.

(b) scale (``--scale``): synthetic clustered, L2-normalised 512-d embeddings (100k by default), timing
the out-of-sample probability stage alone with 100 and 1,000 classes.

``--smoke``: (a) on the first 300 digits at 10% noise and (b) at 2,000 x 512 with 10 classes. The Datalab rows
need the ``bench`` extra; where it is missing they are left out with a note.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build_digits(root: Path, noise: float, kind: str, seed: int, scans: int | None = None) -> set[str]:
    """Write the digits (the first ``scans``; all by default) with ``noise`` of them filed under a wrong class;
    returns their relative paths."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, targets = digits.images[:scans], digits.target[:scans]
    rng = np.random.default_rng(seed)
    n = len(targets)
    flipped = set(rng.choice(n, size=round(noise * n), replace=False).tolist())
    wrong: set[str] = set()
    for i, (pixels, target) in enumerate(zip(images, targets, strict=True)):
        label = int(target)
        if i in flipped:
            label = (label + 1) % 10 if kind == "pair" else int(rng.choice([c for c in range(10) if c != label]))
        folder = root / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(np.uint8(255 - pixels * 15)).resize((32, 32), Image.Resampling.BICUBIC)
        image.convert("RGB").save(folder / f"{i:04d}.png")
        if i in flipped:
            wrong.add(f"digit_{label}/{i:04d}.png")
    return wrong


def scores(name: str, flagged: np.ndarray, badness: np.ndarray, truth: np.ndarray) -> dict[str, float | str]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    true_positive = int((flagged & truth).sum())
    precision = true_positive / max(int(flagged.sum()), 1)
    recall = true_positive / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"method": name, "flagged": int(flagged.sum()), "precision": precision, "recall": recall, "f1": f1,
            "auprc": float(average_precision_score(truth, badness)), "auroc": float(roc_auc_score(truth, badness))}


def datalab_scores(name: str, labels: np.ndarray, truth: np.ndarray, **inputs: np.ndarray) -> dict[str, float | str]:
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(issue_types={"label": {}}, **inputs)
    issues = lab.get_issues("label")
    return scores(name, issues["is_label_issue"].to_numpy(), 1.0 - issues["label_score"].to_numpy(), truth)


def quality(noise: float, kind: str, seed: int, scans: int | None = None) -> list[dict[str, float | str]]:
    from vectors import DATALAB_MISSING, datalab_available  # benchmarks/vectors.py, beside this

    from auditor.core.config import load_config
    from auditor.evidence.probabilities import blended_probabilities, out_of_sample_probabilities
    from auditor.scan import run_scan

    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "digits", Path(tmp) / "out"
        wrong = build_digits(root, noise, kind, seed, scans)
        config = load_config(overrides={
            "encoder": {"name": "builtin"},
            "scan": {"checks": ["label_errors"], "cache_dir": str(Path(tmp) / "cache")},
        })
        started = time.perf_counter()
        result = run_scan(root, config, out)
        elapsed = time.perf_counter() - started
        images = result.images.set_index("path")
        embedded = pd.read_parquet(out / "embeddings.parquet")
    paths = embedded["path"].tolist()
    vectors = np.stack(embedded["embedding"].to_numpy()).astype(np.float32)
    classes = sorted(images["label"].unique())
    labels = images.loc[paths, "label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    truth = np.array([p in wrong for p in paths])
    flagged_paths = {f.path for f in result.findings if f.check == "label_error"}
    ours = scores("auditor (scan)", np.array([p in flagged_paths for p in paths]),
                  1.0 - images.loc[paths, "label_quality"].to_numpy(dtype=float), truth)
    ours["seconds"] = elapsed
    if not datalab_available():
        print(DATALAB_MISSING)
        return [ours]
    regression = out_of_sample_probabilities(vectors, labels, len(classes), config.probabilities)
    probs = blended_probabilities(vectors, labels, regression, config.probabilities)
    return [
        ours,
        datalab_scores("Datalab(features=)", labels, truth, features=vectors),
        datalab_scores("Datalab(our pred_probs)", labels, truth, pred_probs=probs),
    ]


def scale(images: int, class_counts: list[int], seed: int) -> None:
    from auditor.core.config import ProbabilityParams
    from auditor.evidence.probabilities import blended_probabilities, out_of_sample_probabilities

    rng = np.random.default_rng(seed)
    for classes in class_counts:
        centres = rng.normal(size=(classes, 512)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        labels = rng.integers(classes, size=images)
        # Spread chosen so a linear probe is right on ~80-90% of images, as for CLIP on a hard dataset.
        vectors = centres[labels] + rng.normal(scale=1.2 / np.sqrt(512), size=(images, 512)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        params = ProbabilityParams()
        regression = out_of_sample_probabilities(vectors, labels, classes, params)
        regression_s = time.perf_counter() - started
        probs = blended_probabilities(vectors, labels, regression, params)
        elapsed = time.perf_counter() - started
        accuracy = float((probs.argmax(axis=1) == labels).mean())
        print(f"out-of-sample probabilities, {images:,} x 512-d, {classes:,} classes: {elapsed:.1f} s "
              f"(regression {regression_s:.1f} s + k-NN vote {elapsed - regression_s:.1f} s; "
              f"out-of-sample accuracy {accuracy:.3f}, {os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", default="0.05,0.2", help="comma-separated shares of flipped labels")
    parser.add_argument("--kind", choices=["uniform", "pair"], default="uniform",
                        help="uniform: flip to a random other class; pair: flip digit d to d+1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", action="store_true", help="also time the out-of-sample stage at scale")
    parser.add_argument("--scale-images", type=int, default=100_000)
    parser.add_argument("--scale-classes", default="100,1000")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: 300 digits at 10%% noise, then the scale part at 2,000 x 512, 10 classes")
    args = parser.parse_args()
    scans = None
    if args.smoke:
        args.noise, args.scale, args.scale_images, args.scale_classes, scans = "0.1", True, 2000, "10", 300
    header = f"{'method':<26}{'flagged':>8}{'precision':>10}{'recall':>8}{'F1':>7}{'AUPRC':>7}{'AUROC':>7}"
    for noise in (float(x) for x in args.noise.split(",") if x):
        print(f"\ndigits, {noise:.0%} {args.kind} label noise (built-in encoder, same embeddings for all rows)")
        print(header)
        for row in quality(noise, args.kind, args.seed, scans):
            print(f"{row['method']:<26}{row['flagged']:>8}{row['precision']:>10.3f}{row['recall']:>8.3f}"
                  f"{row['f1']:>7.3f}{row['auprc']:>7.3f}{row['auroc']:>7.3f}")
    if args.scale:
        print()
        scale(args.scale_images, [int(x) for x in args.scale_classes.split(",")], args.seed)


if __name__ == "__main__":
    main()
