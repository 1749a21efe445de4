"""Atomic file writes: an interrupted run must never leave a half-written output behind.

A scan's result set (findings, images, embeddings, run.json) is also replaced as a unit: every file
is first written to a temporary beside its target, and only then are all of them renamed into place
with SIGINT/SIGTERM held back, so a cancel lands before the first rename (old set intact) or after
the last (new set complete), never between.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Writes a whole file at the given path; any return value (e.g. write_text's count) is ignored.
Writer = Callable[[Path], object]
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stage(path: Path, write: Writer) -> Path:
    """Write via ``write`` to a synced temporary file beside ``path``; the caller renames or removes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


class StagedWrite:
    """Files written now and renamed into place together on ``commit``; discarded if never committed."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: Path, write: Writer) -> None:
        self._staged.append((_stage(path, write), path))

    def commit(self) -> None:
        """Replace every target; readers see the old set or the new one, never a mix."""
        with _signals_held():
            for tmp, path in self._staged:
                os.replace(tmp, path)
        self._staged.clear()

    def __enter__(self) -> StagedWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()


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
    return lambda tmp: pq.write_table(table, tmp)


def json_writer(data: Any) -> Writer:
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def write_parquet(path: Path, table: pa.Table) -> None:
    atomic_write(path, parquet_writer(table))


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json_writer(data))
