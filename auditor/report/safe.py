"""Data text is never markup: the one place that neutralises it for terminals and GitHub Markdown.

Labels, splits, paths and messages come from the dataset (folder and file names, manifests) and from
results folders, which are input too. Every renderer passes each data string through these functions:
``visible`` for terminals and logs (control characters shown as escapes, so an ESC sequence cannot
recolour or retitle the terminal), ``rich_text`` for Rich (no markup parsing at all), ``gfm`` and
``gfm_code`` for GitHub-flavoured Markdown (no HTML, links, images, headings, mentions or table breaks),
``gfm_html`` for data inside the HTML blocks of a Markdown page (``<details><summary>``).
HTML needs nothing here: Jinja autoescapes every value.
"""

from __future__ import annotations

import html
import re

from rich.text import Text

# C0 and C1 control characters, DEL, and the bidirectional overrides that reorder displayed text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Lone surrogates: Python decodes the bytes of a non-UTF-8 file name as U+DC80..U+DCFF (surrogateescape);
# no UTF-8 stream can carry them, so every rendering shows them as the bytes they stand for.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Any ASCII punctuation may be backslash-escaped in CommonMark and then renders as itself. These can
# start inline markup anywhere in a line: escapes, code, emphasis, links and images, HTML and
# autolinks, table cells, strikethrough, headings and references, math, entities. (Block markup such
# as lists needs a line start, and data never starts a line.) Underscores are handled apart.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~#$&!])")
_UNDERSCORES = re.compile(r"_+")
# What makes a list item, a setext underline or an ordered item when it opens a line (a quote line).
_LINE_START = re.compile(r"^([-+=]|\d+[.)])")
# GitHub links bare URLs, www. names, e-mail addresses, @mentions and #references in plain text; a
# zero-width space after the trigger breaks each without changing what a reader sees.
_LINKERS = re.compile(r"(://|www\.|@|#(?=\w))", re.IGNORECASE)
_ZWSP = "\u200b"


def encodable(text: object) -> str:
    """``text`` with lone surrogates shown as escapes (``\\xff`` for a file name's byte 0xFF), so that it can
    be written as UTF-8: a dataset under a non-UTF-8 folder name renders instead of failing to encode."""

    def shown(match: re.Match[str]) -> str:
        point = ord(match.group())
        return f"\\x{point - 0xDC00:02x}" if 0xDC80 <= point <= 0xDCFF else f"\\u{point:04x}"

    return _SURROGATE.sub(shown, str(text))


def visible(text: object) -> str:
    """``text`` with control characters (and lone surrogates) shown as escapes (``\\x1b``, ``\\n``), for
    terminals and logs."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), m.group().encode("unicode_escape").decode()),
                        encodable(text))


def one_line(text: object) -> str:
    """Like ``visible``, but newlines of a multi-line message become "; " (one line per failure)."""
    return visible("; ".join(part.strip() for part in str(text).splitlines() if part.strip()))


def rich_text(text: object, style: str = "") -> Text:
    """A Rich ``Text``: printed as is, never parsed as markup (a ``[/]`` in a name cannot crash)."""
    return Text(visible(text), style=style)


def _flat(text: object, limit: int | None) -> str:
    flat = " ".join(_CONTROL.sub(" ", encodable(text)).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat


def _unlinked(text: str) -> str:
    return _LINKERS.sub(lambda m: m.group()[0] + _ZWSP + m.group()[1:], text)


def gfm_html(text: object, limit: int | None = None) -> str:
    """Data text inside an HTML block (``<summary>``), where GitHub reads HTML, not Markdown escapes."""
    return html.escape(_unlinked(_flat(text, limit)), quote=True)


def gfm(text: object, limit: int | None = None) -> str:
    """Plain text for GitHub-flavoured Markdown, safe in a table cell, a heading or a paragraph.

    One line (control characters and newlines become spaces), at most ``limit`` characters.
    """
    return _escape_flat(_flat(text, limit))


def _escape_flat(flat: str) -> str:
    escaped = _escape_underscores(_MD_SPECIAL.sub(r"\\\1", _unlinked(flat)))
    return _LINE_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], escaped)


def _escape_underscores(text: str) -> str:
    """Escape ``_`` runs that could open or close emphasis; inside a word (snake_case) they cannot."""

    def escape(match: re.Match[str]) -> str:
        start, end = match.span()
        inside = 0 < start and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
        return match.group() if inside else match.group().replace("_", "\\_")

    return _UNDERSCORES.sub(escape, text)


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


def gfm_quoted(text: object, limit: int | None = None) -> str:
    """``gfm`` for our own sentences that quote names in backticks: each quoted name becomes a code span.

    Every piece is neutralised, so a backtick inside a name only moves where code spans begin.
    """
    pieces = re.split(r"`([^`]*)`", _flat(text, limit))
    return "".join(gfm_code(piece) if n % 2 else _escape_flat(piece) for n, piece in enumerate(pieces))
