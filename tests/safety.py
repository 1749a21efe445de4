"""Assertions that data text reached an output as text, never as markup (shared by hostile and fuzz tests)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# The tags our own Markdown uses; any other tag in a Markdown output came from data.
MARKDOWN_TAGS = {"details", "summary", "b"}
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_no_control_characters(text: str) -> None:
    found = _CONTROL.findall(text)
    assert not found, f"raw control characters in output: {found!r}"


def _tags(text: str) -> set[str]:
    """Tag names a browser (or GitHub's sanitiser) would see, backslash-escaped ``\\<`` excepted."""
    unescaped = re.sub(r"\\<", "", text)
    return {m.lower() for m in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)", unescaped)}


# A code span: a run of backticks, its content, the same run again (content shows literally).
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def assert_markdown_safe(text: str) -> None:
    """No HTML, links, images, mentions or broken tables can come from data in GitHub Markdown."""
    assert_no_control_characters(text)
    prose = _CODE_SPAN.sub("CODE", text)
    assert _tags(prose) <= MARKDOWN_TAGS, _tags(prose) - MARKDOWN_TAGS
    assert not re.search(r"(?<!\\)!(?<!\\)\[[^\]]*(?<!\\)\]\(", prose), "an image or link from data"
    assert not re.search(r"(?<![\w\\])@[A-Za-z0-9]", prose), "an @mention from data"
    assert not re.search(r"https?://|www\.", prose, re.I), "an autolink from data"
    lines = text.split("\n")
    table: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            widths = {len(_UNESCAPED_PIPE.findall(row)) for row in table}
            assert len(widths) == 1, f"a table row broken by data: {table}"
            table = []


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers.update(name for name, _ in attrs if name.startswith("on"))


def assert_html_safe(text: str, payload_tags: set[str]) -> None:
    """Tags planted in data (e.g. ``img`` with ``onerror``) never appear as tags or event handlers."""
    parser = _Collector()
    parser.feed(text)
    assert not parser.handlers, parser.handlers
    assert not (parser.tags & payload_tags), parser.tags & payload_tags
