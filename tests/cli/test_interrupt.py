"""Interruption: a scan stopped by Ctrl-C or SIGTERM mid-embedding loses nothing it finished.

Real subprocesses are signalled at a real moment: the test polls the embedding cache's row count
and signals once some, but not all, batches are committed (batch size 1 makes the embedding stage
long enough to hit). No test hooks in the product code.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from auditor.embed.cache import CACHE_FORMAT
from auditor.embed.encoders.builtin import BuiltinEncoder
from auditor.ingest.images import open_rgb, sha256_file
from auditor.results import outputs

FIRST, TOTAL = 20, 300
LIMIT_S = 120


def _noise_images(root: Path, start: int, stop: int) -> None:
    """Distinct noise images (each its own content hash) split over two classes."""
    for i in range(start, stop):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (128, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def _start(data: Path, out: Path, cache: Path, workers: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "auditor", "scan", str(data), "--out", str(out),
               "--cache-dir", str(cache), "--encoder", "builtin", "--batch-size", "1",
               "--workers", str(workers), "-q"]
    # A session of its own, so a Ctrl-C can go to the whole process group as a terminal sends it.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _cache_file(cache: Path) -> Path:
    return cache / f"embeddings-v{CACHE_FORMAT}.sqlite"


def _rows(cache: Path) -> int:
    path = _cache_file(cache)
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _processes() -> list[tuple[int, list[str]]]:
    """Every process's pid and the fields of its /proc stat after the name (state, parent, group, ...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()))
            except OSError:  # it ended while we looked
                continue
    return found


def _children(pid: int) -> set[int]:
    return {child for child, fields in _processes() if int(fields[1]) == pid}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent (maybe init) has yet to reap it


def _interrupt_midway(data: Path, out: Path, cache: Path, signum: int, whole_group: bool) -> tuple[int, str]:
    """Start a scan, signal it once 30 more embeddings are committed; returns (exit code, stderr)."""
    before = _rows(cache)
    process = _start(data, out, cache, workers=2)
    deadline = time.monotonic() + LIMIT_S
    while _rows(cache) < before + 30:
        assert process.poll() is None, f"scan ended before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline, "scan never reached the embedding stage"
        time.sleep(0.01)
    workers = _children(process.pid) if Path("/proc").is_dir() else set()
    if whole_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=LIMIT_S)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the interrupted scan"
    return process.returncode, stderr


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _check_cache(cache: Path, data: Path) -> int:
    """The cache passes SQLite's integrity check and every row is a correct, complete vector."""
    encoder = BuiltinEncoder()
    with sqlite3.connect(_cache_file(cache)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT sha256, encoder, dim, vector FROM embeddings").fetchall()
    by_sha = {sha256_file(p)[0]: p for p in data.rglob("*.png")}
    for sha, identity, dim, blob in rows:
        assert identity == encoder.identity and dim == encoder.dim and len(blob) == 4 * dim
        assert sha in by_sha
    preprocess = encoder.preprocessor()
    for sha, _, _, blob in rows[:: max(1, len(rows) // 5)]:
        image, _, _ = open_rgb(by_sha[sha], 10**8, preprocess.draft_size)
        expected = encoder.embed(np.stack([preprocess(image)]))[0]
        np.testing.assert_allclose(np.frombuffer(blob, dtype=np.float32), expected, rtol=1e-5, atol=1e-6)
    return len(rows)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_interrupted_scans_keep_results_and_cache_and_resume(tmp_path: Path) -> None:
    data, out, cache = tmp_path / "data", tmp_path / "out", tmp_path / "cache"
    _noise_images(data, 0, FIRST)
    first = _start(data, out, cache, workers=0)
    _, stderr = first.communicate(timeout=LIMIT_S)
    assert first.returncode == 0, stderr
    earlier = _snapshot(out)
    assert json.loads(earlier["run.json"])["dataset"]["files"] == FIRST

    _noise_images(data, FIRST, TOTAL)
    # Ctrl-C as a terminal sends it (to the whole process group, workers included), then a plain
    # SIGTERM to the main process as CI runners and `kill` send it.
    for signum, whole_group in ((signal.SIGINT, True), (signal.SIGTERM, False)):
        code, stderr = _interrupt_midway(data, out, cache, signum, whole_group)
        assert code == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr, stderr
        assert _snapshot(out) == earlier, f"{signum!r} changed the earlier results"
        cached = _check_cache(cache, data)
        assert FIRST + 30 <= cached < TOTAL

    final = _start(data, out, cache, workers=2)
    _, stderr = final.communicate(timeout=LIMIT_S)
    assert final.returncode == 0, stderr
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["files"] == TOTAL and run["dataset"]["readable"] == TOTAL
    assert run["embedding"]["from_cache"] == cached
    assert run["embedding"]["embedded"] == TOTAL - cached
    assert _check_cache(cache, data) == TOTAL
    assert sorted(p.name for p in out.iterdir()) == sorted(earlier)


def _write_set(folder: Path, text: str) -> outputs.StagedWrite:
    staged = outputs.StagedWrite()
    for name in ("findings.parquet", "run.json"):
        staged.add(folder / name, lambda tmp, name=name: tmp.write_text(f"{text} {name}"))
    return staged


def test_signal_during_commit_is_held_until_the_whole_set_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _write_set(tmp_path, "old") as staged:
        staged.commit()
    real_replace = os.replace

    def replace_then_get_signalled(source: str | Path, target: str | Path) -> None:
        real_replace(source, target)
        signal.raise_signal(signal.SIGINT)  # lands between the renames

    monkeypatch.setattr(outputs.os, "replace", replace_then_get_signalled)
    with pytest.raises(KeyboardInterrupt), _write_set(tmp_path, "new") as staged:
        staged.commit()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "findings.parquet": "new findings.parquet", "run.json": "new run.json"}


def test_interrupt_while_staging_leaves_old_set_and_no_temporaries(tmp_path: Path) -> None:
    with _write_set(tmp_path, "old") as staged:
        staged.commit()

    def interrupted(tmp: Path) -> None:
        tmp.write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), outputs.StagedWrite() as staged:
        staged.add(tmp_path / "findings.parquet", lambda tmp: tmp.write_text("new"))
        staged.add(tmp_path / "run.json", interrupted)
        staged.commit()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "findings.parquet": "old findings.parquet", "run.json": "old run.json"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes through /proc")
def test_ctrl_c_while_workers_start_prints_only_the_interrupted_line(tmp_path: Path) -> None:
    """Workers still importing once died of the group's SIGINT with their own tracebacks."""
    data, out, cache = tmp_path / "data", tmp_path / "out", tmp_path / "cache"
    _noise_images(data, 0, 80)
    # Signalled at several moments of a worker's start: interpreter start-up, imports, first chunk.
    for delay in (0.05, 0.15, 0.3, 0.6):
        process = _start(data, out, cache, workers=2)
        deadline = time.monotonic() + LIMIT_S
        while not _children(process.pid):
            assert process.poll() is None, f"scan ended before its workers started: {process.communicate()}"
            assert time.monotonic() < deadline, "no worker process ever started"
            time.sleep(0.002)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=LIMIT_S)
        assert process.returncode == 130, (delay, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("interrupted:"), (delay, stderr)


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes in process group ``group``."""
    return [member for member, fields in _processes() if int(fields[2]) == group and fields[0] != "Z"]


def _group_ends(group: int, within_s: float) -> list[int]:
    """Wait up to ``within_s`` for process group ``group`` to be empty; returns who is left."""
    deadline = time.monotonic() + within_s
    while (left := _group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through /proc")
def test_workers_and_the_resource_tracker_die_with_a_killed_scan(tmp_path: Path) -> None:
    """After `kill -9` of a scan its decode workers and the resource tracker once lived on for 30 s and more."""
    data, out, cache = tmp_path / "data", tmp_path / "out", tmp_path / "cache"
    _noise_images(data, 0, 120)
    process = _start(data, out, cache, workers=2)
    deadline = time.monotonic() + LIMIT_S
    while len(_children(process.pid)) < 3:  # two workers and the resource tracker
        assert process.poll() is None, f"scan ended before its workers started: {process.communicate()}"
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=LIMIT_S)
    assert not _group_ends(process.pid, within_s=5), "processes outlived the killed scan"


_READY = "ready"
# `python -m auditor ARGS` as -m runs it, once the interpreter has started and imported the (tiny) package:
# a signal before that meets no code of auditor's, only Python's own start-up (site, .pth files), so the moments
# are drawn from then on, leaving the import system a few milliseconds to reach auditor.cli.
_AFTER_START_UP = (f"import auditor, runpy; print({_READY!r}, flush=True); "
                   "runpy.run_module('auditor', run_name='__main__', alter_sys=True)")
_FIRST_MOMENT_S = 0.02


@pytest.fixture(scope="module")
def small_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("interrupt")
    _noise_images(root / "data", 0, 40)
    done = subprocess.run([sys.executable, "-m", "auditor", "scan", str(root / "data"), "--out", str(root / "out"),
                           "--encoder", "builtin", "--workers", "0", "--checks", "unreadable", "-q"],
                          capture_output=True, text=True, timeout=LIMIT_S)
    assert done.returncode == 0, done.stderr
    return root


def _commands(root: Path) -> dict[str, list[str]]:
    results = str(root / "out")
    return {
        "scan": ["scan", str(root / "data"), "--out", str(root / "again"), "--encoder", "builtin", "--workers", "2",
                 "--batch-size", "4", "--cache-dir", str(root / "cache"), "--checks", "unreadable", "-q"],
        "gate": ["gate", results],
        "report": ["report", results, "--format", "markdown"],
        "fix": ["fix", results, "--out", str(root / "manifest.csv")],
        "export": ["export", results, "--to", "label-studio", "--out", str(root / "tasks.json")],
        "version": ["--version"],
    }


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through /proc")
@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["scan", "gate", "report", "fix", "export", "version"]),
       delay=st.floats(min_value=_FIRST_MOMENT_S, max_value=2.0))
def test_ctrl_c_at_any_moment_is_exit_130_one_line_and_no_process_left(
    small_results: Path, command: str, delay: float
) -> None:
    """A Ctrl-C once gave a traceback from inside `import typer`, or exit 130 without a word (gate, report, scan,
    fix, export); either the command is interrupted (130 and one "interrupted" line) or it had finished."""
    process = subprocess.Popen([sys.executable, "-c", _AFTER_START_UP, *_commands(small_results)[command]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline().strip() == _READY
    time.sleep(delay)
    try:
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    except ProcessLookupError:  # it had finished and been reaped
        pass
    _, stderr = process.communicate(timeout=LIMIT_S)
    # The command's own warnings (export's note on how images resolve) may come before the interrupt.
    lines = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
    assert "Traceback" not in stderr and len(lines) <= 1, (command, delay, stderr)
    if process.returncode == 130:
        assert len(lines) == 1 and lines[0].startswith("interrupted:"), (command, delay, stderr)
    else:  # the signal came after the work was done
        assert process.returncode in (0, 1) and not lines, (command, delay, process.returncode, stderr)
    assert not _group_ends(process.pid, within_s=5), (command, delay, "processes outlived the command")
