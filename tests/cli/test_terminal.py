"""The commands' terminal streams: Ctrl-C as an ``Interrupted`` that says what was left, and standard output
whose reader left early (no failure) or whose disk is full (a failure ``main`` reports)."""

from __future__ import annotations

import errno
import io
import sys

import pytest

from auditor.cli.terminal import GuardedStdout, Interrupted, interruptible, stdout_failure


def test_ctrl_c_inside_interruptible_becomes_interrupted_saying_what_was_left() -> None:
    with pytest.raises(Interrupted) as stopped, interruptible("no report was written"):
        raise KeyboardInterrupt
    assert stopped.value.left == "no report was written"


def test_interruptible_lets_success_and_other_errors_through(capsys: pytest.CaptureFixture[str]) -> None:
    with interruptible("nothing"):
        finished = True
    assert finished
    with pytest.raises(ValueError, match="not an interrupt"), interruptible("nothing"):
        raise ValueError("not an interrupt")
    assert capsys.readouterr().err == ""


class _Failing(io.StringIO):
    """A stream whose writes fail with ``code`` (EPIPE: the reader left; ENOSPC: the disk is full)."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def write(self, text: str) -> int:
        raise OSError(self.code, "simulated")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file behind it")


def test_a_reader_leaving_is_no_failure_and_a_full_disk_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = GuardedStdout(_Failing(errno.EPIPE))
    assert gone.write("verdict\n") == len("verdict\n")
    monkeypatch.setattr(sys, "stdout", gone)
    assert gone.failure is None and stdout_failure() is None
    full = GuardedStdout(_Failing(errno.ENOSPC))
    full.write("verdict\n")
    full.write("more\n")
    monkeypatch.setattr(sys, "stdout", full)
    assert isinstance(full.failure, OSError) and full.failure.errno == errno.ENOSPC
    assert stdout_failure() == "simulated"


def test_a_healthy_stream_is_passed_through() -> None:
    stream = io.StringIO()
    guarded = GuardedStdout(stream)
    guarded.write("all of it\n")
    guarded.flush()
    assert stream.getvalue() == "all of it\n" and guarded.failure is None
    assert guarded.getvalue() == "all of it\n"  # anything else is the stream's own
