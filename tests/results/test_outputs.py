"""Atomic writes: a target holds its old content or its new content, never half of one, and a result set is
replaced as a unit with every file naming its set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.core.errors import OutputError
from auditor.results.findings import RUN_ID_KEY, RUN_ID_METADATA
from auditor.results.outputs import (
    StagedWrite,
    atomic_write,
    json_writer,
    new_run_id,
    parquet_writer,
    prepare_results_dir,
    remove_orphans,
    write_json,
    write_parquet,
)


def _dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.md"
    atomic_write(target, lambda tmp: tmp.write_text("first"))
    atomic_write(target, lambda tmp: tmp.write_text("second"))
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json(target, {"a": 1})

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text('{"a": ')
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(target, half_then_fail)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_folder_is_not_a_file_target(tmp_path: Path) -> None:
    (tmp_path / "report.html").mkdir()
    with pytest.raises(OutputError, match="it is a folder; give a file path"):
        write_json(tmp_path / "report.html", {})


def test_a_staged_set_is_stamped_with_its_run_id_and_replaced_together(tmp_path: Path) -> None:
    run_id = new_run_id()
    table = pa.table({"x": [1, 2]})
    with StagedWrite(run_id) as staged:
        staged.add(tmp_path / "t.parquet", parquet_writer(table))
        staged.add(tmp_path / "run.json", json_writer({"tool": "auditor"}))
        assert not (tmp_path / "t.parquet").exists() and not (tmp_path / "run.json").exists()
        staged.commit()
    assert pq.read_table(tmp_path / "t.parquet").schema.metadata[RUN_ID_METADATA] == run_id.encode()
    assert json.loads((tmp_path / "run.json").read_text()) == {"tool": "auditor", RUN_ID_KEY: run_id}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "t.parquet"]


def test_an_uncommitted_set_leaves_nothing(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t.parquet", pa.table({"x": [1]}))
    with StagedWrite() as staged:
        staged.add(tmp_path / "t.parquet", parquet_writer(pa.table({"x": [2]})))
    assert pq.read_table(tmp_path / "t.parquet").column("x").to_pylist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_only_temporaries_of_dead_processes_are_orphans(tmp_path: Path) -> None:
    dead = tmp_path / f".run.json.{_dead_pid()}.abc123.tmp"
    mine = tmp_path / f".run.json.{os.getpid()}.def456.tmp"
    other = tmp_path / ".hidden.tmp"
    for path in (dead, mine, other):
        path.write_text("partial")
    assert remove_orphans(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_results_go_to_a_new_empty_or_results_folder_only(tmp_path: Path) -> None:
    own = frozenset({"findings.parquet", "run.json"})
    prepare_results_dir(tmp_path / "new" / "out", own)  # created later, by the write
    (tmp_path / "empty").mkdir()
    prepare_results_dir(tmp_path / "empty", own)
    previous = tmp_path / "previous"
    write_json(previous / "run.json", {"tool": "auditor"})
    (previous / "notes.txt").write_text("mine")
    prepare_results_dir(previous, own)
    home = tmp_path / "home"
    home.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", ".bashrc"):
        (home / name).write_text("")
    with pytest.raises(OutputError, match=r"not an auditor results folder \(it holds a.txt, b.txt, c.txt, ...\)"):
        prepare_results_dir(home, own)



@pytest.mark.parametrize("junk", ["[" * 100_000 + "]" * 100_000, "9" * 5001], ids=["nested-100k-deep", "5001-digits"])
def test_a_run_json_the_parser_cannot_read_does_not_make_a_results_folder(tmp_path: Path, junk: str) -> None:
    """A folder with such a run.json is someone else's (refused as such), not a crash of the scan."""
    (tmp_path / "run.json").write_text(f'{{"tool": "auditor", "junk": {junk}}}')
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not an auditor results folder"):
        prepare_results_dir(tmp_path, frozenset({"findings.parquet", "run.json"}))
