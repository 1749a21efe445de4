"""What every command's options share: checked choice options, usage lines as the help writes them, and the
RESULTS argument."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Literal

import pytest
import typer
from typer.testing import CliRunner

from auditor.cli.app import app
from auditor.cli.options import Command, ResultsFolder, choice
from auditor.core.errors import AuditorError
from tests.conftest import run_cli, write_class_folder

audit = run_cli
Colour = Literal["red", "blue"]


def _paint_app() -> typer.Typer:
    """One command with a checked choice option and the RESULTS argument."""
    paint = typer.Typer()

    @paint.command(cls=Command)
    def draw(results: ResultsFolder,
             colour: Annotated[str, choice("--colour", "-c", allowed=Colour, help="Ink.")] = "red") -> None:
        typer.echo(f"{colour} on {results}")

    return paint


def test_a_choice_option_takes_its_values_and_refuses_others_naming_them() -> None:
    runner = CliRunner()
    assert runner.invoke(_paint_app(), ["here", "-c", "blue"]).stdout == "blue on here\n"
    assert runner.invoke(_paint_app(), ["here"]).stdout == "red on here\n"
    refused = runner.invoke(_paint_app(), ["here", "--colour", "green"])
    assert isinstance(refused.exception, AuditorError)  # main() makes it one line and exit 2
    assert str(refused.exception) == "--colour/-c must be one of red, blue; got 'green'"


def test_help_shows_the_choices_and_the_argument_as_written() -> None:
    text = CliRunner().invoke(_paint_app(), ["--help"], terminal_width=200).stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.strip().endswith("[OPTIONS] RESULTS") and "{" not in usage, usage
    assert "red|blue" in text and "Results folder written by `audit scan`." in text


def test_a_bad_choice_is_one_line_naming_the_allowed_values(tmp_path: Path) -> None:
    for args, allowed in [(["report", str(tmp_path), "--format", "pdf"], "terminal, markdown, html"),
                          (["gate", str(tmp_path), "-f", "xml"], "text, markdown, json"),
                          (["export", str(tmp_path), "--to", "cvat"], "label-studio, fiftyone")]:
        result = audit(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and allowed in lines[0] and lines[0].startswith("error:"), result.stderr


# What each command taking RESULTS needs besides it.
REQUIRED = {"gate": [], "report": [], "review": ["--accept"], "fix": ["--out", "{tmp}/clean.csv"],
            "export": ["--to", "label-studio", "--out", "{tmp}/tasks.json"]}


def test_every_command_but_scan_takes_results_as_its_argument() -> None:
    takes = {command.name for command in app.registered_commands
             if command.callback is not None
             and inspect.signature(command.callback, eval_str=True).parameters.get("results") is not None
             and inspect.signature(command.callback, eval_str=True).parameters["results"].annotation
             == ResultsFolder}
    assert takes == set(REQUIRED)


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_results_that_are_not_a_results_folder_are_one_line_exit_2(tmp_path: Path, command: str) -> None:
    write_class_folder(tmp_path / "data", per_class=1)
    extra = [arg.format(tmp=tmp_path) for arg in REQUIRED[command]]
    for folder, message in [(tmp_path / "data", f"{tmp_path / 'data'} is not a complete auditor results folder "
                                                "(no run.json)"),
                            (tmp_path / "nowhere", f"results folder not found: {tmp_path / 'nowhere'}")]:
        result = audit(command, str(folder), *extra)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == f"error: {message}\n", (command, result.stderr)
    missing = audit(command)
    assert missing.returncode == 2 and missing.stderr.startswith("error: Missing argument 'RESULTS'.")
    assert not list(tmp_path.glob("clean*")) and not list(tmp_path.glob("tasks*"))


def test_a_choice_takes_only_its_values_and_the_help_lists_them() -> None:
    app = typer.Typer()

    @app.command(cls=Command)
    def pick(colour: str = choice("--colour", allowed=Literal["red", "blue"], help="A colour.")) -> None:
        typer.echo(f"picked {colour}")

    runner = CliRunner()
    assert runner.invoke(app, ["--colour", "blue"]).output == "picked blue\n"
    assert "red|blue" in runner.invoke(app, ["--help"]).output
    refused = runner.invoke(app, ["--colour", "green"]).exception  # main turns it into one line, exit 2
    assert isinstance(refused, AuditorError) and str(refused) == "--colour must be one of red, blue; got 'green'"


def test_help_shows_no_type_for_a_flag() -> None:
    """A flag takes no value: ``<bool>`` beside it read as one to type."""
    for args in (["--help"], ["scan", "--help"], ["report", "--help"]):
        text = CliRunner().invoke(app, args, terminal_width=120).stdout
        assert "<bool>" not in text, text
    scan = CliRunner().invoke(app, ["scan", "--help"], terminal_width=120).stdout
    no_cache = next(line for line in scan.splitlines() if "--no-cache" in line)
    assert "Neither read nor write" in no_cache and "<" not in no_cache
    assert "<path>" in next(line for line in scan.splitlines() if "--out" in line)  # options with values keep theirs
