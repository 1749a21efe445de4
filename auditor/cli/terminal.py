"""The commands' terminal streams: stdout that tolerates a reader leaving early, stderr for errors, Ctrl-C."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from auditor.cli.exit_codes import EXIT_INTERRUPTED

err_console = Console(stderr=True)


@contextmanager
def interruptible(left: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) in a command: one line saying what was left, exit 130, as scan does; ``left`` says
    what the interrupted command leaves behind."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"[bold yellow]interrupted:[/] {left}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that neither a later write nor the interpreter's last flush raises again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class StdoutConsole(Console):
    """The commands' stdout: a reader that stops early (`audit gate RESULTS | head -1`) is no error.

    No traceback and no message: the rest of the text is dropped and the command goes on to its usual exit
    code. The gate's is its verdict, 0 pass and 1 fail, however much of the text the reader took (rich and
    typer alone exit 1 on a broken pipe, which a CI step reads as "the gate failed").
    """

    def __init__(self) -> None:
        super().__init__(stderr=False)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _drop_stdout()


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """What ``StdoutConsole`` does for text written with ``typer.echo``."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
