"""MkDocs hook: a line `<!-- config: SECTION -->` becomes that section of configs/default.toml as a TOML block.

The pages show each setting as the file that mirrors the built-in defaults states it, so they cannot drift from
it; a section that no longer exists fails the build instead of leaving a stale copy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"^<!-- config: ([\w.]+) -->$", re.MULTILINE)
_HEADER = re.compile(r"^\[([\w.]+)\]\s*$")


def _sections(toml_text: str) -> dict[str, str]:
    """Each `[section]` of the file, from its header to the next header, trailing blank lines dropped."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in toml_text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = sections.setdefault(header.group(1), [])
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines).rstrip() for name, lines in sections.items()}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 (MkDocs' signature)
    defaults = Path(config["config_file_path"]).parent / "configs" / "default.toml"
    sections = _sections(defaults.read_text(encoding="utf-8"))

    def block(marker: re.Match[str]) -> str:
        name = marker.group(1)
        if name not in sections:
            raise ValueError(f"{page.file.src_path}: configs/default.toml has no section [{name}]")
        return f"```toml\n{sections[name]}\n```"

    return _MARKER.sub(block, markdown)
