"""Command-line entry point. Thin: parse options, call the core, render, map errors to exit codes.

Each command lives in its own module; this one assembles them into the typer app, in the order `audit --help`
lists them, and turns whatever a command raises into one line on stderr and an exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Annotated, TextIO, cast

import typer
from rich.markup import escape

from auditor import __version__
from auditor.cli.exit_codes import EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from auditor.cli.export import export_command
from auditor.cli.fix import fix_command
from auditor.cli.gate import gate_command
from auditor.cli.options import Command, Group
from auditor.cli.report import report_command
from auditor.cli.review import review_command
from auditor.cli.scan import scan_command
from auditor.cli.terminal import LEFT_AS_THEY_WERE, GuardedStdout, Interrupted, err_console, stdout_failure
from auditor.core.errors import AuditorError

app = typer.Typer(
    name="audit",
    cls=Group,
    help="Audit labelled image datasets: label errors, duplicates and leakage, ambiguity, imbalance.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
)
for name, command in (("scan", scan_command), ("gate", gate_command), ("report", report_command),
                      ("review", review_command), ("fix", fix_command), ("export", export_command)):
    app.command(name, cls=Command)(command)
# click's base error (a missing argument, an unknown option, a bad value), found through typer's public
# ``BadParameter`` because typer may run its own copy of click.
_CLICK_ERROR: type[Exception] = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auditor {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """auditor: find what is wrong with an image dataset before you train on it."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (CI cancel, ``kill``, container stop) unwinds like Ctrl-C: outputs and cache stay whole."""
    raise KeyboardInterrupt


def _crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a log file; None if even that fails."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"auditor-error-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
            log.write(f"auditor {__version__}, python {sys.version.split()[0]}\nargv: {sys.argv!r}\n\n")
            log.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return Path(name)


def _usage_error(exc: Exception) -> int:
    context = getattr(exc, "ctx", None)
    usage = ""
    if context is not None:
        form = context.get_usage().removeprefix("Usage: ").strip()
        usage = f" (usage: {form}; {context.command_path} -h for help)"
    message = str(exc.format_message()) if hasattr(exc, "format_message") else str(exc)
    if message:  # empty when the help was the answer (``audit`` alone prints it)
        from auditor.report.safe import visible  # on use: `audit --help` must not import pandas

        # The message may quote what was typed (an unknown option): data, shown escaped.
        err_console.print(f"[bold red]error:[/] {escape(visible(message) + usage)}", highlight=False,
                          soft_wrap=True)
    return EXIT_USAGE


def _internal_error(exc: Exception) -> int:
    from auditor.report.safe import one_line  # on use: `audit --help` must not import pandas

    log = _crash_log(exc)
    where = f"traceback in {log}" if log is not None else "no log could be written"
    err_console.print(
        f"[bold red]internal error[/] (a bug in auditor, please report it): "
        f"{escape(one_line(f'{type(exc).__name__}: {exc}'))}; {escape(where)}",
        highlight=False, soft_wrap=True,
    )
    return EXIT_INTERNAL


def _interrupted(left: str) -> int:
    err_console.print(f"[bold yellow]interrupted:[/] {escape(left)}", highlight=False, soft_wrap=True)
    return EXIT_INTERRUPTED


def _run() -> int:
    """Run the command line; our errors exit 2, bugs 70, interrupts 130, each with one line on stderr."""
    try:
        # Not standalone: click's own errors come here, to be one line like ours (typer draws them in a box).
        code = app(prog_name="audit", standalone_mode=False)
    except _CLICK_ERROR as exc:
        return _usage_error(exc)
    except typer.Abort:  # standard input ended at a prompt
        err_console.print("[bold red]error:[/] input ended before an answer", highlight=False)
        return EXIT_USAGE
    except Interrupted as exc:
        return _interrupted(exc.left)
    except AuditorError as exc:
        from auditor.report.safe import visible  # on use: `audit --help` must not import pandas

        # Several lines only for a config with several bad fields, one per field; data shown escaped.
        message = "\n".join(visible(line) for line in str(exc).splitlines())
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the one place a bug is turned into a report, not a traceback
        return _internal_error(exc)
    # Not standalone, typer returns what a command's Exit carried (the gate's 1), else None. Its 130 is a
    # Ctrl-C that no command caught (typer turns it into a silent exit): it gets its line here.
    if code == EXIT_INTERRUPTED:
        return _interrupted(LEFT_AS_THEY_WERE)
    return code if isinstance(code, int) else EXIT_OK


def main() -> None:
    """Console-script entry: the exit code and at most one line on stderr, whatever happened."""
    signal.signal(signal.SIGTERM, _terminate)
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    stdout = GuardedStdout(sys.stdout)
    sys.stdout = cast(TextIO, stdout)
    try:
        code = _run()
        lost = stdout_failure()
        if lost is not None and code in (EXIT_OK, EXIT_GATE_FAILED):  # else a line was printed (the gate's, say)
            err_console.print(f"[bold red]error:[/] could not write to standard output: {escape(lost)}",
                              highlight=False, soft_wrap=True)
            code = EXIT_USAGE
    except KeyboardInterrupt:  # a Ctrl-C while an error was being reported
        code = _interrupted(LEFT_AS_THEY_WERE)
    finally:
        sys.stdout = stdout.stream
    sys.exit(code)
