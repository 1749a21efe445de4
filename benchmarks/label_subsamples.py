"""Label-error precision and recall over random subsamples of a collection, from its embeddings.

    python benchmarks/label_subsamples.py --data /work/bench-data --vectors digits.cnn.parquet \
        --collection digits --share 0.9 --draws 8

One scan gives one figure per collection, and a deterministic classifier gives no spread to read it against, so
a change of decision rule measured on one scan may ride on which images happen to be there. This draws
``--draws`` random subsets (``--share`` of the images, seeded 0, 1, ...) of a collection's embeddings, runs the
label_errors check on each (the scan's evidence and verdict, no images decoded), and prints precision and recall
against the collection's planted label flips per draw, with their mean and range. The vectors are a
``path, embedding`` Parquet file: ``<collection>.cnn.parquet`` from ``collections.py``, or a scan's
``embeddings.parquet``. Run it once per code version (``PYTHONPATH=<checkout>``) to compare rules side by side.

    python benchmarks/label_subsamples.py --smoke   # generated vectors, 2 draws, in seconds

``--smoke`` needs no data: ``vectors.py``'s synthetic vectors (400, 10 classes, 1% flipped labels) stand in
for a collection, written as its ``planted.json`` and a ``path, embedding`` Parquet file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def smoke_collection(data: Path) -> tuple[str, Path]:
    """Synthetic vectors written as a collection under ``data``: its name and its vectors file."""
    from vectors import synthetic  # benchmarks/vectors.py, next to this script

    planted = synthetic(400)
    paths = [f"train/class_{label:02d}/img_{i:04d}.png" for i, label in enumerate(planted["labels"])]
    (data / "synthetic").mkdir(parents=True)
    flips = [{"path": paths[i]} for i in np.flatnonzero(planted["flipped"])]
    (data / "synthetic" / "planted.json").write_text(json.dumps({"label_flips": flips}))
    pd.DataFrame({"path": paths, "embedding": list(planted["vectors"])}).to_parquet(data / "synthetic.parquet")
    return "synthetic", Path("synthetic.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/bench-data"), help="folder of built collections")
    parser.add_argument("--collection", help="collection name (its planted.json is read)")
    parser.add_argument("--vectors", type=Path, help="path,embedding Parquet (relative to --data)")
    parser.add_argument("--share", type=float, default=0.9, help="share of the images in each draw")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="generated vectors instead of --data, 2 draws")
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="subsamples-smoke-") as tmp:
            args.data, args.draws = Path(tmp), 2
            args.collection, args.vectors = smoke_collection(args.data)
            draws(args)
        return
    if args.collection is None or args.vectors is None:
        parser.error("--collection and --vectors, or --smoke")
    draws(args)


def draws(args: argparse.Namespace) -> None:
    """The label_errors check on each random subset, scored against the planted flips."""
    warnings.filterwarnings("ignore")
    from auditor.checks import CheckContext
    from auditor.checks.label_errors import LabelErrorsCheck, LabelErrorsParams
    from auditor.core.config import AuditConfig
    from auditor.core.encoder_facts import EncoderInfo

    table = pd.read_parquet(args.data / args.vectors)
    vectors = np.stack(table["embedding"].to_list()).astype(np.float32)
    paths = table["path"].to_numpy()
    flips = {item["path"] for item in json.loads((args.data / args.collection / "planted.json").read_text())
             ["label_flips"]}
    rows = []
    for draw in range(args.draws):
        keep = np.sort(np.random.default_rng(draw).choice(len(paths), int(args.share * len(paths)), replace=False))
        images = pd.DataFrame({
            "path": paths[keep], "label": [path.split("/")[-2] for path in paths[keep]], "split": None,
            "sha256": [f"sha{i}" for i in keep], "readable": True, "pixel_sha256": [f"px{i}" for i in keep],
            "embedding_row": np.arange(len(keep)),
        })
        context = CheckContext(images=images, embeddings=vectors[keep], classes=sorted(set(images["label"])),
                               splits=[], empty_classes={}, config=AuditConfig(),
                               encoder=EncoderInfo("precomputed", "precomputed", str(args.vectors), vectors.shape[1],
                                                   False))
        flagged = {finding.path for finding in LabelErrorsCheck(LabelErrorsParams()).run(context).findings}
        planted = flips & set(images["path"])
        hits = len(flagged & planted)
        rows.append((len(flagged), hits / max(len(flagged), 1), hits / max(len(planted), 1)))
        print(f"draw {draw}: {len(keep)} images, {len(planted)} planted, flagged {rows[-1][0]}, "
              f"precision {rows[-1][1]:.3f}, recall {rows[-1][2]:.3f}")
    precision, recall = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print(f"{args.collection} ({args.vectors}): precision mean {precision.mean():.3f} "
          f"({precision.min():.3f}-{precision.max():.3f}), recall mean {recall.mean():.3f} "
          f"({recall.min():.3f}-{recall.max():.3f}) over {args.draws} draws of {args.share:.0%}")


if __name__ == "__main__":
    main()
