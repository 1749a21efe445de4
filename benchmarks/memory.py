"""Peak memory of a scan: 20,000 small images stay under a documented bound, because nothing holds
the dataset's pixels at once (files are decoded, hashed and embedded in bounded windows, and only
per-image metadata and one vector per image are kept).

Generates PIL-drawn 64-px images in five class folders, then scans a small and the full dataset, each
in a fresh child process (builtin encoder, all checks, a fresh cache), and prints for each run:
the main process's peak RSS (getrusage), the largest decoding worker's own peak (/proc VmHWM), a
conservative total (main + workers x largest worker), the sampled peak of the whole process tree,
getrusage's children figure (inflated: it counts parent pages shared between fork and exec), the
per-image slope between the two sizes, and what holding every preprocessed encoder input in memory
would have cost instead.

    python benchmarks/memory.py [--images 20000] [--small 2000] [--workers 2] [--workdir DIR]
    python benchmarks/memory.py --smoke   # 100 and 200 images: the same two child scans in seconds

Exits 1 if the full run's conservative total exceeds BOUND_MB (the bound documented in the README).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw

# Documented bound for 20,000 images with the builtin encoder and every check (README, Reliability).
BOUND_MB = 1024
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SIZE = 64


def _draw(shape: str, seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(150, 255) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    r = rng.uniform(0.2, 0.42) * SIZE
    x, y = rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r)
    colour = tuple(rng.randint(0, 140) for _ in range(3))
    if shape == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "square":
        pen.rectangle((x - r, y - r, x + r, y + r), fill=colour)
    elif shape == "triangle":
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    elif shape == "diamond":
        pen.polygon([(x, y - r), (x - r, y), (x, y + r), (x + r, y)], fill=colour)
    else:
        pen.rectangle((x - r, y - r / 4, x + r, y + r / 4), fill=colour)
        pen.rectangle((x - r / 4, y - r, x + r / 4, y + r), fill=colour)
    for _ in range(rng.randint(0, 6)):  # clutter, so images are not near-identical
        cx, cy = rng.uniform(0, SIZE), rng.uniform(0, SIZE)
        pen.point((cx, cy), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return image


def generate(root: Path, count: int) -> Path:
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(count):
        return root
    for n in range(count):
        shape = SHAPES[n % len(SHAPES)]
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        _draw(shape, n).save(folder / f"{n:06d}.png")
    marker.write_text(str(count))
    return root


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples the RSS of this process and its descendants (decoding workers) every ``interval`` s.

    getrusage(RUSAGE_CHILDREN) alone over-reports workers: a child's maxrss includes the parent's
    pages it shared between fork and exec. /proc's VmHWM of a live worker is its own peak.
    """

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.tree_peak_kb = 0
        self.worker_peak_kb = 0
        self.running = True

    def run(self) -> None:
        me = os.getpid()
        while self.running:
            workers = _descendants(me)
            self.tree_peak_kb = max(self.tree_peak_kb,
                                    _status_kb(me, "VmRSS") + sum(_status_kb(w, "VmRSS") for w in workers))
            self.worker_peak_kb = max([self.worker_peak_kb, *(_status_kb(w, "VmHWM") for w in workers)])
            time.sleep(self.interval)


def child(data: Path, out: Path, cache: Path, workers: int) -> None:
    """Run one scan in this process and print its peak memory as JSON (called in a fresh process)."""
    from auditor.core.config import load_config
    from auditor.scan import run_scan

    config = load_config(overrides={
        "encoder": {"name": "builtin", "workers": workers},
        "scan": {"cache_dir": str(cache), "workers": workers},
    })
    sampler = TreeSampler()
    sampler.start()
    started = time.perf_counter()
    result = run_scan(data, config, out)
    wall = time.perf_counter() - started
    sampler.running = False
    sampler.join()
    kib = 1024  # ru_maxrss and /proc figures are in KiB on Linux
    print(json.dumps({
        "files": result.run["dataset"]["files"],
        "embedded": result.run["embedding"]["embedded"],
        "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
        "worker_peak_mb": sampler.worker_peak_kb / kib,
        "tree_peak_mb": sampler.tree_peak_kb / kib,
        "wall_s": wall,
        "timings_s": result.run["timings_s"],
    }))


def measure(data: Path, workdir: Path, workers: int) -> dict[str, float]:
    tag = data.name
    command = [sys.executable, __file__, "--child", str(data), str(workdir / f"out-{tag}"),
               str(workdir / f"cache-{tag}-{time.time_ns()}"), "--workers", str(workers)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        sys.exit(f"scan of {data} failed:\n{finished.stderr}")
    stats: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    # Upper bound on the whole tree: main at its peak plus every worker at the largest worker's peak.
    stats["total_bound_mb"] = stats["main_peak_mb"] + workers * stats["worker_peak_mb"]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=3, type=Path, metavar=("DATA", "OUT", "CACHE"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (100 and 200 images)")
    args = parser.parse_args()
    if args.smoke:
        args.small, args.images = 100, 200
    if args.child:
        child(*args.child, workers=args.workers)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="auditor-memory-"))
    rows = []
    for count in (args.small, args.images):
        started = time.perf_counter()
        data = generate(workdir / f"data-{count}", count)
        print(f"generated {count} images in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows.append(measure(data, workdir, args.workers))
        print(f"scanned {count} images: {json.dumps(rows[-1])}", file=sys.stderr)

    from auditor.embed.encoders.builtin import BuiltinEncoder

    encoder = BuiltinEncoder()
    input_bytes = encoder.preprocessor()(_draw("circle", 0)).nbytes
    small, full = rows
    slope_kb = (full["main_peak_mb"] - small["main_peak_mb"]) * 1024 / max(1, full["files"] - small["files"])
    print(f"| images | main peak RSS (MB) | largest worker (MB) "
          f"| main + {args.workers} x largest worker (MB) "
          "| sampled tree peak (MB) | getrusage children (MB) | scan wall (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['files']:,} | {row['main_peak_mb']:.0f} | {row['worker_peak_mb']:.0f} "
              f"| {row['total_bound_mb']:.0f} | {row['tree_peak_mb']:.0f} | {row['children_maxrss_mb']:.0f} "
              f"| {row['wall_s']:.0f} |")
    print(f"\nmain-process growth: {slope_kb:.1f} kB per image "
          f"between {small['files']:,} and {full['files']:,}")
    print(f"embedding matrix at {full['files']:,} images: {full['files'] * encoder.dim * 4 / 2**20:.0f} MB "
          f"({encoder.dim} float32 per image)")
    print(f"holding every preprocessed input instead: {full['files'] * input_bytes / 2**20:,.0f} MB "
          f"(builtin, {input_bytes:,} B each); "
          f"CLIP 224-px inputs: {full['files'] * 3 * 224 * 224 * 4 / 2**30:.1f} GB")
    verdict = "within" if full["total_bound_mb"] <= BOUND_MB else "OVER"
    print(f"bound: {BOUND_MB} MB for main + workers -> {verdict}")
    if full["total_bound_mb"] > BOUND_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
