"""Does the reliability verdict (auditor/evidence/reliability.py) match how right the label-error flags really are?

For each run ``COLLECTION[:EMBEDDINGS]`` the real scan pipeline runs the label_errors check (builtin encoder,
or ``--encoder precomputed`` with the given embeddings file) and the script prints the verdict's figures
beside the flags' real precision against the collection's ``planted.json`` (``label_flips``: path + true
label, the layout of the bench helper's collections in /work/bench-data, see its README; a collection
without planted.json counts every flag as wrong, e.g. a clean real-photo folder). Then generated Gaussian
classes (precomputed vectors) of decreasing separation, with and without 8% flipped labels.

    PYTHONPATH=$PWD python benchmarks/reliability.py /work/bench-data/photos \\
        /work/bench-data/photos:/work/bench-data/photos.cnn.parquet /work/bench-data/digits

``--smoke`` needs no data: one generated Gaussian collection with a planted.json as the run, then the sweep at
two settings, 120 images each, in seconds.

Real data is for measuring only: the ant/bee photos are the PyTorch tutorial's hymenoptera_data, the
digits scikit-learn's bundled scans, the CNN fastdup 2.54's MobileNetV3 (CC BY-NC-ND, measure only).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def scan(dataset: Path, embeddings: Path | None, out: Path, cache: Path) -> tuple[dict, set[str]]:
    from auditor.core.config import load_config
    from auditor.scan import run_scan

    encoder: dict = {"name": "builtin"} if embeddings is None else {
        "name": "precomputed", "precomputed_file": str(embeddings)}
    config = load_config(overrides={"encoder": encoder, "scan": {"checks": ["label_errors"], "cache_dir": str(cache)}})
    run_scan(dataset, config, out)
    run = json.loads((out / "run.json").read_text())
    flagged = pd.read_parquet(out / "findings.parquet")
    flagged = flagged[(flagged["check"] == "label_error")]
    return run["checks"]["label_errors"], set(flagged["path"])


def row(name: str, summary: dict, precision: float | None, flags: int) -> str:
    figures = summary.get("reliability", {})
    bound = figures.get("expected_flag_precision_upper_bound")
    expected = figures.get("expected_flag_precision")
    return (f"| {name} | {flags} | {'-' if precision is None else f'{precision:.2f}'} | "
            f"{figures.get('balanced_accuracy', float('nan')):.2f} | "
            f"{figures.get('chance_corrected_accuracy', float('nan')):.2f} "
            f"({figures.get('chance_corrected_accuracy_upper_bound', float('nan')):.2f}) | "
            f"{'-' if expected is None else f'{expected:.2f} ({bound:.2f})'} | "
            f"{'reliable' if summary.get('reliable', True) else 'UNRELIABLE'} |")


def gaussian_collection(root: Path, separation: float, noise: float, seed: int = 0,
                        n: int = 400) -> tuple[Path, Path, set[str]]:
    """Two classes as 64-d Gaussians ``separation`` noise-sigmas apart; ``n`` dummy 32-px images + their vectors."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    dim = 64
    truth = rng.integers(0, 2, n)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    vectors = rng.normal(size=(n, dim)) + np.outer(truth - 0.5, direction) * separation + 3.0
    flipped = rng.random(n) < noise
    given = np.where(flipped, 1 - truth, truth)
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


def smoke_run(root: Path) -> str:
    """A generated collection laid out as the bench collections are (``planted.json`` lists its label flips),
    as a ``COLLECTION:EMBEDDINGS`` run."""
    folder, table, wrong = gaussian_collection(root, 4.0, 0.08, seed=1, n=120)
    (folder / "planted.json").write_text(json.dumps({"label_flips": [{"path": path} for path in sorted(wrong)]}))
    return f"{folder}:{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="COLLECTION or COLLECTION:EMBEDDINGS.parquet")
    parser.add_argument("--no-gaussians", action="store_true")
    parser.add_argument("--cache", type=Path, help="embedding cache folder to reuse (default: a throw-away one)")
    parser.add_argument("--smoke", action="store_true",
                        help="a generated collection as the run, then the sweep at two settings, 120 images each")
    args = parser.parse_args()
    sweep = [(separation, noise) for separation in (8.0, 4.0, 2.0, 1.0, 0.0) for noise in (0.0, 0.08)]
    size = 400
    print("| run | flags | real precision | balanced acc. | chance-corrected (upper) | expected precision (upper) "
          "| verdict |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = args.cache or work / "cache"
        if args.smoke:
            sweep, size = [(4.0, 0.0), (0.0, 0.08)], 120
            args.runs = [smoke_run(work / "smoke")]
        for i, spec in enumerate(args.runs):
            folder, _, embeddings = spec.partition(":")
            dataset = Path(folder)
            planted = dataset / "planted.json"
            plants = json.loads(planted.read_text()) if planted.exists() else {}
            # The bench collections list "label_flips"; sample_data lists "label_error".
            wrong = ({item["path"] for item in plants.get("label_flips", plants.get("label_error", []))}
                     if planted.exists() else set())
            summary, flagged = scan(dataset, Path(embeddings) if embeddings else None, work / f"out{i}", cache)
            precision = len(flagged & wrong) / len(flagged) if flagged else None
            name = f"{dataset.name}/{'precomputed ' + Path(embeddings).name if embeddings else 'builtin'}"
            print(row(name, summary, precision, len(flagged)), flush=True)
        for separation, noise in [] if args.no_gaussians else sweep:
            root, table, wrong = gaussian_collection(work / f"g{separation}_{noise}", separation, noise, n=size)
            summary, flagged = scan(root, table, work / f"gout{separation}_{noise}", work / "cache")
            precision = len(flagged & wrong) / len(flagged) if flagged else None
            print(row(f"gaussians sep {separation} noise {noise:.0%}", summary, precision, len(flagged)), flush=True)


if __name__ == "__main__":
    main()
