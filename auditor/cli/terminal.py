"""The commands' terminal streams: stdout that survives a reader leaving or a full disk, stderr, Ctrl-C."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console

err_console = Console(stderr=True)

# What an interrupted command leaves when it has nothing more precise to say: every file auditor writes is
# renamed into place whole, so it is either the old one or the new one.
LEFT_AS_THEY_WERE = "stopped before it finished; files it was writing were left as they were"


class Interrupted(Exception):
    """A command stopped by Ctrl-C or SIGTERM; ``left`` says what it leaves behind (``main`` prints it)."""

    def __init__(self, left: str) -> None:
        super().__init__(left)
        self.left = left


@contextmanager
def interruptible(left: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) in this block ends the command with exit 130 and one line saying ``left``."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(left) from None


def _drop(stream: TextIO) -> None:
    """Point ``stream``'s file at /dev/null, so that neither a later write nor the interpreter's last flush
    fails again."""
    try:
        target = stream.fileno()
    except (OSError, ValueError):  # no file descriptor behind it: nothing is left to fail
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, target)
    os.close(devnull)


class GuardedStdout:
    """``sys.stdout`` while a command runs: a failed write never becomes a traceback or the wrong exit code.

    A reader that stops early (`audit gate RESULTS | head -1`, `audit --help | head -1`) is no error: the rest
    of the text is dropped and the command exits as it would have, the gate with its verdict (rich and typer
    alone exit 1 on a broken pipe, which a CI step reads as "the gate failed"). Any other failure (a full disk,
    `> /dev/full`) is kept in ``failure``: the rest is dropped too, the command finishes its work, and ``main``
    reports it as one line and exit 2.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            self._lost(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        if exc.errno != errno.EPIPE and self.failure is None:
            self.failure = exc
        _drop(self.stream)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding...: the stream's own
        return getattr(self.stream, name)


def stdout_failure() -> str | None:
    """Why standard output could not be written (a reader leaving early is not a failure), or None."""
    stream: Any = sys.stdout
    if isinstance(stream, GuardedStdout):
        stream.flush()
        if stream.failure is not None:
            return stream.failure.strerror or str(stream.failure)
    return None
