"""The duplicates check: a real scan with planted copies, and synthetic contexts for grouping and search."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance

from auditor.checks.base import CheckContext
from auditor.checks.duplicates import DuplicatesCheck, DuplicatesParams
from auditor.config import AuditConfig, EncoderConfig, ScanConfig
from auditor.encoders.base import EncoderInfo
from auditor.findings import Finding
from auditor.scan import run_scan
from auditor.similarity import cosine_pairs, hamming_pairs
from tests.conftest import write_class_folder

SEED = 7
DUPLICATE_KINDS = {"split_leakage", "exact_duplicate", "near_duplicate"}


def groups_of(findings: list[Finding]) -> dict[str, set[frozenset[str]]]:
    """Finding kind -> the groups (sets of paths) it reported."""
    by_group: dict[tuple[str, int], set[str]] = {}
    for finding in findings:
        if finding.check in DUPLICATE_KINDS:
            assert finding.group_id is not None and finding.path is not None
            by_group.setdefault((finding.check, finding.group_id), set()).add(finding.path)
    result: dict[str, set[frozenset[str]]] = {kind: set() for kind in DUPLICATE_KINDS}
    for (kind, _), members in by_group.items():
        result[kind].add(frozenset(members))
    return result


@pytest.fixture(scope="module")
def planted_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Finding], dict]:
    root = tmp_path_factory.mktemp("dup") / "data"
    write_class_folder(root / "train", per_class=8, seed=1)
    write_class_folder(root / "test", per_class=4, seed=2)
    train = root / "train"
    # Exact: a byte copy in the same split.
    shutil.copyfile(train / "circle/circle_000.png", train / "circle/circle_000_copy.png")
    # Near: a JPEG q70 re-encode and a 92% resize of one image, in the same split.
    with Image.open(train / "square/square_001.png") as image:
        image.convert("RGB").save(train / "square/square_001_q70.jpg", quality=70)
        image.resize((59, 59), Image.LANCZOS).save(train / "square/square_001_small.png")
    # Leaks: a byte copy and a brightened re-encode of train images in the test split.
    shutil.copyfile(train / "triangle/triangle_002.png", root / "test/triangle/leaked_copy.png")
    with Image.open(train / "circle/circle_003.png") as image:
        ImageEnhance.Brightness(image.convert("RGB")).enhance(1.1).save(root / "test/circle/leaked.jpg",
                                                                         quality=85)
    # A copy under another label, and unreadable files (two identical truncated ones) that must be ignored.
    shutil.copyfile(train / "square/square_004.png", train / "circle/square_as_circle.png")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    for name in ("broken_a.png", "broken_b.png"):
        (train / "circle" / name).write_bytes(buffer.getvalue()[:40])
    (train / "square/empty.png").write_bytes(b"")
    config = AuditConfig(scan=ScanConfig(workers=0, use_cache=False), encoder=EncoderConfig(name="builtin"))
    result = run_scan(root, config, tmp_path_factory.mktemp("out"))
    return result.findings, result.run["checks"]["duplicates"]


def test_scan_finds_exactly_the_planted_groups(planted_scan: tuple[list[Finding], dict]) -> None:
    findings, summary = planted_scan
    groups = groups_of(findings)
    assert groups["exact_duplicate"] == {
        frozenset({"train/circle/circle_000.png", "train/circle/circle_000_copy.png"}),
        frozenset({"train/square/square_004.png", "train/circle/square_as_circle.png"}),
    }
    assert groups["near_duplicate"] == {
        frozenset({"train/square/square_001.png", "train/square/square_001_q70.jpg",
                   "train/square/square_001_small.png"})
    }
    assert groups["split_leakage"] == {
        frozenset({"train/triangle/triangle_002.png", "test/triangle/leaked_copy.png"}),
        frozenset({"train/circle/circle_003.png", "test/circle/leaked.jpg"}),
    }
    assert summary["groups"] == {"split_leakage": 2, "exact_duplicate": 2, "near_duplicate": 1}
    assert summary["pairs"]["sha256"] == 3
    assert summary["label_conflict_groups"] == 1


def test_every_leaked_member_is_an_error_naming_its_partner(planted_scan: tuple[list[Finding], dict]) -> None:
    findings, _ = planted_scan
    leaks = [f for f in findings if f.check == "split_leakage"]
    assert len(leaks) == 4
    assert all(f.severity == "error" for f in leaks)
    partner = {f.path: f.other_path for f in leaks}
    assert partner["test/circle/leaked.jpg"] == "train/circle/circle_003.png"
    assert partner["train/circle/circle_003.png"] == "test/circle/leaked.jpg"
    brightened = next(f for f in leaks if f.path == "test/circle/leaked.jpg")
    assert brightened.details["splits"] == ["test", "train"]
    assert "perceptual" in brightened.details["methods"] or "semantic" in brightened.details["methods"]
    assert 0.9 < brightened.score < 1.0
    byte_leak = next(f for f in leaks if f.path == "test/triangle/leaked_copy.png")
    assert byte_leak.score == 1.0 and byte_leak.details["methods"] == ["sha256"]


def test_label_conflicts_and_near_scores(planted_scan: tuple[list[Finding], dict]) -> None:
    findings, _ = planted_scan
    conflict = next(f for f in findings if f.path == "train/circle/square_as_circle.png")
    assert conflict.check == "exact_duplicate"
    assert conflict.details["labels"] == ["circle", "square"] and conflict.details["labels_differ"]
    near = [f for f in findings if f.check == "near_duplicate"]
    assert all(f.severity == "warning" and f.details["group_size"] == 3 for f in near)
    # Exact copies outrank re-encodes: a higher score means a more certain duplicate.
    exact = [f for f in findings if f.check == "exact_duplicate"]
    assert min(f.score for f in exact) > max(f.score for f in near)


def test_unreadable_files_are_never_grouped(planted_scan: tuple[list[Finding], dict]) -> None:
    findings, _ = planted_scan
    grouped = {f.path for f in findings if f.check in DUPLICATE_KINDS}
    unreadable = {f.path for f in findings if f.check == "unreadable"}
    assert unreadable == {"train/circle/broken_a.png", "train/circle/broken_b.png", "train/square/empty.png"}
    assert not grouped & unreadable


# ----------------------------------------------------------------------------- synthetic contexts


def make_context(
    vectors: np.ndarray, splits: list[str | None], encoder: str = "precomputed", pretrained: bool = True
) -> CheckContext:
    """One file per vector, distinct contents, no hashes: only the semantic method can pair them."""
    count = len(vectors)
    images = pd.DataFrame(
        {
            "path": [f"img_{i:04d}.png" for i in range(count)],
            "label": ["a"] * count,
            "split": splits,
            "sha256": [f"sha{i}" for i in range(count)],
            "readable": [True] * count,
            "pixel_sha256": [f"px{i}" for i in range(count)],
            "phash": [None] * count,
            "dhash": [None] * count,
            "embedding_row": list(range(count)),
        }
    )
    info = EncoderInfo(encoder, encoder, "test", vectors.shape[1], pretrained)
    return CheckContext(images=images, embeddings=vectors.astype(np.float32), classes=["a"], splits=[],
                        empty_classes={}, encoder=info, config=AuditConfig())


def planted_vectors(count: int, copies: int, dim: int = 48) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((count, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    planted = []
    for n in range(copies):
        source, copy = n, count - copies + n
        vectors[copy] = vectors[source] + rng.standard_normal(dim) * 0.02
        planted.append((source, copy))
    return vectors, planted


def test_faiss_and_exact_paths_give_the_same_groups() -> None:
    vectors, planted = planted_vectors(400, 25)
    ctx = make_context(vectors, [None] * len(vectors))
    exact = DuplicatesCheck(DuplicatesParams()).run(ctx)
    approximate = DuplicatesCheck(DuplicatesParams(exact_max_images=2)).run(ctx)
    assert exact.summary["semantic"]["search"] == "exact"
    assert approximate.summary["semantic"]["search"] == "ivf"
    expected = {frozenset({f"img_{a:04d}.png", f"img_{b:04d}.png"}) for a, b in planted}
    assert groups_of(exact.findings)["near_duplicate"] == expected
    assert groups_of(approximate.findings)["near_duplicate"] == expected


def test_search_functions_agree_on_pairs() -> None:
    vectors, planted = planted_vectors(600, 30)
    exact, how_exact = cosine_pairs(vectors, 0.97, top_k=5, exact_max=10_000, nprobe=8)
    approximate, how_ivf = cosine_pairs(vectors, 0.97, top_k=5, exact_max=10, nprobe=8)
    assert (how_exact, how_ivf) == ("exact", "ivf")
    as_set = lambda p: set(zip(p.left.tolist(), p.right.tolist(), strict=True))  # noqa: E731
    assert as_set(exact) == as_set(approximate) == set(planted)
    rng = np.random.default_rng(SEED)
    codes = rng.integers(0, 256, size=(500, 8), dtype=np.uint8)
    codes[-1] = codes[0] ^ np.array([1, 2, 0, 0, 0, 0, 0, 128], dtype=np.uint8)  # 3 bits apart
    flat = hamming_pairs(codes, 6, top_k=5, exact_max=10_000, nprobe=8)
    ivf = hamming_pairs(codes, 6, top_k=5, exact_max=10, nprobe=64)
    assert as_set(flat) == as_set(ivf) == {(0, 499)}
    assert flat.value.tolist() == [3]


def test_chains_across_splits_flag_every_member() -> None:
    """a ~ b in train, b ~ c with c in test: the whole group is leakage, even a (no direct link to c)."""
    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((30, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    step = rng.standard_normal(32)
    step *= 0.2 / np.linalg.norm(step)
    vectors[1] = vectors[0] + step
    vectors[2] = vectors[0] + 2 * step
    splits: list[str | None] = ["train"] * 30
    splits[2] = "test"
    params = DuplicatesParams(semantic_min_cosine_other=0.98)
    result = DuplicatesCheck(params).run(make_context(vectors, splits))
    leaks = [f for f in result.findings if f.check == "split_leakage"]
    assert {f.path for f in leaks} == {"img_0000.png", "img_0001.png", "img_0002.png"}
    assert {f.other_path for f in leaks if f.path != "img_0001.png"} == {"img_0001.png"}
    assert len({f.group_id for f in leaks}) == 1
    assert result.columns["duplicate_group"].notna().sum() == 3


def test_untrained_clip_skips_the_semantic_method() -> None:
    vectors, _ = planted_vectors(50, 5)
    untrained = make_context(vectors, [None] * 50, "clip", pretrained=False)
    result = DuplicatesCheck(DuplicatesParams()).run(untrained)
    assert result.findings == []
    assert "untrained" in result.summary["semantic"]["skipped"]
    trained = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, [None] * 50, "clip"))
    assert trained.summary["groups"]["near_duplicate"] == 5
    assert trained.summary["semantic"]["min_cosine"] == DuplicatesParams().semantic_min_cosine_clip
