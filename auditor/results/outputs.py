"""Atomic file writes: an interrupted run must never leave a half-written output behind.

A scan's result set (findings, images, embeddings, run.json) is also replaced as a unit: every file
is first written to a temporary beside its target, and only then are all of them renamed into place
with SIGINT/SIGTERM held back, so a cancel lands before the first rename (old set intact) or after
the last (new set complete). A kill -9 cannot be held back, so every file of a set also carries the
set's run id (Parquet metadata, a run.json key) and readers refuse a folder whose files disagree.
Temporaries name the process that wrote them, so those left by a killed process are removed later.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from auditor.core.errors import OutputError
from auditor.results.findings import RUN_ID_KEY, RUN_ID_METADATA

# Writes a whole file at the given path; any return value (e.g. write_text's count) is ignored.
Writer = Callable[[Path], object]
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# .<target name>.<pid>.<random>.tmp, as _stage names its temporaries.
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _problem(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphans(directory: Path) -> list[Path]:
    """Delete temporaries that a killed process left in ``directory``; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            try:
                entry.unlink()
            except OSError:
                continue
            removed.append(entry)
    return removed


def being_written(directory: Path, names: frozenset[str]) -> bool:
    """Whether a live process is writing any of ``names`` into ``directory`` now (it holds a temporary for it).

    A reader that finds a set's files disagreeing can tell a scan still renaming them into place (wait) from
    one killed halfway (re-run it).
    """
    try:
        entries = [entry.name for entry in directory.iterdir()]
    except OSError:
        return False
    return any(
        match["target"] in names and _alive(int(match["pid"]))
        for match in map(_TEMPORARY.match, entries) if match
    )


def _stage(path: Path, write: Writer) -> Path:
    """Write via ``write`` to a synced temporary file beside ``path``; the caller renames or removes it."""
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_problem(exc)}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; results and reports are meant to be shared, so honour the umask instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_problem(exc)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextmanager
def _signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM to the end of the block (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, remember) for signum in _HELD_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in received:
            handler = previous[signal.Signals(number)]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


class TableWriter:
    """Writes one Parquet table; stamped with the run id of the set it joins."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def stamped(self, run_id: str) -> TableWriter:
        metadata = dict(self.table.schema.metadata or {})
        metadata[RUN_ID_METADATA] = run_id.encode()
        return TableWriter(self.table.replace_schema_metadata(metadata))

    def __call__(self, tmp: Path) -> None:
        # Through a Python file: pyarrow cannot encode a path under a non-UTF-8 folder name.
        with open(tmp, "wb") as handle:
            pq.write_table(self.table, handle)


class JsonWriter:
    """Writes one JSON document; a dict is stamped with the run id of the set it joins."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def stamped(self, run_id: str) -> JsonWriter:
        return JsonWriter({**self.data, RUN_ID_KEY: run_id} if isinstance(self.data, dict) else self.data)

    def __call__(self, tmp: Path) -> None:
        text = json.dumps(self.data, indent=2, sort_keys=False, default=str) + "\n"
        tmp.write_text(text, encoding="utf-8")


class StagedWrite:
    """Files written now and renamed into place together on ``commit``; discarded if never committed.

    With ``run_id`` (``new_run_id()`` for a scan's result set) table and JSON writers are stamped with it,
    so every file of the set names its set.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self._staged: list[tuple[Path, Path]] = []
        self._swept: set[Path] = set()

    def add(self, path: Path, write: Writer) -> None:
        if path.parent not in self._swept:
            remove_orphans(path.parent)
            self._swept.add(path.parent)
        if self.run_id is not None and isinstance(write, TableWriter | JsonWriter):
            write = write.stamped(self.run_id)
        self._staged.append((_stage(path, write), path))

    def commit(self) -> None:
        """Replace every target; readers see the old set or the new one, never a mix."""
        with _signals_held():
            for tmp, path in self._staged:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise OutputError(f"cannot write {path}: {_problem(exc)}") from None
        self._staged.clear()

    def __enter__(self) -> StagedWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()


def new_run_id() -> str:
    return uuid.uuid4().hex


def write_together(files: dict[Path, Writer]) -> None:
    """Write every file, then replace all targets at once."""
    with StagedWrite() as staged:
        for path, write in files.items():
            staged.add(path, write)
        staged.commit()


def atomic_write(path: Path, write: Writer) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    write_together({path: write})


def parquet_writer(table: pa.Table) -> Writer:
    return TableWriter(table)


def json_writer(data: Any) -> Writer:
    return JsonWriter(data)


def write_parquet(path: Path, table: pa.Table) -> None:
    atomic_write(path, parquet_writer(table))


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json_writer(data))


def _holds_results(out: Path, own: set[str]) -> bool:
    """Whether ``out`` holds an auditor result set: a Parquet output, or a run.json auditor wrote."""
    if any(name.endswith(".parquet") for name in own):
        return True
    try:
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(run, dict) and run.get("tool") == "auditor"


def prepare_results_dir(out: Path, own_files: frozenset[str]) -> None:
    """Refuse an ``--out`` that cannot hold results, before any work is done.

    ``out`` must be a new or empty folder, or one holding auditor results (``own_files`` and reports):
    a scan replaces files there, so it must never be pointed at a home folder or ``/``. It must also be
    writable now, so that a long scan does not end in an error.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder; give a folder for the results")
    if not out.exists():
        # Created only when the results are written; until then the nearest existing folder must allow it.
        ancestor = next(p for p in out.absolute().parents if p.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"cannot create the results folder {out}: {ancestor} is not writable")
        return
    remove_orphans(out)
    try:
        names = {entry.name for entry in out.iterdir()}
    except OSError as exc:
        raise OutputError(f"cannot list the results folder {out}: {_problem(exc)}") from None
    # Hidden files (.DS_Store, .gitkeep) do not make a folder someone else's; a home folder or / has others.
    foreign = sorted(n for n in names if n not in own_files and not n.startswith(".") and n != "report.html")
    if foreign and not _holds_results(out, names & own_files):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputError(
            f"--out {out} is a non-empty folder that is not an auditor results folder (it holds {shown}); "
            "give a new or empty folder"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=".tmp", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        problem = "read-only file system" if exc.errno == errno.EROFS else _problem(exc)
        raise OutputError(f"cannot write to the results folder {out}: {problem}") from None
