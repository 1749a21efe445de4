"""The CLI as a whole, through its real entry point: the version, usage lines, and usage or input errors as
one line and exit 2. Each command's own tests are in tests/cli/test_<command>.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli.app import app
from auditor.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from tests.cli.conftest import audit_process, with_reader_gone
from tests.conftest import run_cli, write_class_folder

audit = run_cli


def test_version() -> None:
    from auditor import __version__

    result = audit_process("--version")  # one real `python -m auditor` start
    assert result.returncode == 0 and __version__ in result.stdout


def test_the_commands_are_listed_in_help_order() -> None:
    assert [command.name for command in app.registered_commands] == [
        "scan", "gate", "report", "review", "fix", "export"]
    listing = audit("--help").stdout
    positions = [listing.index(f" {name} ") for name in ("scan", "gate", "report", "review", "fix", "export")]
    assert positions == sorted(positions), listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "{tmp}/missing"], "dataset folder not found"),
        (["scan", "{tmp}/empty"], "no images found"),
        (["scan", "{data}", "--checks", "nonsense"], "unknown check"),
        (["scan", "{data}", "--config", "{tmp}/bad.toml"], "not valid TOML"),
        (["scan", "{data}", "--config", "{tmp}/typo.toml"], "encoder.batchsize"),
        (["scan", "{data}", "--config", "{tmp}/nope.toml"], "config file not found"),
        (["scan", "{data}", "--encoder", "clip"], "not available on this machine"),
        (["scan", "{data}", "--out", "{data}/inside"], "never writes into a dataset"),
        (["scan", "{data}", "--bogus-option"], "No such option"),
        (["scan"], "Missing argument"),
    ],
    ids=["missing", "empty", "unknown-check", "bad-toml", "typo-key", "no-config", "clip-no-weights",
         "out-inside", "bad-option", "no-dataset"],
)
def test_usage_and_input_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=2)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "bad.toml").write_text("[encoder\nname=")
    (tmp_path / "typo.toml").write_text("[encoder]\nbatchsize = 3\n")
    filled = [a.format(tmp=tmp_path, data=data) for a in args]
    if "--out" not in filled and filled[:1] == ["scan"] and len(filled) > 1:
        filled += ["--out", str(tmp_path / "out")]
    result = audit(*filled)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    if args[-1] in ("--bogus-option", "scan"):  # click's own errors: one line, never a box, saying how to call
        assert result.stderr.count("\n") == 1 and "╭" not in result.stderr
        assert "(usage: audit scan [OPTIONS] DATASET; audit scan -h for help)" in result.stderr


def test_help_names_arguments_as_written() -> None:
    """The usage line reads ``DATASET``, as the help text does (typer writes ``{DATASET}``)."""
    for command, argument in (("scan", "DATASET"), ("gate", "RESULTS"), ("review", "RESULTS"), ("fix", "RESULTS")):
        usage = next(line for line in audit(command, "--help").stdout.splitlines() if "Usage:" in line)
        assert f"Usage: audit {command} [OPTIONS] {argument}" in usage and "{" not in usage, usage


def test_a_reader_leaving_help_or_version_early_is_exit_0_and_silent() -> None:
    for args in (("--version",), ("gate", "--help"), ("--help",)):
        result = with_reader_gone(*args)
        assert result.returncode == EXIT_OK and result.stderr == "", (args, result.returncode, result.stderr)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_a_full_standard_output_is_exit_2_with_one_line(passing_results: Path, tmp_path: Path) -> None:
    """Once an internal error (exit 70), and the gate's verdict was lost."""
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    scan = ("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin", "--workers", "0",
            "--checks", "unreadable")
    for args in (("--version",), ("gate", "--help"), ("gate", str(passing_results)), ("report", str(passing_results)),
                 scan):
        with open("/dev/full", "w") as full:
            result = subprocess.run([sys.executable, "-m", "auditor", *args], stdout=full, stderr=subprocess.PIPE,
                                    text=True, timeout=300)
        lines = result.stderr.splitlines()
        assert result.returncode == EXIT_USAGE and len(lines) == 1, (args, result.returncode, result.stderr)
        assert "No space left on device" in lines[0], args
        if args == ("gate", str(passing_results)):
            assert lines[0].startswith("error: the gate passed, but its verdict could not be written"), lines
    assert (tmp_path / "out" / "run.json").is_file()  # the scan's results were written all the same


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(
    passing_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fix and export once exited 130 without a word (typer turns an uncaught Ctrl-C into a silent exit)."""
    import auditor.actions.exports
    import auditor.actions.fix
    import auditor.actions.gate
    import auditor.report
    from auditor.cli.terminal import LEFT_AS_THEY_WERE

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(auditor.report, "render_results", interrupted)
    monkeypatch.setattr(auditor.actions.gate, "evaluate", interrupted)
    monkeypatch.setattr(auditor.actions.fix, "plan_fix", interrupted)
    monkeypatch.setattr(auditor.actions.exports, "label_studio_tasks", interrupted)
    for args, left in [(["report", str(passing_results)], "no report was written"),
                       (["gate", str(passing_results)], "no verdict was given"),
                       (["fix", str(passing_results), "--out", str(tmp_path / "m.csv")], LEFT_AS_THEY_WERE),
                       (["export", str(passing_results), "--to", "label-studio", "--out", str(tmp_path / "t.json")],
                        LEFT_AS_THEY_WERE)]:
        result = audit(*args)
        assert result.returncode == EXIT_INTERRUPTED, (args, result.stderr)
        assert result.stderr.strip() == f"interrupted: {left}", result.stderr
