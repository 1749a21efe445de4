"""What every command's options share: usage lines as the help writes them, and checked choice options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from typer.core import TyperCommand

from auditor.core.errors import AuditorError


class Command(TyperCommand):
    """Usage lines write a required argument as its help does (``DATASET``): typer wraps it in braces
    (``{DATASET}``), which reads as a placeholder to fill in or a set to choose from."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # Any: click's Context, or typer's own copy of click
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


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
