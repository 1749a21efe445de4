"""The commands' terminal streams: Ctrl-C as one line and exit 130, and stdout whose reader left early."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import typer

from auditor.cli.exit_codes import EXIT_INTERRUPTED
from auditor.cli.terminal import interruptible


def test_ctrl_c_inside_interruptible_is_one_line_saying_what_was_left_and_exit_130(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as stopped, interruptible("no [bold]report[/] was written"):
        raise KeyboardInterrupt
    assert stopped.value.exit_code == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.err == "interrupted: no report was written\n" and captured.out == ""


def test_interruptible_lets_success_and_other_errors_through(capsys: pytest.CaptureFixture[str]) -> None:
    with interruptible("nothing"):
        finished = True
    assert finished
    with pytest.raises(ValueError, match="not an interrupt"), interruptible("nothing"):
        raise ValueError("not an interrupt")
    assert capsys.readouterr().err == ""


# A command's last writes: rich's console, then typer.echo, then its exit code; a marker on stderr after each.
_WRITER = textwrap.dedent("""
    import sys
    import typer
    from auditor.cli.terminal import StdoutConsole, reader_may_leave

    console = StdoutConsole()
    for _ in range(200):
        console.print("a line of the report " * 5, soft_wrap=True)
    print("console done", file=sys.stderr)
    with reader_may_leave():
        typer.echo("the verdict " * 10_000)
    print("echo done", file=sys.stderr)
    console.print("written after the reader left")
    sys.exit(3)
""")


def test_a_reader_leaving_early_drops_the_rest_without_a_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -0`: every write to stdout gets EPIPE
    try:
        done = subprocess.run([sys.executable, "-c", _WRITER], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 3  # the command's own exit code, not 1 for the broken pipe
    assert done.stderr == "console done\necho done\n", done.stderr


def test_a_reader_leaving_is_only_noticed_on_a_pipe_that_broke() -> None:
    done = subprocess.run([sys.executable, "-c", _WRITER], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stderr == "console done\necho done\n"
    assert done.stdout.count("a line of the report") == 1000 and "written after the reader left" in done.stdout
