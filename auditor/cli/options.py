"""What every command's options share: usage lines as the help writes them, and checked choice options."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from auditor.core.errors import AuditorError


def _flags_untyped(params: list[Any]) -> list[Any]:
    """A flag takes no value, so its help shows no type: typer would show ``<bool>``, which reads as a value
    to type after it. An empty metavar is what typer shows instead."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """Usage lines write a required argument as its help does (``DATASET``): typer wraps it in braces
    (``{DATASET}``), which reads as a placeholder to fill in or a set to choose from. Flags show no type."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # Any: click's Context, or typer's own copy of click
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


class Group(TyperGroup):
    """The ``audit`` group: its flags (``--version``, ``--help``) show no type either."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


def _one_of(allowed: tuple[str, ...]) -> Callable[[typer.CallbackParam, str | None], str | None]:
    """Check a choice option here: a wrong value is then the one-line usage error (exit 2) every other bad input
    gets, where typer's own check of a Literal option prints a six-line box."""

    def check(param: typer.CallbackParam, value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise AuditorError(f"{'/'.join(param.opts)} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    return check


def choice(*declarations: str, allowed: Any, help: str) -> Any:
    """A typer option taking one of the values of the Literal ``allowed`` (shown in --help, completed by the shell)."""
    values: tuple[str, ...] = get_args(allowed)
    return typer.Option(*declarations, help=help, metavar="|".join(values), callback=_one_of(values),
                        autocompletion=lambda: list(values))


# The argument of every command but scan.
ResultsFolder = Annotated[Path, typer.Argument(metavar="RESULTS", help="Results folder written by `audit scan`.")]


# The width a report is written for when neither a terminal nor $COLUMNS gives one (a file, a CI log).
FILE_WIDTH = 120


def output_width(console: Console) -> int:
    """The width to write text for: the terminal's, or ``$COLUMNS`` when piped (``COLUMNS=80 audit report R > f``),
    else ``FILE_WIDTH``."""
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console.width
    return FILE_WIDTH
