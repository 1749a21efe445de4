"""Data text reaches terminals and GitHub Markdown as text: control characters shown, markup escaped."""

from __future__ import annotations

from auditor.report.safe import gfm, gfm_code, gfm_html, gfm_quoted, one_line, rich_text, visible
from tests.safety import assert_markdown_safe

HOSTILE = "x\x1b[31m <img src=x> [a](http://e.com) @team #12 *b* |c| __d__ `e`\nnext"


def test_visible_shows_control_characters_as_escapes() -> None:
    assert visible("a\x1b[2Jb\tc\nd\u202e") == "a\\x1b[2Jb\\tc\\nd\\u202e"
    assert visible(3) == "3"


def test_one_line_joins_the_lines_of_a_message() -> None:
    assert one_line("first failure\n\n  second\x07 \n") == "first failure; second\\x07"


def test_rich_text_is_never_parsed_as_markup() -> None:
    text = rich_text("[bold]cat[/] \x1b", style="red")
    assert text.plain == "[bold]cat[/] \\x1b" and str(text.style) == "red" and text.spans == []


def test_gfm_escapes_markup_and_breaks_links_and_mentions() -> None:
    assert gfm("a*b*[c](d) <e> f|g") == "a\\*b\\*\\[c\\](d) \\<e\\> f\\|g"
    assert gfm("snake_case _em_") == "snake_case \\_em\\_"
    assert gfm("@team") == "@\u200bteam" and gfm("http://x") == "http:\u200b//x"
    assert gfm("- list") == "\\- list" and gfm("1. item") == "1\\. item"
    assert gfm("line\nbreak\ttab") == "line break tab"
    assert gfm("abcdefgh", limit=5) == "abcd…"
    assert_markdown_safe(gfm(HOSTILE))


def test_gfm_code_fences_longer_than_any_backtick_run_inside() -> None:
    assert gfm_code("plain") == "`plain`"
    assert gfm_code("a`b``c") == "```a`b``c```"
    assert gfm_code("`edge") == "`` `edge ``"
    assert gfm_code("a|b") == "`a\\|b`"
    assert gfm_code("") == ""


def test_gfm_quoted_turns_quoted_names_into_code_spans() -> None:
    assert gfm_quoted("class `c*t` is *starved*") == "class `c*t` is \\*starved\\*"
    assert_markdown_safe(gfm_quoted(f"class `{HOSTILE}` and {HOSTILE}"))


def test_gfm_html_escapes_for_html_blocks() -> None:
    assert gfm_html('<b>"x"</b> & @y') == "&lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; @\u200by"


def test_bytes_of_a_non_utf8_name_show_as_escapes_that_encode() -> None:
    from auditor.report.safe import encodable

    name = b"ds\xff/a.png".decode("utf-8", "surrogateescape")
    for shown in (encodable(name), visible(name)):
        assert shown == "ds\\xff/a.png"
        shown.encode("utf-8")
    assert gfm(name) == "ds\\\\xff/a.png"  # the backslash escaped, so GitHub shows \xff
