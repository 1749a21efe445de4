"""Small embedded thumbnails for the HTML report, within a total byte budget.

The report must stay one shareable file of bounded size however many findings it lists, so every
thumbnail is a small WebP data URI and the budget counts each use: once it is spent, later images get
a text placeholder instead (findings are rendered best-scored first, so the budget goes to them).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from auditor.ingest.images import FileRefused, ImageDecodeError, open_checked, open_rgb

THUMB_PX = 112
# Largest encoded thumbnail kept; a noisy image is re-encoded smaller until it fits, else left out.
MAX_THUMB_BYTES = 10_000
# All thumbnail data in one report (bytes of data URIs); keeps a 10,000-finding report under 30 MB.
TOTAL_THUMB_BYTES = 18_000_000
_ATTEMPTS = ((THUMB_PX, 60), (THUMB_PX, 35), (72, 35))


class Thumbnailer:
    """Data URIs for dataset images, decoded once per path, charged to the budget on every use."""

    def __init__(
        self,
        root: Path | None,
        readable: dict[str, bool],
        max_pixels: int,
        budget_bytes: int = TOTAL_THUMB_BYTES,
    ) -> None:
        self.root = root.resolve() if root is not None else None
        self.readable = readable
        self.max_pixels = max_pixels
        self.budget = budget_bytes
        self.used = 0
        self.omitted = 0
        self._cache: dict[str, str | None] = {}

    def restart(self, budget_bytes: int) -> None:
        """A fresh budget for a second rendering pass; encoded thumbnails are kept."""
        self.budget, self.used, self.omitted = budget_bytes, 0, 0

    def uri(self, path: str | None) -> str | None:
        """The thumbnail for a dataset-relative path, or None (unreadable, missing, or over budget)."""
        if path is None or self.root is None or not self.readable.get(path, False):
            return None
        if path not in self._cache:
            self._cache[path] = self._encode(self.root, path)
        uri = self._cache[path]
        if uri is None:
            return None
        if self.used + len(uri) > self.budget:
            self.omitted += 1
            return None
        self.used += len(uri)
        return uri

    def _encode(self, root: Path, path: str) -> str | None:
        # A results folder is input too: a path must not lead the report to embed a file outside the
        # dataset, so the opened file itself is checked (a name could be swapped for a link meanwhile).
        try:
            with open_checked(root / path, root) as handle:
                image, _, _ = open_rgb(handle, self.max_pixels, draft_size=(THUMB_PX * 2, THUMB_PX * 2))
        except (ImageDecodeError, FileRefused, OSError):
            return None
        for size, quality in _ATTEMPTS:
            small = image.copy()
            small.thumbnail((size, size))
            buffer = io.BytesIO()
            small.save(buffer, format="WEBP", quality=quality, method=4)
            if buffer.tell() <= MAX_THUMB_BYTES:
                return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return None
