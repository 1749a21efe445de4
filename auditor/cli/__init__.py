"""The command-line interface: options, exit codes and what a person reads on the terminal.

A Ctrl-C ends every command with exit 130 and one "interrupted" line, whenever it comes: ``app.main`` handles
it while a command runs; this module while the CLI is still being imported (typer and rich take a noticeable
moment, and a KeyboardInterrupt traceback from inside an import is no answer) and once the exit code is
decided (the interpreter's shutdown restores the default action, and a late Ctrl-C would kill the process
without a word, reported as 130 though the command had finished).
"""

import os
import signal
import threading
from types import FrameType


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted: auditor was still starting; nothing was done\n")
    os._exit(130)


_ON_MAIN_THREAD = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
_before = signal.signal(signal.SIGINT, _interrupted_while_starting) if _ON_MAIN_THREAD else None
try:
    from auditor.cli.app import app
    from auditor.cli.app import main as run
finally:
    if _before is not None:
        signal.signal(signal.SIGINT, _before)


def main() -> None:
    """The ``audit`` command and ``python -m auditor``: ``app.main``, and a Ctrl-C after it has decided the exit
    code changes nothing."""
    try:
        run()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["app", "main"]
