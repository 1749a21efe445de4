"""Library warnings raised during a scan are collected, kept off stderr, and summarised one line per kind."""

from __future__ import annotations

import warnings

import pytest

from auditor.core import library_warnings


def _warn_from(filename: str, message: str, category: type[Warning] = UserWarning) -> None:
    warnings.warn_explicit(message, category, filename, lineno=1)


def test_repeated_warnings_of_one_kind_become_one_line_with_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with library_warnings.collected() as noise:
        for size in (1, 2, 3):
            _warn_from("/venv/lib/python3.11/site-packages/cleanlab/filter.py", f"class {size} has {size} example")
        _warn_from("/venv/lib/python3.11/site-packages/sklearn/utils/validation.py", "feature names\n  differ",
                   FutureWarning)
    assert noise.summary() == [
        "cleanlab UserWarning (3 times, e.g.): class 1 has 1 example",
        "sklearn FutureWarning: feature names differ",
    ]
    assert capsys.readouterr().err == ""


def test_a_warning_outside_site_packages_is_named_by_its_file() -> None:
    with library_warnings.collected() as noise:
        _warn_from("/opt/tools/helper.py", "odd value", RuntimeWarning)
    assert noise.summary() == ["helper RuntimeWarning: odd value"]


def test_warnings_outside_the_block_are_not_collected() -> None:
    with library_warnings.collected() as noise:
        pass
    with pytest.warns(UserWarning):
        warnings.warn("after the block", UserWarning, stacklevel=1)
    assert noise.summary() == []
