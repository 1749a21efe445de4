"""Reading a TOML file the user named (a config, a decisions file): every way it can be unusable is one line.

A folder given for a file, a file that is not UTF-8, nesting deeper than the parser's recursion allows and an
integer longer than Python converts are input errors (exit 2) like a syntax error, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from auditor.core.errors import ConfigError


def read_text(path: Path, what: str) -> str:
    """The text of ``path`` (``what`` names it in errors, e.g. "config file")."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def parse_toml(text: str, path: Path, what: str) -> dict[str, Any]:
    """``text`` (the contents of ``path``) as TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what} {path} is not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an integer beyond Python's digit limit for int()
        raise ConfigError(f"{what} {path} is not valid TOML: {str(exc).split(';')[0]}") from None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """``path`` read as TOML."""
    return parse_toml(read_text(path, what), path, what)
