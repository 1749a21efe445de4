"""The CLI as a whole, through its real entry point: the version, usage lines, and usage or input errors as
one line and exit 2. Each command's own tests are in tests/cli/test_<command>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli.app import app
from tests.cli.conftest import audit_process
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
