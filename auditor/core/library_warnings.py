"""Warnings that libraries (cleanlab, torch, sklearn) raise during a scan, collected and summarised.

cleanlab alone warns once per small class: 600 lines on stderr for 300 one-image classes, even with
``--quiet``, burying the one line that matters. The scan records every warning instead and reports
each kind once, with a count, among its own warnings (run.json, the summary, the reports).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

_NUMBER = re.compile(r"\d+")
# How the scan's warnings list marks these lines (``audit scan --quiet`` leaves them out of stderr).
PREFIX = "library warning: "


class Collected:
    """The warnings recorded so far; ``summary`` gives one line per kind."""

    def __init__(self, records: list[warnings.WarningMessage]) -> None:
        self.records = records

    def summary(self) -> list[str]:
        kinds: Counter[tuple[str, str, str]] = Counter()
        example: dict[tuple[str, str, str], str] = {}
        for record in self.records:
            text = " ".join(str(record.message).split())
            key = (_library(record.filename), record.category.__name__, _NUMBER.sub("N", text))
            kinds[key] += 1
            example.setdefault(key, text)
        lines = []
        for key, count in kinds.most_common():
            library, category, _ = key
            times = f" ({count} times, e.g.)" if count > 1 else ""
            lines.append(f"{library} {category}{times}: {example[key]}")
        return lines


def _library(filename: str) -> str:
    """The top-level package a warning came from (site-packages/cleanlab/filter.py -> cleanlab)."""
    parts = PurePath(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return PurePath(parts[parts.index(marker) + 1]).stem
    return PurePath(filename).stem or "python"


@contextmanager
def collected() -> Iterator[Collected]:
    """Record every warning raised inside the block (none reaches stderr)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield Collected(records)
