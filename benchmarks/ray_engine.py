"""Throughput of the decode + embed stage: ``--engine local`` against ``--engine ray`` on the same images.

Generates N photo-like 640x480 JPEGs (benchmarks/embed.py's generator) in three class folders and scans
them with each engine in turn (no cache, builtin encoder unless --encoder says otherwise, only the cheap
``unreadable`` check), ``rounds`` times interleaved. Prints images/s of the embed stage from run.json, for
Ray also without the time to start (or connect to) Ray, the actor count, and the load average; then checks
that both engines gave the same vectors. The local Ray instance is started per scan, as the CLI does;
with RAY_ADDRESS set the scans use that cluster instead.

    nice python benchmarks/ray_engine.py [--images 1000] [--rounds 1] [--encoder builtin]
    python benchmarks/ray_engine.py --smoke   # 6 images, one round: both engines' code paths (needs the ray extra)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed import photo_like  # noqa: E402 - the sibling benchmark's generator, not a package

from auditor.core.config import load_config  # noqa: E402
from auditor.scan import run_scan  # noqa: E402


def generate(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"class_{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        photo_like(i).save(folder / f"img_{i:05d}.jpg", quality=90)


def scan(data: Path, out: Path, engine: str, encoder: str) -> dict[str, object]:
    config = load_config(None, {"encoder": {"name": encoder}, "engine": {"name": engine},
                                "scan": {"use_cache": False, "checks": ["unreadable"]}})
    started = time.perf_counter()
    run_scan(data, config, out)
    run = json.loads((out / "run.json").read_text())
    run["wall_s"] = time.perf_counter() - started
    return dict(run)


def vectors(out: Path) -> np.ndarray:
    table = pq.read_table(out / "embeddings.parquet")
    return np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--encoder", default="builtin")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (6 images, one round)")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.rounds = 6, 1
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, args.images)
        print(f"{args.images} JPEGs 640x480, encoder {args.encoder}, {len(os.sched_getaffinity(0))} cores; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        rates: dict[str, list[float]] = {"local": [], "ray": [], "ray_after_start": []}
        for r in range(args.rounds):
            for engine in ("local", "ray"):
                run = scan(data, Path(tmp) / f"{engine}{r}", engine, args.encoder)
                embedded, embed_s = run["embedding"]["embedded"], run["timings_s"]["embed"]
                rates[engine].append(embedded / embed_s)
                line = (f"round {r} {engine:5s}: {embedded} embedded, embed stage {embed_s:.1f} s "
                        f"({embedded / embed_s:.1f} img/s), whole scan {run['wall_s']:.1f} s")
                if engine == "ray":
                    info = run["engine"]
                    after = embed_s - info["connect_s"]
                    rates["ray_after_start"].append(embedded / after)
                    line += (f"; Ray start {info['connect_s']:.1f} s, {embedded / after:.1f} img/s after it, "
                             f"{info['actors']} {info['device']} actor(s), {info['cluster']}")
                print(line + f"; load {os.getloadavg()[0]:.2f}", flush=True)
        for name, values in rates.items():
            print(f"median {name:16s} {statistics.median(values):7.1f} img/s")
        local, ray = vectors(Path(tmp) / "local0"), vectors(Path(tmp) / "ray0")
        print(f"largest difference between the engines' vectors: {float(np.abs(local - ray).max()):.2e}")


if __name__ == "__main__":
    main()
