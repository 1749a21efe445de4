"""Every benchmark runs: each script's ``--smoke`` mode (tiny sizes, generated data, no network) exits 0 and
prints its figures. A benchmark nobody runs rots (issue 26: ``embed.py`` crashed for months); these run in CI
with the slow tests.

The scripts run as a user runs them, ``python3 benchmarks/<script>.py --smoke`` in a fresh process, with this
checkout first on the import path. Each is checked for one line that only its last figures print, so a script
that stops early with exit 0 fails too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
# Seconds per script: a smoke run takes seconds of CPU, but the machine running the tests may be shared.
TIMEOUT_S = 600

# Script -> a pattern of the figures it prints last.
KEY_LINES = {
    "ambiguity": r"outlier: clean images flagged\n  seed 0: \d+/\d+ = ",
    "checks_at_scale": r"\ntotal +[\d.]+ +[\d.]+\npeak RSS [\d.]+ GB",
    "collections": r"\nembed: \d+ images embedded",
    "duplicates": r"\nshapes +cnn +[\d.]+ +[\d.]+ ",
    "embed": r"c/a = [\d.]+ .*\n.*c/b = [\d.]+ .*\n.*cosine auditor vs naive",
    "gpu": r"\ntuned / auditor: fp32 [\d.]+x \(min cosine [\d.]+\)\nmedian tuned / auditor: [\d.]+x",
    "incremental": r"re-scan / first scan wall time: [\d.]+",
    "label_studio": r"round trip: (\d+)/\1 tasks match, images served: \1/\1 identical",
    "label_errors": r"out-of-sample probabilities, 2,000 x 512-d, 10 classes: [\d.]+ s",
    "label_stage_cpu": r"auditor label-error stage: CPU least [\d.]+ s",
    "label_subsamples": r"synthetic \(synthetic.parquet\): precision mean [\d.]+ .* over 2 draws",
    "memory": r"bound: \d+ MB for main \+ workers -> within",
    "pr": r"\| duplicate in train \| fail \| .*\n\nsummary builtin: default: clean blocked \d+/7, bad caught \d+/8; "
          r"strict: clean blocked \d+/7, bad caught \d+/8; strict-all: ",
    "quality": r"night photos: .*\n  auditor dark: \d+ flagged",
    "ray_engine": r"largest difference between the engines' vectors: [\d.e+-]+",
    "reliability": r"\| gaussians K=10 sep [\d.]+ noise \d+% \| \d+ \| \d+ \|",
    "robustness": r"\| shapes/precomputed \| label_error \| \d+ \|",
    "scale": r"embed CLIP ViT-S-32 int8 +[\d.]+",
    "vectors": r"400 auditor +label errors +\d+ flagged, recall [\d.]+",
}
NEEDS_RAY = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed: pip install -e '.[ray]'")
# Label Studio lives in a virtual environment of its own (benchmarks/label_studio.py says how; .ci/run makes one).
NEEDS_LABEL_STUDIO = pytest.mark.skipif(
    not (os.environ.get("LABEL_STUDIO_BIN") or shutil.which("label-studio")),
    reason="label-studio is not installed: set LABEL_STUDIO_BIN to its executable (see benchmarks/label_studio.py)")
MARKS = {"ray_engine": [pytest.mark.ray, NEEDS_RAY], "label_studio": [NEEDS_LABEL_STUDIO]}


def _cases() -> list[object]:
    return [pytest.param(name, marks=MARKS[name]) if name in MARKS else name for name in sorted(KEY_LINES)]


def test_every_benchmark_script_has_a_smoke_run() -> None:
    assert sorted(KEY_LINES) == sorted(path.stem for path in BENCHMARKS.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", _cases())
def test_smoke_run_prints_its_figures(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_ADDRESS": ""}  # ray_engine: a local instance, as the CLI starts one, whatever this shell points at
    result = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), "--smoke"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    assert re.search(KEY_LINES[script], result.stdout), result.stdout[-4000:]
