from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from platformdirs import user_cache_dir

from auditor.embed.cache import EmbeddingCache, default_cache_dir


def test_hit_miss_and_encoder_isolation(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vector = np.arange(4, dtype=np.float32)
    cache.put_many({"aa": vector}, "enc:1")
    assert set(cache.get_many(["aa", "bb"], "enc:1", 4)) == {"aa"}
    np.testing.assert_array_equal(cache.get_many(["aa"], "enc:1", 4)["aa"], vector)
    assert cache.get_many(["aa"], "enc:2", 4) == {}
    # A row of the wrong dimension is a miss, not a crash.
    assert cache.get_many(["aa"], "enc:1", 8) == {}
    cache.close()
    reopened = EmbeddingCache(tmp_path)
    assert set(reopened.get_many(["aa"], "enc:1", 4)) == {"aa"}
    assert reopened.rebuilt_reason is None


def test_corrupt_cache_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({"aa": np.ones(4, np.float32)}, "enc:1")
    cache.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
    cache.path.write_bytes(b"this is not a sqlite database" * 100)
    rebuilt = EmbeddingCache(tmp_path)
    assert rebuilt.rebuilt_reason is not None and "corrupt" in rebuilt.rebuilt_reason
    assert rebuilt.get_many(["aa"], "enc:1", 4) == {}
    rebuilt.put_many({"aa": np.ones(4, np.float32)}, "enc:1")
    assert set(rebuilt.get_many(["aa"], "enc:1", 4)) == {"aa"}
    assert any(".corrupt-" in p.name for p in tmp_path.iterdir())


def test_the_default_folder_is_the_platforms_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "auditor" if sys.platform.startswith("linux") else Path(user_cache_dir("auditor"))
    assert default_cache_dir() == expected
    monkeypatch.setenv("AUDITOR_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
