"""The exit codes a shell or CI step reads: the documented table, and ``main()`` turning what a command raises
or returns into one of them."""

from __future__ import annotations

import importlib
import re
import tempfile
from pathlib import Path

import pytest

from auditor import __version__
from auditor.cli.exit_codes import EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from auditor.core.errors import ConfigError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
# The module itself: ``auditor.cli.app`` as an attribute is the typer app auditor.cli re-exports.
APP_MODULE = importlib.import_module("auditor.cli.app")


def test_the_codes_are_the_table_the_docs_give() -> None:
    assert (EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED) == (0, 1, 2, 70, 130)
    for doc in ("README.md", "docs/commands.md"):
        # The paragraph that starts "Exit codes:", up to the blank line that ends it.
        paragraph = (ROOT / doc).read_text(encoding="utf-8").split("\nExit codes:", 1)[1].split("\n\n", 1)[0]
        table = {int(code): meaning.strip() for code, meaning in re.findall(r"`(\d+)` ([a-z ]+)", paragraph)}
        assert table == {EXIT_OK: "ok", EXIT_GATE_FAILED: "gate failed", EXIT_USAGE: "usage or input error",
                         EXIT_INTERNAL: "internal error", EXIT_INTERRUPTED: "interrupted"}, doc


def _app_that(outcome: object) -> object:
    """Stands in for the typer app: raises ``outcome`` if it is an exception, else returns it (what a command's
    ``typer.Exit`` carries, or None)."""

    def app(**kwargs: object) -> object:
        assert kwargs == {"prog_name": "audit", "standalone_mode": False}
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return app


@pytest.mark.parametrize(("returned", "code"), [(None, EXIT_OK), (EXIT_GATE_FAILED, EXIT_GATE_FAILED)])
def test_main_exits_with_what_the_command_returned(
    monkeypatch: pytest.MonkeyPatch, returned: int | None, code: int
) -> None:
    monkeypatch.setattr(APP_MODULE, "app", _app_that(returned))
    result = run_cli("gate", "anything")
    assert (result.returncode, result.stdout, result.stderr) == (code, "", "")


def test_a_bare_interrupt_exit_still_gets_its_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # A command that stopped on Ctrl-C without saying so (typer's own Abort): main says it, once.
    monkeypatch.setattr(APP_MODULE, "app", _app_that(EXIT_INTERRUPTED))
    result = run_cli("gate", "anything")
    assert result.returncode == EXIT_INTERRUPTED and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("interrupted: ")


def test_main_maps_an_auditor_error_to_2_with_its_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(APP_MODULE, "app", _app_that(ConfigError("encoder.name: unknown\nscan.workers: < 0")))
    result = run_cli("scan", "data")
    assert result.returncode == EXIT_USAGE
    assert result.stderr == "error: encoder.name: unknown\nscan.workers: < 0\n"
    assert result.stdout == ""


def test_main_maps_a_bug_to_70_with_one_line_naming_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(APP_MODULE, "app", _app_that(ZeroDivisionError("planted\nbug")))
    result = run_cli("report", "results")
    assert result.returncode == EXIT_INTERNAL
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("internal error (a bug in auditor, please report it): ZeroDivisionError: planted")
    log = Path(lines[0].rsplit("; traceback in ", 1)[1])
    try:
        text = log.read_text(encoding="utf-8")
        assert log.name.startswith("auditor-error-") and log.suffix == ".log"
        assert text.startswith(f"auditor {__version__}, python ")
        assert "argv: ['audit', 'report', 'results']" in text
        assert "Traceback (most recent call last)" in text and "ZeroDivisionError: planted\nbug" in text
    finally:
        log.unlink()


def test_a_bug_is_still_one_line_and_70_when_no_log_can_be_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such folder"))
    monkeypatch.setattr(APP_MODULE, "app", _app_that(RuntimeError("planted")))
    result = run_cli("gate", "results")
    assert result.returncode == EXIT_INTERNAL
    assert result.stderr == ("internal error (a bug in auditor, please report it): RuntimeError: planted; "
                             "no log could be written\n")
