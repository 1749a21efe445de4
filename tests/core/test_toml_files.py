"""Reading a TOML file the user named: every way it can be unusable is one ConfigError line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.core.errors import ConfigError
from auditor.core.toml_files import read_toml


def test_a_valid_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[scan]\nchecks = ["unreadable"]\n', encoding="utf-8")
    assert read_toml(path, "config file") == {"scan": {"checks": ["unreadable"]}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "config file not found: {path}"),
        ("folder", "config file {path} is a folder; give a file"),
        (b"a = '\xff'\n", "config file {path} is not valid TOML: 'utf-8' codec can't decode"),
        ("a = [\n", "config file {path} is not valid TOML: "),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n",
         "config file {path} is not valid TOML: arrays or tables nested too deeply"),
        ("a = " + "9" * 5001 + "\n",
         "config file {path} is not valid TOML: Exceeds the limit (4300 digits) for integer string conversion"),
    ],
    ids=["missing", "folder", "not-utf8", "syntax", "nested-100k-deep", "5001-digit-integer"],
)
def test_an_unusable_file_is_one_line_naming_it(tmp_path: Path, content: str | bytes | None, expected: str) -> None:
    path = tmp_path / "odd.toml"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        read_toml(path, "config file")
    message = str(error.value)
    assert message.startswith(expected.format(path=path)) and "\n" not in message, message
    assert "set_int_max_str_digits" not in message
