"""The options every command shares: a choice option checks its value itself, as one usage error."""

from __future__ import annotations

from typing import Literal

import typer
from typer.testing import CliRunner

from auditor.cli.options import Command, choice
from auditor.core.errors import AuditorError


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
