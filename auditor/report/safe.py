"""Data text is never markup: the one place that neutralises it for terminals and GitHub Markdown.

Labels, splits, paths and messages come from the dataset (folder and file names, manifests) and from
results folders, which are input too. Every renderer passes each data string through these functions:
``visible`` for terminals and logs (control characters shown as escapes, so an ESC sequence cannot
recolour or retitle the terminal), ``rich_text`` for Rich (no markup parsing at all), ``gfm`` and
``gfm_code`` for GitHub-flavoured Markdown (no HTML, links, images, headings, mentions or table breaks).
HTML needs nothing here: Jinja autoescapes every value.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 control characters, DEL, and the bidirectional overrides that reorder displayed text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Every ASCII punctuation character may be backslash-escaped in CommonMark and then renders as itself,
# so escaping all that can start markup is always safe: emphasis, links, images, HTML, headings,
# lists, quotes, tables, code, entities, strikethrough, math.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&$^=:\"'])")
# GitHub links bare URLs, www. names, e-mail addresses, @mentions and #references in plain text; a
# zero-width space after the trigger breaks each without changing what a reader sees.
_LINKERS = re.compile(r"(://|(?<![\w])www\.|@|#(?=\w))", re.IGNORECASE)
_ZWSP = "\u200b"


def visible(text: object) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``), for terminals and logs."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), m.group().encode("unicode_escape").decode()), str(text))


def one_line(text: object) -> str:
    """Like ``visible``, but newlines of a multi-line message become "; " (one line per failure)."""
    return visible("; ".join(part.strip() for part in str(text).splitlines() if part.strip()))


def rich_text(text: object, style: str = "") -> Text:
    """A Rich ``Text``: printed as is, never parsed as markup (a ``[/]`` in a name cannot crash)."""
    return Text(visible(text), style=style)


def _flat(text: object, limit: int | None) -> str:
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat


def gfm(text: object, limit: int | None = None) -> str:
    """Plain text for GitHub-flavoured Markdown, safe in a table cell, a heading or a paragraph.

    One line (control characters and newlines become spaces), at most ``limit`` characters.
    """
    unlinked = _LINKERS.sub(lambda m: m.group()[0] + _ZWSP + m.group()[1:], _flat(text, limit))
    return _MD_SPECIAL.sub(r"\\\1", unlinked)


def gfm_code(text: object, limit: int | None = None) -> str:
    """A code span for a table cell: a backtick fence longer than any run of backticks inside it."""
    flat = _flat(text, limit)
    if not flat:
        return ""
    # In a table GitHub reads \\| as a pipe inside the cell, code spans included.
    flat = flat.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"
