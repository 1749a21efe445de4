"""Hostile inputs: bombs, link tricks, escaping manifests, odd names, denied reads, degenerate datasets.

Each case must end in a clear finding or message and the right exit code, never a traceback. CLI
cases call the real console entry (``auditor.cli.app.main``) in-process so exit codes are the ones a
shell would see, without paying for a subprocess per case.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from auditor.checks import REGISTRY, Requirement
from auditor.cli.app import main
from auditor.core.config import load_config
from auditor.results.reading import load_results
from auditor.scan import ScanResult, run_scan
from tests.conftest import draw_shape, write_class_folder


def _scan(data: Path, tmp_path: Path, manifest: Path | None = None, **scan: Any) -> ScanResult:
    """Scan with the checks these cases are about (the CLI cases below run every check)."""
    settings = {"cache_dir": str(tmp_path / "cache"), "workers": 0,
                "checks": ["unreadable", "class_imbalance"], **scan}
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0}, "scan": settings})
    return run_scan(data, config, tmp_path / "out", manifest=manifest)


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``audit ARGS`` through the console-script entry; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["audit", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def _scan_args(data: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin", "--workers", "0",
            "--cache-dir", str(tmp_path / "cache"), *extra]


def _unreadable(result: ScanResult) -> dict[str, str]:
    return {f.path: str(f.details["reason"]) for f in result.findings if f.check == "unreadable" and f.path}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int, bit_depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data would not fill it."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _png_bomb(side: int) -> bytes:
    """A real 1-bit PNG of side x side: a few kB on disk, side² pixels decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(row * side, 9)) + _png_chunk(b"IEND", b""))


def _gif_screen(width: int, height: int) -> bytes:
    """A GIF whose logical screen and single frame claim ``width`` x ``height``."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame + b"\x3b"


def test_decompression_bombs_and_absurd_dimensions_are_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=6)
    hostile = {
        "circle/bomb.png": _png_bomb(20_000),  # 400 M pixels from ~50 kB
        "square/tall.png": _png_header_only(1, 2**31 - 1),
        "square/huge_gif.gif": _gif_screen(65_535, 65_535),
        "triangle/zero_width.png": _png_header_only(0, 10),
    }
    for name, blob in hostile.items():
        (data / name).write_bytes(blob)
    assert (data / "circle/bomb.png").stat().st_size < 100_000

    result = _scan(data, tmp_path)
    reasons = _unreadable(result)
    assert set(reasons) == set(hostile)
    for name in ("circle/bomb.png", "square/tall.png", "square/huge_gif.gif"):
        assert "decompression bomb" in reasons[name] and "scan.max_image_pixels" in reasons[name]
    assert result.run["dataset"]["readable"] == 18 and result.run["embedding"]["embedded"] == 18


def test_pixel_limit_follows_the_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    draw_shape("circle", 1, size=128).save(data / "circle" / "big.png")
    reasons = _unreadable(_scan(data, tmp_path, max_image_pixels=100 * 100))
    assert set(reasons) == {"circle/big.png"}
    assert "128x128 = 16,384 pixels exceeds the limit of 10,000" in reasons["circle/big.png"]


def test_symlinks_never_lead_outside_the_dataset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=6)
    outside = tmp_path / "outside"
    outside.mkdir()
    draw_shape("circle", 999).save(outside / "secret.png")
    draw_shape("square", 998).save(outside / "other.png")
    os.symlink(outside / "secret.png", data / "circle" / "link_out.png")
    os.symlink(outside, data / "square" / "dir_out")
    os.symlink(outside, data / "class_out")
    os.symlink(data / "square", data / "square" / "loop")  # a directory loop
    os.symlink("self.png", data / "triangle" / "self.png")  # a file that links to itself
    os.symlink("nowhere.png", data / "triangle" / "broken.png")
    os.symlink("circle_000.png", data / "circle" / "alias.png")  # inside the dataset: fine

    result = _scan(data, tmp_path)
    images = result.images.set_index("path")
    expected = {f"{s}/{s}_{i:03d}.png" for s in ("circle", "square", "triangle") for i in range(6)}
    expected |= {"circle/link_out.png", "triangle/self.png", "triangle/broken.png", "circle/alias.png"}
    assert set(images.index) == expected
    assert result.run["dataset"]["classes"] == ["circle", "square", "triangle"]
    reasons = _unreadable(result)
    assert reasons == {
        "circle/link_out.png": "symlink points outside the dataset; not followed",
        "triangle/self.png": "symlink loop (the link leads back to itself); not followed",
        "triangle/broken.png": "broken symlink",
    }
    # Nothing outside the dataset was read: its contents are not hashed anywhere.
    from auditor.ingest.images import sha256_file

    outside_hashes = {sha256_file(p)[0] for p in outside.iterdir()}
    assert not outside_hashes & set(images["sha256"].dropna())
    assert images.loc["circle/alias.png", "readable"]
    warnings = "\n".join(result.warnings)
    assert "directory symlink leaving the dataset not followed" in warnings and "dir_out" in warnings
    assert "class folder symlink leaving the dataset not followed" in warnings and "class_out" in warnings
    assert "symlink loop skipped" in warnings
    assert "leaving the dataset" in "\n".join(json.loads((tmp_path / "out/run.json").read_text())["warnings"])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../outside/secret.png", "escapes the dataset"),
        ("circle/../../outside/secret.png", "escapes the dataset"),
        ("{outside}/secret.png", "escapes the dataset"),
        ("..\\outside\\secret.png", "escapes the dataset"),
        ("link/secret.png", "resolves outside the dataset"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "backslash-dotdot", "through-symlink"],
)
def test_manifest_paths_escaping_the_dataset_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    row: str, message: str,
) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    outside = tmp_path / "outside"
    outside.mkdir()
    draw_shape("circle", 999).save(outside / "secret.png")
    os.symlink(outside, data / "link")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,label\ncircle/circle_000.png,circle\n{row.format(outside=outside)},square\n")

    code, _, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path, "--manifest", str(manifest)))
    assert code == 2
    assert message in err and "row 3" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_odd_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=4)
    fine = ["circle/with space.png", "circle/ünïcödé 猫.png", "square/emoji 😀 #1.png", "square/'quote\".png"]
    for n, name in enumerate(fine):
        draw_shape(name.split("/")[0], 500 + n).save(data / name)
    flagged = {"triangle/new\nline.png": "control characters", "triangle/tab\there.png": "control characters"}
    for n, name in enumerate(flagged):
        draw_shape("triangle", 600 + n).save(data / name)
    # A name that is not valid UTF-8 (possible on Linux file systems).
    raw_name = os.fsencode(data / "triangle") + b"/bad\xff\xfe.png"
    draw_shape("triangle", 700).save(os.fsdecode(raw_name))

    code, out, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 0, err
    assert "results written" in out
    images = pq.read_table(tmp_path / "out/images.parquet").to_pandas().set_index("path")
    embedded = set(pq.read_table(tmp_path / "out/embeddings.parquet").column("path").to_pylist())
    assert set(fine) <= embedded
    findings = pq.read_table(tmp_path / "out/findings.parquet").to_pandas()
    reasons = dict(zip(findings["path"], findings["message"], strict=True))
    for name, why in flagged.items():
        assert why in reasons[name] and not images.loc[name, "readable"]
    bad_utf8 = [p for p in images.index if p.startswith("triangle/bad")]
    assert bad_utf8 == ["triangle/bad\\xff\\xfe.png"]
    assert "not valid UTF-8" in reasons[bad_utf8[0]]


def _deny(monkeypatch: pytest.MonkeyPatch, denied: set[Path]) -> str:
    """Make ``denied`` unreadable; really (chmod 000) when not root, by patching the OS calls when root.

    Root ignores permission bits, so under root a chmod test would prove nothing; the patch raises the
    same PermissionError the kernel would.
    """
    if os.geteuid() != 0:
        for path in denied:
            path.chmod(0)
        return "chmod"
    names = {os.fspath(p) for p in denied}

    def guard(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(target: Any = ".", *args: Any, **kwargs: Any) -> Any:
            if isinstance(target, str | os.PathLike) and os.fspath(target) in names:
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(target))
            return function(target, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(os, "open", guard(os.open))
    monkeypatch.setattr(os, "scandir", guard(os.scandir))
    monkeypatch.setattr(os, "listdir", guard(os.listdir))
    return "simulated"


def test_permission_denied_files_and_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=6)
    (data / "square" / "sub").mkdir()
    draw_shape("square", 800).save(data / "square" / "sub" / "hidden_from_us.png")
    locked_file, locked_dir = data / "circle" / "circle_002.png", data / "square" / "sub"
    with pytest.MonkeyPatch.context() as patch:
        how = _deny(patch, {locked_file, locked_dir})
        try:
            result = _scan(data, tmp_path)
        finally:
            if how == "chmod":
                locked_file.chmod(0o644)
                locked_dir.chmod(0o755)
    reasons = _unreadable(result)
    assert set(reasons) == {"circle/circle_002.png"}, how
    assert reasons["circle/circle_002.png"] == "cannot read file: Permission denied"
    assert "square/sub/hidden_from_us.png" not in set(result.images["path"])
    assert any("cannot list folder" in w and "sub" in w and "not scanned" in w for w in result.warnings)


def test_unlistable_dataset_root_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    how = _deny(monkeypatch, {data})
    try:
        code, _, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    finally:
        if how == "chmod":
            data.chmod(0o755)
    assert code == 2 and "cannot list folder" in err and "Permission denied" in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_pipe_named_like_an_image_does_not_hang(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    os.mkfifo(data / "circle" / "pipe.png")
    reasons = _unreadable(_scan(data, tmp_path))
    assert reasons == {"circle/pipe.png": "not a regular file (a pipe, socket or device)"}


def test_directories_named_like_images(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=4)
    (data / "circle" / "x.jpg").mkdir()
    draw_shape("circle", 900).save(data / "circle" / "x.jpg" / "inside.png")
    (data / "square" / "empty.png").mkdir()
    result = _scan(data, tmp_path)
    paths = set(result.images["path"])
    assert "circle/x.jpg/inside.png" in paths and "square/empty.png" not in paths
    assert not _unreadable(result)
    inner = result.images.set_index("path").loc["circle/x.jpg/inside.png"]
    assert inner["label"] == "circle" and inner["readable"]

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\ncircle/circle_000.png,circle\nsquare/empty.png,square\n"
                        "square/square_000.png,square\n")
    reasons = _unreadable(_scan(data, tmp_path, manifest=manifest))
    assert reasons == {"square/empty.png": "path listed in the manifest is a folder, not a file"}


def test_single_class_exits_0_and_skips_label_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=8, shapes=["circle"])
    code, out, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 0, err
    run = json.loads((tmp_path / "out/run.json").read_text())
    label_checks = [name for name, check in REGISTRY.items() if Requirement.LABELS in check.requires]
    assert label_checks, "no registered check needs labels; this test would prove nothing"
    for name in label_checks:
        assert "at least two classes" in run["checks"][name]["skipped"]
        assert f"check {name} skipped" in out
    assert run["dataset"]["classes"] == ["circle"] and run["embedding"]["embedded"] == 8


@pytest.mark.parametrize(
    "make",
    [
        lambda root: root.mkdir(),
        lambda root: [(root / c).mkdir(parents=True) for c in ("cat", "dog")],
        lambda root: [(root / "cat").mkdir(parents=True), (root / "cat" / "notes.txt").write_text("x")],
        lambda root: None,
    ],
    ids=["empty-folder", "empty-class-folders", "no-image-files", "missing-folder"],
)
def test_empty_dataset_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object],
) -> None:
    data = tmp_path / "data"
    make(data)
    code, _, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 2
    assert ("no images found" in err) or ("not found" in err)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not (tmp_path / "out").exists()


def test_empty_class_folder_is_a_class_imbalance_finding(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=6)
    (data / "hexagon").mkdir()
    result = _scan(data, tmp_path)
    messages = [f.message for f in result.findings
                if f.check == "class_imbalance" and f.classes == ("hexagon",)]
    assert messages == ["class 'hexagon' has no readable images (its class folder is empty)"]
    assert result.run["dataset"]["classes"] == ["circle", "hexagon", "square", "triangle"]


def test_dataset_where_nothing_is_readable_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for label in ("cat", "dog"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            (data / label / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated" * i)
    code, _, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 0, err
    findings = pd.read_parquet(tmp_path / "out/findings.parquet")
    assert (findings["check"] == "unreadable").sum() == 6
    assert pq.read_table(tmp_path / "out/embeddings.parquet").num_rows == 0
    run = json.loads((tmp_path / "out/run.json").read_text())
    for name, check in REGISTRY.items():
        if Requirement.EMBEDDINGS in check.requires:
            assert run["checks"][name]["skipped"], name


def test_file_swapped_for_an_outside_symlink_after_discovery_is_not_read(tmp_path: Path) -> None:
    """The check runs on the opened file, so a swap between discovery and reading cannot escape."""
    from auditor.embed.embedding import embed_files
    from auditor.embed.encoders.builtin import BuiltinEncoder
    from auditor.ingest.dataset import discover
    from auditor.ingest.images import read_discovered, sha256_file

    data = tmp_path / "data"
    write_class_folder(data, per_class=2)
    outside = tmp_path / "secret.png"
    draw_shape("circle", 99).save(outside)
    (data / "square" / "inner.png").symlink_to(data / "square" / "square_000.png")
    records = {r.path: r for r in discover(data).records}
    victim = records["circle/circle_000.png"].abs_path
    sha, _ = sha256_file(victim)
    victim.unlink()
    victim.symlink_to(outside)

    info = read_discovered(10**8, 1 << 30, (victim, None), root=data)
    assert not info.readable and info.reason == "symlink points outside the dataset; not followed"
    inner = records["square/inner.png"]
    assert read_discovered(10**8, 1 << 30, (inner.abs_path, inner.problem), root=data).readable

    # The embedding stage re-opens files later: content that changed since reading is refused too.
    result = embed_files({sha: victim}, BuiltinEncoder(), None, 4, 0, 10**8)
    assert result.vectors == {} and "changed during the scan" in result.failures[sha]


# --- Outputs, results folders and internal errors: one line on stderr, the right exit code -----------


def _one_line_error(code: int, err: str, expected_code: int = 2) -> str:
    assert code == expected_code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def good_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good")
    write_class_folder(root / "data", per_class=4)
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"workers": 0, "cache_dir": str(root / "cache"),
                                             "checks": ["unreadable", "class_imbalance", "duplicates"]}})
    run_scan(root / "data", config, root / "out")
    return root / "out"


def _copy(results: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(results, target)
    return target


@pytest.mark.parametrize("where", ["file", "devnull", "foreign", "readonly"])
def test_unusable_out_folders_are_refused_before_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    import tempfile

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    out = tmp_path / "out"
    if where == "file":
        out.write_text("precious")
    elif where == "devnull":
        out = Path(os.devnull)
    elif where == "foreign":  # e.g. a home folder: a scan must never be let loose in it
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
    else:
        out.mkdir()
        real = tempfile.mkstemp

        def read_only(*args: Any, **kwargs: Any) -> Any:
            if Path(kwargs.get("dir", "")) == out:
                raise OSError(errno.EROFS, "Read-only file system")
            return real(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", read_only)
    args = _scan_args(data, tmp_path)
    args[args.index("--out") + 1] = str(out)
    line = _one_line_error(*_cli(monkeypatch, capsys, *args)[::2])
    assert str(out) in line
    assert {"file": "not a folder", "devnull": "not a folder", "foreign": "not an auditor results folder",
            "readonly": "read-only"}[where] in line
    if where == "file":
        assert out.read_text() == "precious"
    if where == "foreign":
        assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    assert not (tmp_path / "cache").exists(), "refused before any work was done"


def test_full_disk_while_writing_results_keeps_the_previous_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditor.results import outputs

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    assert _cli(monkeypatch, capsys, *_scan_args(data, tmp_path, "-q"))[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    draw_shape("circle", 77).save(data / "circle" / "new.png")

    def full(table: Any, where: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.pq, "write_table", full)
    line = _one_line_error(*_cli(monkeypatch, capsys, *_scan_args(data, tmp_path, "-q"))[::2])
    assert "No space left on device" in line and str(tmp_path / "out") in line
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


@pytest.mark.parametrize("how", ["cache path is a file", "read-only database"])
def test_unusable_cache_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    import sqlite3

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    cache = tmp_path / "cache"
    if how == "cache path is a file":
        cache.write_text("not a folder")
    else:
        real = sqlite3.connect
        monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: real(f"file:{path}?mode=ro", uri=True, **kw))
        cache.mkdir()
        real(cache / "embeddings-v1.sqlite").close()
    line = _one_line_error(*_cli(monkeypatch, capsys, *_scan_args(data, tmp_path))[::2])
    assert "embedding cache" in line and str(cache) in line and "--no-cache" in line


def test_cache_with_a_foreign_table_is_moved_aside_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    (tmp_path / "cache").mkdir()
    with sqlite3.connect(tmp_path / "cache" / "embeddings-v1.sqlite") as conn:
        conn.execute("CREATE TABLE embeddings (id INTEGER, payload TEXT)")
    code, out, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 0 and "Traceback" not in err, err
    assert "moved aside and rebuilt" in " ".join(out.split())
    assert any(".corrupt-" in p.name for p in (tmp_path / "cache").iterdir())


@pytest.mark.parametrize("command", ["report", "gate"])
def test_output_pointing_at_a_folder_is_one_line(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    target = tmp_path / "folder"
    target.mkdir()
    line = _one_line_error(*_cli(monkeypatch, capsys, command, str(good_results), "--output", str(target))[::2])
    assert str(target) in line and "folder" in line


def _rewrite_findings(folder: Path, change: Callable[[Any], Any]) -> None:
    """Rewrite findings.parquet through ``change`` (a pyarrow Table -> Table), keeping its metadata."""
    import pyarrow as pa

    path = folder / "findings.parquet"
    table = pq.read_table(path)
    changed: pa.Table = change(table)
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), path)


def _malformed(kind: str, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    def set_column(name: str, values: Any) -> Callable[[Any], Any]:
        return lambda t: t.set_column(t.schema.get_field_index(name), name, values)

    run = json.loads((folder / "run.json").read_text())
    if kind == "missing column":
        _rewrite_findings(folder, lambda t: t.drop_columns(["score"]))
    elif kind == "extra column":
        _rewrite_findings(folder, lambda t: t.append_column("surprise", pa.array([1] * len(t))))
    elif kind == "wrong type":
        _rewrite_findings(folder, lambda t: set_column("score", pc.cast(t.column("score"), pa.string()))(t))
    elif kind == "details not JSON":
        _rewrite_findings(folder, lambda t: set_column("details", pa.array(["{nope"] * len(t)))(t))
    elif kind == "unknown severity":
        _rewrite_findings(folder, lambda t: set_column("severity", pa.array(["fatal"] * len(t)))(t))
    elif kind in {"null dataset", "null encoder"}:
        run[kind.split()[1]] = None
        (folder / "run.json").write_text(json.dumps(run))
    else:
        raise ValueError(kind)


MALFORMED = ["missing column", "extra column", "wrong type", "details not JSON", "unknown severity",
             "null dataset", "null encoder"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_results_are_one_line_for_every_reader(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    assert load_results(good_results).finding_objects(), "the fixture must have findings to corrupt"
    bad = _copy(good_results, tmp_path / "bad")
    _malformed(kind, bad)
    readers = [
        ["gate", str(bad)], ["gate", str(bad), "--baseline", str(good_results)],
        ["gate", str(good_results), "--baseline", str(bad)], ["gate", str(bad), "--format", "markdown"],
        *(["report", str(bad), "--format", fmt, "--output", str(tmp_path / f"r.{fmt}")]
          for fmt in ("terminal", "markdown", "html")),
    ]
    for args in readers:
        line = _one_line_error(*_cli(monkeypatch, capsys, *args)[::2])
        assert "malformed" in line and str(bad) in line, (args, line)


def test_a_mixed_result_set_is_refused_and_orphan_temporaries_are_removed(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kill -9 between renames could leave new findings beside the previous run.json and images."""
    import shutil

    older = _copy(good_results, tmp_path / "older")
    data = tmp_path / "data"
    write_class_folder(data, per_class=5)
    assert _cli(monkeypatch, capsys, *_scan_args(data, tmp_path, "-q"))[0] == 0
    shutil.copy(tmp_path / "out" / "findings.parquet", older / "findings.parquet")
    for args in (["gate", str(older)], ["report", str(older)]):
        line = _one_line_error(*_cli(monkeypatch, capsys, *args)[::2])
        assert "mixes files of different scans" in line

    dead = 2**22 + 12345  # above Linux's largest pid: no such process
    orphan = tmp_path / "out" / f".findings.parquet.{dead}.abcd1234.tmp"
    live = tmp_path / "out" / f".images.parquet.{os.getppid()}.abcd1234.tmp"
    orphan.write_bytes(b"half")
    live.write_bytes(b"being written")
    assert _cli(monkeypatch, capsys, *_scan_args(data, tmp_path, "-q"))[0] == 0
    assert not orphan.exists() and live.exists()


def test_a_bug_is_one_line_naming_a_log_with_the_traceback_and_exit_70(
    good_results: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 means "gate failed" in CI; a crash must never read as a verdict."""
    from auditor.actions import gate

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(gate, "evaluate", broken)
    code, _, err = _cli(monkeypatch, capsys, "gate", str(good_results))
    line = _one_line_error(code, err, expected_code=70)
    assert "internal error" in line and "ZeroDivisionError: planted bug" in line
    log = Path(line.rsplit("traceback in ", 1)[1].strip())
    try:
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and "planted bug" in text
    finally:
        log.unlink()


# --- Data text is never markup ---------------------------------------------------------------------

HOSTILE_LABELS = [
    "<iframe src=x></iframe><img src=x onerror=alert(1)>",
    "@octocat ![p](https://evil.example/p.png) www.evil.example",
    "</details>\n# Heading `tick` | cell\n\n<marquee>",
    "[red]x[/] [/] [bold",
]


def _hostile_manifest_scan(tmp_path: Path, out: Path) -> Path:
    """A scan whose labels, splits and file names are Markdown, HTML and Rich markup."""
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    rows = []
    names = ["a``b[i]", "x[", "@dev <b>", "plain"]
    for c, label in enumerate(HOSTILE_LABELS):
        for i in range(4 if c < 3 else 2):  # the last class is starved: class_imbalance names it
            name = f"{names[c]}_{i}.png"
            draw_shape(("circle", "square", "triangle", "circle")[c], 40 * c + i).save(data / "img" / name)
            rows.append({"path": f"img/{name}", "label": label, "split": "train" if i else "va|l<i>"})
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"workers": 0, "cache_dir": str(tmp_path / "cache"),
                                             "checks": ["unreadable", "class_imbalance", "duplicates"]}})
    result = run_scan(data, config, out, manifest=manifest)
    assert any(f.check == "class_imbalance" for f in result.findings)
    return out


def test_markdown_report_neutralises_every_data_string(tmp_path: Path) -> None:
    from auditor.report import ReportFormat, ReportOptions, render_results
    from tests.safety import assert_html_safe, assert_markdown_safe

    out = _hostile_manifest_scan(tmp_path, tmp_path / "out")
    markdown = render_results(out, ReportFormat.MARKDOWN, ReportOptions(top=0))
    assert_markdown_safe(markdown)
    assert "\u200b" in markdown and "\\<iframe" in markdown  # neutralised, not dropped
    html = render_results(out, ReportFormat.HTML)
    assert_html_safe(html, {"iframe", "marquee"})


def test_gate_markdown_neutralises_every_data_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.safety import assert_markdown_safe, assert_no_control_characters

    out = _hostile_manifest_scan(tmp_path, tmp_path / "out")
    config = tmp_path / "gate.toml"
    config.write_text("[gate]\nmax_findings = {class_imbalance = 0}\n")
    code, markdown, err = _cli(monkeypatch, capsys, "gate", str(out), "-c", str(config), "--format", "markdown")
    assert code == 1, err
    assert_markdown_safe(markdown)
    code, text, err = _cli(monkeypatch, capsys, "gate", str(out), "-c", str(config))
    assert code == 1 and "Traceback" not in err, err
    assert_no_control_characters(text)


def test_rich_markup_in_names_prints_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder `x[` holding `].png` crashed `audit report`; `--out 'o[/]'` crashed the scan summary."""
    from tests.safety import assert_no_control_characters

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    (data / "x[").mkdir()
    for i in range(3):
        draw_shape("circle", 300 + i).save(data / "x[" / f"].{i}.png")
    (data / "x[" / "].0.png").rename(data / "x[" / "].png")
    out = tmp_path / "o[/]"
    args = _scan_args(data, tmp_path)
    args[args.index("--out") + 1] = str(out)
    code, stdout, err = _cli(monkeypatch, capsys, *args)
    assert code == 0 and "Traceback" not in err, err
    assert f"resultswrittento{out}" in "".join(stdout.split())
    code, stdout, err = _cli(monkeypatch, capsys, "report", str(out))
    assert code == 0 and "Traceback" not in err, err
    assert "x[" in stdout  # the class printed as text (its bar), where it once crashed the report
    assert_no_control_characters(stdout)


def test_control_characters_in_names_never_reach_the_terminal_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.safety import assert_no_control_characters

    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    (data / "evil\x1b[2J\x1b]0;pwned\x07").mkdir()
    draw_shape("circle", 400).save(data / "evil\x1b[2J\x1b]0;pwned\x07" / "a.png")
    draw_shape("circle", 401).save(data / "circle" / "b\x1b[31mred.png")
    code, stdout, err = _cli(monkeypatch, capsys, *_scan_args(data, tmp_path))
    assert code == 0, err
    for fmt in ("terminal", "markdown"):
        code, text, err = _cli(monkeypatch, capsys, "report", str(tmp_path / "out"), "--format", fmt)
        assert code == 0, err
        assert_no_control_characters(text + err)
    assert_no_control_characters(stdout + err)


def test_library_warnings_are_summarised_once_and_never_reach_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """cleanlab warns once per tiny class: 30 one-image classes gave 60 stderr lines even with --quiet."""
    data = tmp_path / "data"
    write_class_folder(data, per_class=6, shapes=("circle", "square"))
    for c in range(30):
        (data / f"tiny{c:02d}").mkdir()
        draw_shape(("circle", "square", "triangle")[c % 3], 900 + c).save(data / f"tiny{c:02d}" / "a.png")
    import subprocess

    base = _scan_args(data, tmp_path, "--checks", "label_errors")
    # A real process: pytest would otherwise intercept the warnings before they reach stderr.
    done = subprocess.run([sys.executable, "-m", "auditor", *base, "-q"], capture_output=True, text=True)
    # --quiet keeps the scan's own warnings on stderr (one "warning:" line each), never library noise.
    assert done.returncode == 0, done.stderr
    assert all(line.startswith("warning: ") for line in done.stderr.splitlines()), done.stderr
    assert "UserWarning" not in done.stderr and "library warning" not in done.stderr, done.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    noise = [w for w in run["warnings"] if w.startswith("library warning: cleanlab UserWarning")]
    assert len(noise) == 1 and "(30 times, e.g.)" in noise[0], run["warnings"]
    code, out, err = _cli(monkeypatch, capsys, *base)
    # Without --quiet stderr still carries only the scan's own warnings (told as soon as known), no library noise.
    assert code == 0 and all(line.startswith("warning: ") for line in err.splitlines()), err
    assert "library warning" not in err and "UserWarning" not in err, err
    assert "".join(out.split()).count("librarywarning:cleanlab") == 1


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[gate.max_findings]\noutliers = 0\n", "did you mean 'outlier'?"),
        ("[gate.max_findings]\nnonsense_kind = 3\n", "valid kinds: ambiguous"),
        ("[gate]\nmax_unreadable = true\n", "gate.max_unreadable"),
        ("[gate]\nmax_label_error_rate = true\n", "gate.max_label_error_rate"),
        ("[gate.max_findings]\noutlier = false\n", "gate.max_findings.outlier"),
    ],
    ids=["typo", "unknown", "bool-count", "bool-rate", "bool-in-max-findings"],
)
def test_gate_config_typos_and_booleans_exit_2(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    toml: str, expected: str,
) -> None:
    """`outliers = 0` (the kind is `outlier`) once passed every gate; `true` was a count of 1."""
    config = tmp_path / "gate.toml"
    config.write_text(toml)
    for extra in ([], ["--baseline", str(good_results)]):
        code, _, err = _cli(monkeypatch, capsys, "gate", str(good_results), "-c", str(config), *extra)
        assert expected in _one_line_error(code, err)


def test_a_dataset_and_results_under_non_utf8_folder_names_scan_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ds\\xff` once scanned but broke `report --format html`; `--out o\\xff` broke the scan itself."""
    data, out = (tmp_path / name.decode(errors="surrogateescape") for name in (b"ds\xff", b"o\xff"))
    try:
        data.mkdir()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes UTF-8 names only")
    write_class_folder(data, per_class=3)
    args = _scan_args(data, tmp_path)
    args[args.index("--out") + 1] = str(out)
    code, stdout, err = _cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "o\\xff" in stdout
    for fmt in ("terminal", "markdown", "html"):
        code, text, err = _cli(monkeypatch, capsys, "report", str(out), "--format", fmt)
        assert code == 0, (fmt, err)
        shown = (out / "report.html").read_text(encoding="utf-8") if fmt == "html" else text
        shown.encode("utf-8")  # no lone surrogate: the text went to a UTF-8 stream or file
        assert fmt == "markdown" or "ds\\xff" in shown, fmt  # the Markdown summary names no folder
    code, _, err = _cli(monkeypatch, capsys, "gate", str(out))
    assert code in (0, 1), err


@pytest.mark.parametrize("option", ["--config", "--decisions"])
def test_a_folder_given_for_a_file_option_is_one_line(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    """`--config DIR` and `--decisions DIR` were IsADirectoryError, exit 70."""
    folder = tmp_path / "folder"
    folder.mkdir()
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    commands = [["gate", str(good_results)], ["scan", str(data), "--out", str(tmp_path / "out"), "--quiet",
                                              "--encoder", "builtin", "--workers", "0", "--no-cache",
                                              "--checks", "unreadable"]]
    if option == "--decisions":
        commands.append(["fix", str(good_results), "--out", str(tmp_path / "m.csv")])
    for args in commands:
        line = _one_line_error(*_cli(monkeypatch, capsys, *args, option, str(folder))[::2])
        assert f"{folder} is a folder; give a file" in line, (args, line)


@pytest.mark.parametrize(
    ("junk", "expected"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ("9" * 5001, "5001 digits")],
    ids=["nested-100k-deep", "5001-digit-integer"],
)
def test_a_run_json_the_parser_cannot_read_is_one_line_for_gate_and_its_baseline(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    junk: str, expected: str,
) -> None:
    bad = _copy(good_results, tmp_path / "bad")
    text = (bad / "run.json").read_text().rstrip()
    (bad / "run.json").write_text(text[:-1] + f', "junk": {junk}}}')
    for args in (["gate", str(bad)], ["gate", str(good_results), "--baseline", str(bad)],
                 ["fix", str(bad), "--out", str(tmp_path / "m.csv")]):
        line = _one_line_error(*_cli(monkeypatch, capsys, *args)[::2])
        assert f"{bad / 'run.json'} is not valid JSON" in line and expected in line, (args, line)


def test_nan_and_minus_infinity_thresholds_exit_2(
    good_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`global_min_z = nan` was a ValueError (exit 70); `-inf` for both z bars invented near duplicates."""
    for toml in ("[checks.duplicates]\nglobal_min_z = nan\n",
                 "[checks.duplicates]\nglobal_min_z = -inf\n", "[checks.duplicates]\nlocal_min_z = -inf\n"):
        config = tmp_path / "z.toml"
        config.write_text(toml)
        line = _one_line_error(*_cli(monkeypatch, capsys, "gate", str(good_results), "-c", str(config))[::2])
        assert "_min_z: Input should be a finite number" in line, line


def test_a_check_named_twice_in_the_checks_option_exits_2_before_scanning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--checks unreadable,unreadable,unreadable` reported every unreadable file three times."""
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    args = _scan_args(data, tmp_path, "--checks", "unreadable,unreadable,unreadable")
    line = _one_line_error(*_cli(monkeypatch, capsys, *args)[::2])
    assert "check 'unreadable' is named more than once" in line and not (tmp_path / "out").exists(), line
