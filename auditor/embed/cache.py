"""On-disk embedding cache keyed by content hash + encoder identity (which names the preprocessing).

SQLite gives us atomic commits per batch (an interrupted scan keeps what it embedded and the next run
resumes) and safe sharing between concurrent scans (WAL + busy timeout). A cache that fails its
integrity check (or holds some other table under our name) is moved aside and rebuilt: losing a cache
costs time, never correctness. A cache that cannot be written (read-only folder, full disk) is an
``OutputError`` naming the cache path: the user chooses ``--cache-dir`` or ``--no-cache``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from auditor.core.errors import OutputError

CACHE_FORMAT = 1
_FILE_NAME = f"embeddings-v{CACHE_FORMAT}.sqlite"
_COLUMNS = ["sha256", "encoder", "dim", "vector", "created"]
_ADVICE = "pass --cache-dir DIR for another cache folder, or --no-cache"


def default_cache_dir() -> Path:
    """The cache folder when the config names none: ``$AUDITOR_CACHE_DIR``, else the platform's user cache
    folder for auditor (``$XDG_CACHE_HOME/auditor`` on Linux, ``~/.cache/auditor`` when that is unset;
    ``~/Library/Caches/auditor`` on macOS; under ``%LOCALAPPDATA%`` on Windows)."""
    override = os.environ.get("AUDITOR_CACHE_DIR")
    if override:
        return Path(override)
    return Path(user_cache_dir("auditor"))


class EmbeddingCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / _FILE_NAME
        self.rebuilt_reason: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = self._open()
            except sqlite3.OperationalError:
                raise  # read-only, locked, cannot open: not corruption, so nothing is moved aside
            except sqlite3.DatabaseError as exc:
                self.rebuilt_reason = f"cache at {self.path} was corrupt ({exc}); moved aside and rebuilt"
                self._move_aside()
                self._conn = self._open()
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> OutputError:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return OutputError(f"cannot use the embedding cache {self.path}: {problem}; {_ADVICE}")

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check said {row}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " sha256 TEXT NOT NULL, encoder TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
                " created REAL NOT NULL, PRIMARY KEY (sha256, encoder)) WITHOUT ROWID"
            )
            columns = [row[1] for row in conn.execute("PRAGMA table_info(embeddings)")]
            if columns != _COLUMNS:
                raise sqlite3.DatabaseError(f"its embeddings table has columns {columns}, not auditor's")
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                os.replace(candidate, candidate.with_name(f"{candidate.name}.corrupt-{stamp}-{os.getpid()}"))

    def get_many(self, hashes: Iterable[str], encoder: str, dim: int) -> dict[str, np.ndarray]:
        """Cached vectors for ``hashes``; rows of the wrong size are ignored (and later overwritten)."""
        try:
            return self._get_many(list(dict.fromkeys(hashes)), encoder, dim)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _get_many(self, wanted: list[str], encoder: str, dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT sha256, dim, vector FROM embeddings WHERE encoder = ? AND sha256 IN ({marks})",
                [encoder, *chunk],
            ).fetchall()
            for sha, row_dim, blob in rows:
                if row_dim == dim and len(blob) == dim * 4:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if np.isfinite(vector).all():
                        found[sha] = vector
        return found

    def put_many(self, items: dict[str, np.ndarray], encoder: str) -> None:
        """Store one batch in a single transaction, so a kill leaves whole batches or nothing."""
        now = time.time()
        rows = [
            (sha, encoder, int(vec.shape[0]), np.ascontiguousarray(vec, dtype=np.float32).tobytes(), now)
            for sha, vec in items.items()
        ]
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self._conn.close()
