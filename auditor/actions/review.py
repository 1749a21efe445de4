"""``audit review``: turn a look at a finding into a decision in the decisions file.

The file is shared and hand-edited, so writing never rewrites it: new decisions are appended (the last
one for a finding wins), the whole text is validated, then swapped in atomically.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from datetime import date
from pathlib import Path

from PIL import Image

from auditor.core.errors import AuditorError
from auditor.ingest.images import ImageDecodeError, open_rgb
from auditor.results.decisions import (
    PAIR_KINDS,
    Decision,
    appended_text,
    default_decisions_path,
    load_decisions,
    match,
    now_utc,
    parse_decisions,
)
from auditor.results.findings import Finding
from auditor.results.outputs import atomic_write
from auditor.results.reading import Results, sha_by_path


def decisions_path(results: Results, given: Path | None) -> Path:
    """``given``, else the file the scan read (run.json), else audit-decisions.toml beside the dataset."""
    if given is not None:
        return given
    recorded = (results.run.get("decisions") or {}).get("file")
    if recorded:
        return Path(recorded)
    root = (results.run.get("dataset") or {}).get("root")
    if not root:
        raise AuditorError("run.json names no dataset folder; pass --decisions FILE")
    return default_decisions_path(Path(root))


def default_who() -> str:
    """git's user.name (what a reviewer's commits say), else the login name."""
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or os.environ.get("USER") or getpass.getuser()


def find_finding(results: Results, check: str, path: str) -> Finding:
    for finding in results.finding_objects():
        if finding.check == check and finding.path == path:
            return finding
    kinds = sorted({f.check for f in results.finding_objects() if f.path == path})
    also = f" (it has: {', '.join(kinds)})" if kinds else ""
    raise AuditorError(f"no `{check}` finding for {path} in {results.directory}{also}")


def make_decision(
    finding: Finding,
    results: Results,
    action: str,
    reason: str,
    who: str,
    expires: date | None = None,
    new_label: str | None = None,
) -> Decision:
    """A decision keyed by the finding's content (and its partner's, for pairs) and its current label."""
    if finding.sha256 is None:
        raise AuditorError(f"{finding.path} has no content hash (unreadable before hashing); it cannot be "
                           "accepted by content")
    if action == "relabel":
        new_label = new_label or finding.suggested_label
        if not new_label:
            raise AuditorError(f"`{finding.check}` for {finding.path} suggests no label; pass --label")
    other = None
    if finding.check in PAIR_KINDS and finding.other_path:
        other = sha_by_path(results.images).get(finding.other_path)
    return Decision.model_validate({
        "action": action, "check": finding.check, "sha256": finding.sha256, "other_sha256": other,
        "label": finding.label, "new_label": new_label if action == "relabel" else None,
        "path": finding.path, "reason": reason, "who": who, "when": now_utc(), "expires": expires,
    })


def write_decisions(path: Path, decisions: list[Decision]) -> None:
    """Append ``decisions`` to ``path`` atomically, keeping its comments and entries; refuses a file that
    does not validate before (so a broken hand edit is reported, not buried under new entries)."""
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    if existing:
        load_decisions(path)
    text = appended_text(existing, decisions)
    parse_decisions(text, path)  # what is written must load: checked before it replaces the file
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def existing_decisions(path: Path) -> list[Decision]:
    return load_decisions(path) if path.is_file() else []


def review_queue(results: Results, checks: tuple[str, ...], decided: list[Decision], top: int | None) -> list[Finding]:
    """Image findings nobody decided on yet: kinds in report order, strongest evidence first."""
    kinds = results.kinds()
    shas = sha_by_path(results.images)
    queue = [
        f for f in results.finding_objects()
        if f.path is not None and f.sha256 is not None and not f.waived
        and (not checks or f.check in checks) and match(f, decided, shas) is None
    ]
    queue.sort(key=lambda f: (kinds[f.check].order if f.check in kinds else 1000, f.check, -f.score, f.path or ""))
    return queue if top is None else queue[:top]


REVIEW_THUMB_PX = 256
THUMBNAIL_FOLDER = "review-thumbnails"


def review_thumbnail(results: Results, finding: Finding, root: Path, max_pixels: int) -> Path | None:
    """A PNG beside the results showing the image (and its partner, side by side, for pairs) to open while
    reviewing; None when neither decodes. Paths leading outside the dataset are never read."""
    tiles = []
    for path in (finding.path, finding.other_path):
        if path is None:
            continue
        file = (root / path).resolve()
        if not file.is_relative_to(root.resolve()) or not file.is_file():
            continue
        try:
            image, _, _ = open_rgb(file, max_pixels, draft_size=(REVIEW_THUMB_PX * 2, REVIEW_THUMB_PX * 2))
        except ImageDecodeError:
            continue
        image.thumbnail((REVIEW_THUMB_PX, REVIEW_THUMB_PX))
        tiles.append(image)
    if not tiles:
        return None
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)),
                      (255, 255, 255))
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 8
    name = f"{finding.check}-{(finding.sha256 or 'none')[:16]}.png"
    target = results.directory / THUMBNAIL_FOLDER / name
    atomic_write(target, lambda tmp: sheet.save(tmp, format="PNG"))
    return target
