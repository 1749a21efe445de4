"""The duplicates check: a real scan with planted copies, and synthetic contexts for grouping and search."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance
from scipy.stats import norm

from auditor.checks.base import CheckContext
from auditor.checks.duplicates import DuplicatesCheck, DuplicatesParams
from auditor.core.config import AuditConfig, EncoderConfig, ScanConfig, SearchParams
from auditor.core.encoder_facts import EncoderInfo
from auditor.evidence.probabilities import distinct_neighbours
from auditor.evidence.similarity import SearchLog, hamming_neighbours, unit_rows
from auditor.results.findings import Finding
from auditor.scan import run_scan
from tests.conftest import draw_photo, framed, write_class_folder

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
    # The thresholds derived from this dataset are recorded, per method.
    for method in ("perceptual", "semantic"):
        assert summary[method]["max_distance"] < summary[method]["median_nearest_distance"]
        assert 0 < summary[method]["max_ratio"] < 1
    assert -1 < summary["semantic"]["min_cosine"] < 1 and 0 <= summary["perceptual"]["max_bits"] < 128
    assert summary["pairs"]["sha256"] == 3
    assert summary["label_conflict_groups"] == 1


def test_every_leaked_member_names_its_partner_with_severity_by_evidence(
    planted_scan: tuple[list[Finding], dict],
) -> None:
    findings, _ = planted_scan
    leaks = [f for f in findings if f.check == "split_leakage"]
    assert len(leaks) == 4
    partner = {f.path: f.other_path for f in leaks}
    assert partner["test/circle/leaked.jpg"] == "train/circle/circle_003.png"
    assert partner["train/circle/circle_003.png"] == "test/circle/leaked.jpg"
    byte_leak = next(f for f in leaks if f.path == "test/triangle/leaked_copy.png")
    assert byte_leak.score == 1.0 and byte_leak.details["methods"] == ["sha256"]
    assert byte_leak.severity == "error"
    brightened = next(f for f in leaks if f.path == "test/circle/leaked.jpg")
    assert brightened.details["splits"] == ["test", "train"]
    # The built-in descriptor loses a brightened flat picture (cosine ~0.84); the hashes alone vouch for
    # it, which is an error only when a second method agrees.
    expected = "error" if brightened.details["group_evidence"] == "hash+embedding" else "warning"
    assert brightened.severity == expected
    assert "perceptual" in brightened.details["methods"]
    assert 0.5 < brightened.score < 1.0


def test_label_conflicts_and_near_scores(planted_scan: tuple[list[Finding], dict]) -> None:
    findings, _ = planted_scan
    conflict = next(f for f in findings if f.path == "train/circle/square_as_circle.png")
    assert conflict.check == "exact_duplicate"
    assert conflict.details["labels"] == ["circle", "square"] and conflict.details["labels_differ"]
    near = [f for f in findings if f.check == "near_duplicate"]
    assert near and all(f.details["group_size"] == 3 for f in near)
    for finding in near:
        strong = finding.details["group_evidence"] == "hash+embedding"
        assert finding.severity == ("warning" if strong else "info")
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
            "levelled_hash": [None] * count,
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


def near_groups(findings: list[Finding]) -> set[frozenset[str]]:
    return groups_of(findings)["near_duplicate"]


def expected_groups(planted: list[tuple[int, int]]) -> set[frozenset[str]]:
    return {frozenset({f"img_{a:04d}.png", f"img_{b:04d}.png"}) for a, b in planted}


# Accepts any measured recall: random vectors have no structure an index could use, so the recall target
# would send every search back to exact, and these tests are about the index itself.
ANY_RECALL = SearchParams(min_recall=1e-6)


def test_cell_join_and_exact_paths_give_the_same_groups() -> None:
    vectors, planted = planted_vectors(400, 25)
    exact = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, [None] * len(vectors)))
    ctx = make_context(vectors, [None] * len(vectors))
    ctx.config.search = SearchParams(exact_max_vectors=2, min_recall=1e-6)
    approximate = DuplicatesCheck(DuplicatesParams()).run(ctx)
    assert exact.summary.semantic["search"] == "exact"
    assert approximate.summary.semantic["search"] == "cell_join"
    assert near_groups(exact.findings) == expected_groups(planted)
    assert near_groups(approximate.findings) == expected_groups(planted)
    record = ctx.searches.records[-1]
    assert record["search"] == "image_neighbours" and record["method"] == "cell_join"
    assert 0.0 < record["recall"] <= 1.0 and record["recall_queries"] == 400


def test_a_join_below_the_recall_target_falls_back_to_exact_search() -> None:
    """Isotropic random vectors: no join of up to half the cells reaches 0.99 recall, so the search says so
    and is exact, with the same neighbours as the exact path."""
    vectors, _ = planted_vectors(600, 0)
    log = SearchLog()
    rows = np.arange(len(vectors))
    fallback = distinct_neighbours(vectors, rows, 6, SearchParams(exact_max_vectors=10), log, "probe")
    exact = distinct_neighbours(vectors, rows, 6, SearchParams(), None, "probe")
    record = log.records[0]
    assert record["method"] == "exact" and "fallback" in record and record["recall"] < 0.99
    # 15 cells: every m up to 7 was looked at; run.json shows the powers of two and the last.
    assert [t["cells_joined"] for t in record["tried"]] == [1, 2, 4, 7] and record["cells"] == 15
    assert [t["recall"] for t in record["tried"]] == sorted(t["recall"] for t in record["tried"])
    assert fallback.search == "exact"
    np.testing.assert_array_equal(fallback.index, exact.index)


def test_search_functions_agree_on_neighbours() -> None:
    vectors, planted = planted_vectors(600, 30)
    rows = np.arange(len(vectors))
    exact = distinct_neighbours(vectors, rows, 6, SearchParams(), None, "exact")
    approximate = distinct_neighbours(vectors, rows, 6, SearchParams(exact_max_vectors=10, min_recall=1e-6),
                                      None, "approximate")
    assert (exact.search, approximate.search) == ("exact", "cell_join")
    for search in (exact, approximate):
        index = search.of_members(search.position, 5)[0]
        for source, copy in planted:
            assert index[copy, 0] == source and index[source, 0] == copy
        assert (index != rows[:, None]).all(), "an item is never its own neighbour"
    rng = np.random.default_rng(SEED)
    codes = rng.integers(0, 256, size=(500, 8), dtype=np.uint8)
    codes[-1] = codes[0] ^ np.array([1, 2, 0, 0, 0, 0, 0, 128], dtype=np.uint8)  # 3 bits apart
    flat = hamming_neighbours(codes, 3, exact_max=10_000, nprobe=8)
    ivf = hamming_neighbours(codes, 3, exact_max=10, nprobe=64, settings=ANY_RECALL)
    assert flat.index[0, 0] == ivf.index[0, 0] == 499 and flat.index[499, 0] == 0
    assert flat.value[0, 0] == 3


def test_a_chain_of_look_alikes_is_not_a_group() -> None:
    """Eleven steps from one image to an unrelated one: each step a near copy of the last, the ends far
    apart. Union-find would make one group of the chain; every group reported must be mutually close."""
    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((300, 8))  # low dimension: neighbourhoods of varied density
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Steps of 0.06 rad along a great circle: the ends are 0.6 rad apart, as far as unrelated neighbours.
    start = vectors[0]
    across = vectors[1] - (vectors[1] @ start) * start
    across /= np.linalg.norm(across)
    chain = list(range(11))
    for n in chain:
        vectors[n] = np.cos(0.06 * n) * start + np.sin(0.06 * n) * across
    splits: list[str | None] = ["train"] * 300
    splits[5] = "test"
    result = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, splits))
    names = [f"img_{n:04d}.png" for n in chain]
    groups = [g for kind in DUPLICATE_KINDS for g in groups_of(result.findings)[kind]]
    in_chain = [g for g in groups if g & set(names)]
    assert in_chain, "consecutive steps are near copies; some must be found"
    assert all(len(g) <= 4 for g in in_chain), in_chain
    assert not any(names[0] in g and names[-1] in g for g in groups)
    assert result.summary.chain_links_dropped >= 1
    # A group holding the test-split step is still reported as leakage.
    assert any(names[5] in g for g in groups_of(result.findings)["split_leakage"])


def test_a_homogeneous_dataset_of_distinct_images_has_no_duplicates() -> None:
    """Every vector close to one centre (cosines ~0.98, above any fixed 0.97 bar): nothing stands out."""
    rng = np.random.default_rng(SEED)
    centre = rng.standard_normal(64)
    vectors = centre / np.linalg.norm(centre) + rng.standard_normal((300, 64)) * 0.02
    unit = unit_rows(vectors)
    nearest = np.sort(unit @ unit.T, axis=1)[:, -2]
    assert (nearest >= 0.97).mean() > 0.5, "most images would pass the former fixed 0.97 cosine"
    result = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, [None] * 300))
    assert result.findings == []
    assert result.summary.semantic["min_cosine"] > np.median(nearest)  # derived from the data


def test_thresholds_follow_the_encoder_not_a_constant() -> None:
    """The same planted copies, seen by an encoder whose cosines all crowd near 1 (a large shared
    component), are found with a derived threshold recorded in the summary."""
    vectors, planted = planted_vectors(300, 12)
    crowded = unit_rows(vectors) * 0.15 + unit_rows(np.ones((1, vectors.shape[1])))
    found = {}
    for name, data in (("spread", vectors), ("crowded", crowded)):
        result = DuplicatesCheck(DuplicatesParams()).run(make_context(data, [None] * 300))
        assert near_groups(result.findings) == expected_groups(planted), name
        found[name] = result.summary.semantic
    assert found["crowded"]["min_cosine"] > 0.98 and found["spread"]["min_cosine"] < 0.9
    for note in found.values():
        assert {"median_nearest_distance", "max_distance", "max_ratio", "global_min_z", "local_min_z"} <= set(note)


def test_evidence_tier_sets_severity_and_score() -> None:
    """Embedding alone (no hashes here) is the weakest tier: near copies are info, leaks warnings; an
    identical copy outranks them."""
    vectors, planted = planted_vectors(200, 4)
    splits: list[str | None] = ["train"] * 200
    splits[planted[0][1]] = "test"
    ctx = make_context(vectors, splits)
    ctx.images.loc[199, "pixel_sha256"] = ctx.images.loc[100, "pixel_sha256"]  # an identical copy
    result = DuplicatesCheck(DuplicatesParams()).run(ctx)
    by_kind: dict[str, list[Finding]] = {}
    for finding in result.findings:
        by_kind.setdefault(finding.check, []).append(finding)
    assert {f.severity for f in by_kind["near_duplicate"]} == {"info"}
    assert {f.severity for f in by_kind["split_leakage"]} == {"warning"}
    assert {f.details["evidence"] for f in by_kind["near_duplicate"]} == {"one method"}
    assert [f.score for f in by_kind["exact_duplicate"]] == [1.0, 1.0]
    assert max(f.score for f in by_kind["near_duplicate"]) < 0.75


def test_too_few_images_report_only_identical_copies() -> None:
    vectors, _ = planted_vectors(10, 3)
    ctx = make_context(vectors, [None] * 10)
    result = DuplicatesCheck(DuplicatesParams()).run(ctx)
    assert result.findings == []
    assert "needs at least 20" in result.summary.semantic["skipped"]


def test_an_explicit_cosine_floor_overrides_the_derived_global_test() -> None:
    vectors, planted = planted_vectors(300, 12)
    ctx = make_context(vectors, [None] * 300)
    strict = DuplicatesCheck(DuplicatesParams(min_cosine=0.999)).run(ctx)
    assert strict.findings == [] and strict.summary.semantic["min_cosine"] == pytest.approx(0.999)
    loose = DuplicatesCheck(DuplicatesParams(min_cosine=0.9)).run(ctx)
    assert near_groups(loose.findings) == expected_groups(planted)


def test_untrained_clip_skips_the_semantic_method() -> None:
    """A CLIP model with random weights puts unrelated images close together: its space is not judged."""
    vectors, planted = planted_vectors(50, 5)
    untrained = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, [None] * 50, "clip", pretrained=False))
    assert untrained.findings == [] and "untrained" in untrained.summary.semantic["skipped"]
    trained = DuplicatesCheck(DuplicatesParams()).run(make_context(vectors, [None] * 50, "clip"))
    assert near_groups(trained.findings) == expected_groups(planted)


def _hashed_context(count: int, seed: int = 0) -> CheckContext:
    """Unrelated random embeddings and random 128-bit plain and levelled hashes (no two alike)."""
    rng = np.random.default_rng(seed)
    ctx = make_context(rng.normal(size=(count, 48)), ["train"] * count)

    def codes() -> list[str]:
        return [bytes(row).hex() for row in rng.integers(0, 256, size=(count, 16), dtype=np.uint8)]

    plain = codes()
    ctx.images["phash"] = [code[:16] for code in plain]
    ctx.images["dhash"] = [code[16:] for code in plain]
    ctx.images["levelled_hash"] = codes()
    return ctx


def _planted(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.path in ("img_0003.png", "img_0007.png")]


def test_levelled_hash_alone_finds_a_copy_the_plain_hashes_miss() -> None:
    """A brightened copy: plain hashes and embedding unrelated, levelled hashes equal. Found, as one witness."""
    ctx = _hashed_context(200)
    ctx.images.loc[7, "levelled_hash"] = ctx.images.loc[3, "levelled_hash"]
    result = DuplicatesCheck(DuplicatesParams()).run(ctx)
    assert frozenset({"img_0003.png", "img_0007.png"}) in near_groups(result.findings)
    assert {tuple(f.details["methods"]) for f in _planted(result.findings)} == {("levelled",)}


def test_both_hashes_agreeing_are_one_witness_not_two() -> None:
    """Plain and levelled hashes read the same pixels: together they are the weakest tier, as the plain
    hash alone would be; only the embedding agreeing makes a pair hash+embedding."""
    ctx = _hashed_context(200)
    for column in ("phash", "dhash", "levelled_hash"):
        ctx.images.loc[7, column] = ctx.images.loc[3, column]
    result = DuplicatesCheck(DuplicatesParams()).run(ctx)
    planted = _planted(result.findings)
    assert {tuple(f.details["methods"]) for f in planted} == {("levelled", "perceptual")}
    assert {f.details["evidence"] for f in planted} == {"one method"}
    assert {f.severity for f in planted} == {"info"}
    looks = result.summary.levelled
    assert looks["family_looks"] == 2 and looks["local_min_z_used"] > DuplicatesParams().local_min_z


def _clustered_hash_context(count: int = 300, seed: int = 3) -> tuple[CheckContext, list[tuple[int, int]]]:
    """Hashes with structure, as scans or digits have: 30 families of look-alikes (each image its family's code
    with 5% of bits flipped), plus planted copies: three pairs whose hashes differ in 1 bit and whose
    embeddings agree, one pair whose embeddings alone agree (the hash method must still judge it)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, 48))
    families = rng.integers(0, 2, size=(30, 128), dtype=np.uint8)
    bits = families[np.arange(count) % 30] ^ (rng.random((count, 128)) < 0.05).astype(np.uint8)
    planted = [(3, 200), (4, 201), (5, 202), (6, 203)]
    for source, copy in planted:
        vectors[copy] = vectors[source] + rng.normal(size=48) * 0.02
    for source, copy in planted[:3]:
        bits[copy] = bits[source]
        bits[copy, source % 128] ^= 1
    ctx = make_context(vectors, ["train"] * count)
    codes = [bytes(np.packbits(row)).hex() for row in bits]
    ctx.images["phash"] = [code[:16] for code in codes]
    ctx.images["dhash"] = [code[16:] for code in codes]
    return ctx, planted


def _finding_set(findings: list[Finding]) -> set[tuple[str, str, str | None, str]]:
    return {(f.check, str(f.path), f.other_path, f.severity) for f in findings}


def test_multi_index_hashing_path_gives_the_same_findings_as_the_exact_search() -> None:
    """Above exact_max_images the hash method fits its null on a sample (here every image, so the null is the
    exact one) and searches only pairs within the radius its global test allows: same findings."""
    ctx, planted = _clustered_hash_context()
    exact = DuplicatesCheck(DuplicatesParams()).run(ctx)
    ctx.config.search = ANY_RECALL
    hashed = DuplicatesCheck(DuplicatesParams(exact_max_images=50, hash_null_sample=1000)).run(ctx)
    assert exact.summary.perceptual["search"] == "exact"
    note = hashed.summary.perceptual
    assert note["search"] == "multi-index hashing" and note["pairs_within_radius"] >= 3
    assert note["radius"] == note["max_bits"] and note["references_searched"] >= 2 * len(planted)
    assert _finding_set(hashed.findings) == _finding_set(exact.findings)
    assert expected_groups(planted) <= near_groups(exact.findings)
    record = next(r for r in ctx.searches.records if r["search"] == "duplicates_perceptual"
                  and r["method"] == "multi-index hashing")
    assert record["candidates"] >= record["pairs"] == note["pairs_within_radius"]


def _random_hashes_with_copies(count: int = 300, seed: int = 0) -> CheckContext:
    """Random-looking hashes, as photos have (the radius the global test allows is wide), with two copies: a
    brightened one (levelled hashes equal; plain hashes and embedding unrelated) and a re-encoded one whose
    embedding barely moved but whose plain hashes moved 20 bits (beyond what hashing can afford to search)."""
    ctx = _hashed_context(count, seed)
    rng = np.random.default_rng(seed + 100)
    ctx.images.loc[7, "levelled_hash"] = ctx.images.loc[3, "levelled_hash"]
    ctx.embeddings[11] = ctx.embeddings[5] + rng.normal(size=ctx.embeddings.shape[1]).astype(np.float32) * 0.02
    code = bytes.fromhex(ctx.images.loc[5, "phash"] + ctx.images.loc[5, "dhash"])
    bits = np.unpackbits(np.frombuffer(code, dtype=np.uint8))
    bits[rng.choice(128, 20, replace=False)] ^= 1
    moved = bytes(np.packbits(bits)).hex()
    ctx.images.loc[11, "phash"], ctx.images.loc[11, "dhash"] = moved[:16], moved[16:]
    return ctx


COPIES = {frozenset({"img_0003.png", "img_0007.png"}), frozenset({"img_0005.png", "img_0011.png"})}


def _candidate_record(ctx: CheckContext, name: str) -> dict[str, Any]:
    return next(r for r in ctx.searches.records if r["search"] == f"duplicates_{name}" and "recall_pairs" in r)


@pytest.mark.parametrize("semantic", [False, True])
def test_random_hashes_take_candidates_from_embedding_neighbours_with_measured_recall(semantic: bool) -> None:
    """Above exact_max_images, random-looking hashes leave a radius too wide for multi-index hashing: the
    candidates are the embedding's neighbours within it plus hashing at a cheap radius. The re-encoded copy (20
    bits) comes from the embedding's neighbours (with the semantic method off, from them alone), the brightened
    one from hashing; the recall against the sampled pairs the check accepts (here every image) is recorded,
    and the findings are the exact search's."""
    ctx = _random_hashes_with_copies()
    exact = DuplicatesCheck(DuplicatesParams(semantic=semantic)).run(ctx)
    ctx.searches.records.clear()
    approximate = DuplicatesCheck(DuplicatesParams(semantic=semantic, exact_max_images=50)).run(ctx)
    assert near_groups(exact.findings) == COPIES
    assert _finding_set(approximate.findings) == _finding_set(exact.findings)
    perceptual, levelled = approximate.summary.perceptual, approximate.summary.levelled
    assert perceptual["search"] == levelled["search"] == "embedding neighbours + multi-index hashing"
    assert 0 <= perceptual["hashing_radius"] < 20 < perceptual["radius"]
    assert perceptual["pairs_from_embedding_neighbours"] >= 1 and levelled["pairs_within_hashing_radius"] >= 1
    for name in ("perceptual", "levelled"):
        record = _candidate_record(ctx, name)
        assert record["recall"] == 1.0 and record["recall_pairs"] >= 1 and "fallback" not in record
        assert record["null_sample"] == 300 and record["min_recall"] == ctx.config.search.min_recall
    pair = {f.path: f.details["methods"] for f in approximate.findings if f.path in ("img_0005.png", "img_0011.png")}
    assert all("perceptual" in methods for methods in pair.values())


def test_random_hashes_fall_back_to_the_exact_search_when_the_candidates_miss_accepted_pairs() -> None:
    """With no hashing allowed (zero candidates per image) the brightened copy, unrelated in the embedding, is in
    no candidate set: the measured recall falls below min_recall, the check says so and searches every image's
    hash neighbours exactly, and finds it."""
    ctx = _random_hashes_with_copies()
    exact = DuplicatesCheck(DuplicatesParams()).run(ctx)
    ctx.searches.records.clear()
    fallback = DuplicatesCheck(DuplicatesParams(exact_max_images=50, hash_candidates_per_image=0)).run(ctx)
    record = _candidate_record(ctx, "levelled")
    assert record["hashing_radius"] == -1 and record["recall"] < ctx.config.search.min_recall
    assert "fallback" in record and "candidate_search" in fallback.summary.levelled
    assert fallback.summary.levelled["search"] in ("exact", "ivf")
    assert any(r["search"] == "duplicates_levelled" and r["method"] in ("exact", "ivf") for r in ctx.searches.records)
    assert _finding_set(fallback.findings) == _finding_set(exact.findings)
    assert COPIES <= near_groups(fallback.findings)


def test_the_cheapest_hashing_radius_is_the_widest_within_the_budget() -> None:
    from auditor.evidence.similarity import hamming_pairs_within, hamming_reach

    codes = np.random.default_rng(2).integers(0, 256, size=(400, 16), dtype=np.uint8)
    budget = 2000
    radius, counted = hamming_reach(codes, 60, budget)
    assert 0 < radius < 60 and counted <= budget
    assert hamming_pairs_within(codes, radius, budget)[0] is not None
    assert hamming_pairs_within(codes, radius + 1, budget)[0] is None
    assert hamming_reach(codes, 60, 0)[0] >= 0  # distinct random codes share no 64-bit half
    codes[1] = codes[0]
    assert hamming_reach(codes, 60, 0) == (-1, 0)


def test_neighbourhoods_from_hashing_give_the_references_brute_force_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """With hashing allowed at any cost and memory, most images' reference distances come from the pairs within the
    sampled reach instead of brute force: the findings must not move."""
    import auditor.checks.duplicates as duplicates

    ctx, _ = _clustered_hash_context()
    exact = DuplicatesCheck(DuplicatesParams()).run(ctx)
    monkeypatch.setattr(duplicates, "_MIH_MAX_SHARE", 1.0)
    monkeypatch.setattr(duplicates, "_MAX_PAIRS_PER_IMAGE", 1000)
    ctx.config.search = ANY_RECALL
    hashed = DuplicatesCheck(DuplicatesParams(exact_max_images=50, hash_null_sample=1000)).run(ctx)
    note = hashed.summary.perceptual
    assert note["references_by_hashing"] >= note["references_searched"] // 2 > 0
    assert _finding_set(hashed.findings) == _finding_set(exact.findings)


def test_neighbourhoods_within_a_reach_are_the_brute_force_ones() -> None:
    from auditor.checks.duplicates import _neighbourhoods_within

    rng = np.random.default_rng(5)
    families = rng.integers(0, 2, size=(20, 128), dtype=np.uint8)
    bits = families[np.arange(400) % 20] ^ (rng.random((400, 128)) < 0.03).astype(np.uint8)
    bits[50] = bits[30]  # an identical pair
    rows = np.packbits(bits, axis=1)
    wanted = np.array([0, 30, 50, 123, 399])
    known, resolved = _neighbourhoods_within(rows, wanted, reach=5, width=8, max_candidates=10**9)
    assert resolved.all()
    distance = (bits[wanted][:, None, :] != bits[None, :, :]).sum(axis=2).astype(np.float64)
    distance[np.arange(len(wanted)), wanted] = np.inf
    for n in range(len(wanted)):
        within = np.sort(distance[n][distance[n] <= 5])[:8] + 1.0
        assert np.array_equal(known[n, : len(within)], within) and np.isnan(known[n, len(within):]).all()
    assert np.isfinite(known).sum() >= 10, "the reach holds some neighbours, or this test checks nothing"
    assert not _neighbourhoods_within(rows, wanted, reach=5, width=8, max_candidates=10)[1].any()


def _pair_at_global_z(count: int, z: float, params: DuplicatesParams) -> tuple[CheckContext, frozenset[str]]:
    """``count`` random vectors, the last moved to chord distance with global z ``z`` (under this data's
    own null, read from a first scan's summary) from an image: a pair only the embedding can see."""
    rng = np.random.default_rng(SEED)
    vectors = unit_rows(rng.standard_normal((count, 8)))
    note = DuplicatesCheck(params).run(make_context(vectors[:-1], [None] * (count - 1))).summary.semantic
    centre = np.log(note["median_nearest_distance"])
    scale = (centre - np.log(note["max_distance"])) / note["global_min_z_used"]
    chord = float(np.exp(centre - z * scale))
    away = rng.standard_normal(8)
    away -= (away @ vectors[0]) * vectors[0]
    away /= np.linalg.norm(away)
    angle = 2 * np.arcsin(chord / 2)
    vectors[-1] = np.cos(angle) * vectors[0] + np.sin(angle) * away
    return make_context(vectors, [None] * count), frozenset({"img_0000.png", f"img_{count - 1:04d}.png"})


def test_one_witness_must_be_improbable_across_the_whole_dataset() -> None:
    """One method alone must pass its global test family-wise over the dataset's images. A pair at global
    z 3.75 clears the per-image bar 1.5 plus the one-witness 2.0, yet 2,000 unrelated images are expected
    to hold such a pair 2000 sf(3.75) = 0.18 times: reported among 200 images (dataset bar
    sf^-1(sf(1.5) / 200) = 3.40), not among 2,000 (3.96); a pair at z 4.5 is reported in both. (A lenient
    local test, so that the global one decides.)"""
    params = DuplicatesParams(local_min_z=1.0)
    for count, z, found in ((200, 3.75, True), (2000, 3.75, False), (2000, 4.5, True)):
        ctx, pair = _pair_at_global_z(count, z, params)
        result = DuplicatesCheck(params).run(ctx)
        assert (pair in near_groups(result.findings)) == found, (count, z)
        bar = result.summary.semantic["one_witness_global_min_z"]
        assert bar == pytest.approx(float(norm.isf(norm.sf(1.5) / count)), rel=1e-3)


def test_mirrored_and_framed_copies_are_leakage_and_a_shared_frame_is_not_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split, count, offset in (("train", 12, 0), ("test", 6, 100)):
        for label, shift in (("ants", 0), ("bees", 50)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                draw_photo(offset + shift + i).save(folder / f"{i:02d}.png")
    draw_photo(3).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "test/ants/mirrored.jpg", quality=90)
    framed(draw_photo(54), 10, (255, 255, 255)).save(root / "test/bees/framed_copy.png")  # of train/bees/04.png
    framed(draw_photo(200)).save(root / "train/ants/framed.png")
    framed(draw_photo(201)).save(root / "train/bees/framed.png")
    config = AuditConfig(scan=ScanConfig(workers=0, use_cache=False), encoder=EncoderConfig(name="builtin"))
    groups = groups_of(run_scan(root, config, tmp_path / "out").findings)
    assert groups["split_leakage"] == {frozenset({"train/ants/03.png", "test/ants/mirrored.jpg"}),
                                       frozenset({"train/bees/04.png", "test/bees/framed_copy.png"})}
    assert not groups["near_duplicate"] and not groups["exact_duplicate"]
