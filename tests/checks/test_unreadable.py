"""The unreadable check: one error finding per file the read stage could not decode, with the reader's reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from auditor.checks.base import CheckContext, NoParams
from auditor.checks.unreadable import UnreadableCheck
from auditor.ingest.images import read_image
from auditor.results.findings import Severity
from tests.conftest import draw_shape, synthetic_context

_MAX_PIXELS = 50_000_000
_MAX_FILE_BYTES = 100_000_000


def _context_over(root: Path, files: dict[str, str | None]) -> CheckContext:
    """A context whose images are ``files`` (path -> label) as the read stage saw them."""
    infos = [read_image(root / path, _MAX_PIXELS, _MAX_FILE_BYTES, root) for path in files]
    rows, next_row = [], 0
    for info in infos:
        rows.append(next_row if info.readable else -1)
        next_row += info.readable
    labels: list[str | None] = list(files.values())
    ctx = synthetic_context(np.eye(max(next_row, 1), 4), labels, paths=list(files), embedding_rows=rows)
    images = ctx.images.assign(
        sha256=[info.sha256 for info in infos],
        readable=[info.readable for info in infos],
        unreadable_reason=[info.reason for info in infos],
        size_bytes=pd.array([info.size_bytes for info in infos], dtype="Int64"),
        split=["train"] * len(infos),
    )
    return dataclasses.replace(ctx, images=images)


def test_each_unreadable_file_gets_one_error_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    draw_shape("circle", 1).save(tmp_path / "cat" / "good.png")
    (tmp_path / "cat" / "empty.png").write_bytes(b"")
    (tmp_path / "cat" / "text.jpg").write_text("plain text, not a JPEG\n")
    ctx = _context_over(tmp_path, {"cat/good.png": "cat", "cat/empty.png": "cat", "cat/text.jpg": "cat"})

    result = UnreadableCheck(NoParams()).run(ctx)

    by_path = {finding.path: finding for finding in result.findings}
    assert set(by_path) == {"cat/empty.png", "cat/text.jpg"}
    assert result.summary is not None and result.summary.as_json() == {"count": 2}
    empty, text = by_path["cat/empty.png"], by_path["cat/text.jpg"]
    assert all(f.check == "unreadable" and f.severity is Severity.ERROR and f.score == 1.0 for f in (empty, text))
    assert (empty.label, empty.split) == ("cat", "train")
    assert empty.message == f"unreadable: {empty.details['reason']}" and "empty file" in empty.message
    assert "not an image" in text.details["reason"]
    assert empty.details["size_bytes"] == 0
    assert text.details["size_bytes"] == len("plain text, not a JPEG\n")
    assert isinstance(text.details["size_bytes"], int)  # a plain int, so details serialise as JSON
    assert text.sha256 == ctx.images.set_index("path").at["cat/text.jpg", "sha256"]


def test_a_dataset_of_readable_files_has_no_finding(tmp_path: Path) -> None:
    (tmp_path / "dog").mkdir()
    for i in range(3):
        draw_shape("square", i).save(tmp_path / "dog" / f"{i}.png")
    ctx = _context_over(tmp_path, {f"dog/{i}.png": "dog" for i in range(3)})
    result = UnreadableCheck(NoParams()).run(ctx)
    assert result.findings == [] and result.summary is not None and result.summary.as_json() == {"count": 0}


def test_unlabelled_unreadable_files_are_reported_without_a_label(tmp_path: Path) -> None:
    draw_shape("triangle", 3).save(tmp_path / "whole.png")
    whole = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "loose.png").write_bytes(whole[: len(whole) // 2])
    ctx = _context_over(tmp_path, {"loose.png": None})
    [finding] = UnreadableCheck(NoParams()).run(ctx).findings
    assert finding.path == "loose.png" and finding.label is None
    assert finding.message == f"unreadable: {finding.details['reason']}" and "truncated" in finding.message
