"""Fuzzing: hundreds of random, truncated, bit-flipped and mislabelled files must never stop a scan.

Each generated file is classified by an oracle (can Pillow fully decode it within the pixel limit?),
not by how it was made: a bit-flipped JPEG often still decodes, and a PNG named ``.jpg`` is a fine
image. Every file the oracle rejects must come back as an ``unreadable`` finding with a reason, and
every file it accepts must be embedded.
"""

from __future__ import annotations

import io
import random
import tempfile
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from auditor.core.config import load_config
from auditor.ingest.images import read_image
from auditor.scan import run_scan
from tests.conftest import SHAPES, draw_shape

SEED = 20_240_611
MAX_PIXELS = 1_000_000
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif"}
MODES = ("RGB", "L", "P", "RGBA")


def _encode(image: Image.Image, fmt: str) -> bytes:
    if fmt == "JPEG" and image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    if fmt == "GIF" and image.mode == "RGBA":
        image = image.convert("P")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _valid_bytes(rng: random.Random, fmt: str) -> bytes:
    shape = rng.choice(SHAPES)
    image = draw_shape(shape, rng.randrange(1_000_000), size=rng.choice((24, 40, 56)))
    return _encode(image.convert(rng.choice(MODES)), fmt)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def _flip_bits(rng: random.Random, data: bytes) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(mutated))
        mutated[position] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def generate_corpus(root: Path, seed: int = SEED) -> list[Path]:
    """Write the fuzz corpus into three class folders; returns every file written (about 560)."""
    rng = random.Random(seed)
    extensions = list(FORMATS.values())
    blobs: list[tuple[str, bytes, str]] = []  # (kind, bytes, extension)
    for fmt, ext in FORMATS.items():
        blobs += [("good", _valid_bytes(rng, fmt), ext) for _ in range(30)]
        blobs += [("truncated", _truncate(rng, _valid_bytes(rng, fmt)), ext) for _ in range(20)]
        blobs += [("bitflip", _flip_bits(rng, _valid_bytes(rng, fmt)), ext) for _ in range(20)]
        # Valid bytes under another format's extension: Pillow sniffs content, so these should read.
        blobs += [("wrongext", _valid_bytes(rng, fmt), rng.choice([e for e in extensions if e != ext]))
                  for _ in range(8)]
    blobs += [("random", rng.randbytes(rng.randrange(1, 4096)), rng.choice(extensions)) for _ in range(60)]
    magics = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"RIFF\x00\x10\x00\x00WEBPVP8 ",
              b"II*\x00"]
    blobs += [("magic", rng.choice(magics) + rng.randbytes(rng.randrange(0, 2048)), rng.choice(extensions))
              for _ in range(40)]
    blobs += [("text", b"this is not an image\n" * rng.randint(1, 20), rng.choice(extensions))
              for _ in range(20)]
    blobs += [("empty", b"", rng.choice(extensions)) for _ in range(20)]
    written = []
    for index, (kind, data, ext) in enumerate(blobs):
        folder = root / SHAPES[index % len(SHAPES)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{kind}_{index:04d}{ext}"
        path.write_bytes(data)
        written.append(path)
    return written


def fully_decodes(path: Path) -> bool:
    """The oracle: Pillow opens, fully loads and converts the file, and it is within the pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
                if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
                    return False
                image.load()
                image.convert("RGB")
    except Exception:  # noqa: BLE001 - the oracle only asks "does it decode", whatever the error
        return False
    return True


@pytest.mark.slow
def test_scan_survives_fuzz_corpus(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = generate_corpus(data)
    assert len(files) >= 500
    good = {p.relative_to(data).as_posix() for p in files if fully_decodes(p)}
    bad = {p.relative_to(data).as_posix() for p in files} - good
    # The corpus must exercise both outcomes in bulk, or the test proves little.
    assert len(good) >= 150 and len(bad) >= 200
    assert any(name.split("/")[1].startswith("bitflip") for name in good), "no bit-flipped file still decodes"
    assert any(name.split("/")[1].startswith("bitflip") for name in bad), "no bit-flipped file fails"

    config = load_config(overrides={
        "encoder": {"name": "builtin", "workers": 2, "batch_size": 32},
        "scan": {"cache_dir": str(tmp_path / "cache"), "workers": 2, "max_image_pixels": MAX_PIXELS},
    })
    out = tmp_path / "out"
    result = run_scan(data, config, out)

    images = pq.read_table(out / "images.parquet").to_pandas().set_index("path")
    assert set(images.index) == good | bad
    findings = pq.read_table(out / "findings.parquet").to_pandas()
    unreadable = findings[findings["check"] == "unreadable"].set_index("path")
    assert set(unreadable.index) == bad
    reasons = unreadable["message"].str.removeprefix("unreadable: ").str.strip()
    assert (reasons.str.len() > 0).all() and not reasons.eq("None").any()
    assert images.loc[sorted(bad), "unreadable_reason"].notna().all()

    embedded = set(pq.read_table(out / "embeddings.parquet").column("path").to_pylist())
    assert embedded == good
    assert images.loc[sorted(good), "readable"].all()
    assert result.run["dataset"]["unreadable"] == len(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), ext=st.sampled_from(sorted(set(FORMATS.values()))))
def test_read_image_never_raises_on_arbitrary_bytes(data: bytes, ext: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{ext}"
        path.write_bytes(data)
        info = read_image(path, MAX_PIXELS, 1 << 20)
        assert info.readable == fully_decodes(path)
        if not info.readable:
            assert info.reason


_VALID = {fmt: _valid_bytes(random.Random(fmt), fmt) for fmt in FORMATS}


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), max_size=6),
)
def test_read_image_agrees_with_oracle_on_mutated_images(
    fmt: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    original = _VALID[fmt]
    mutated = bytearray(original[: max(1, round(len(original) * cut))])
    for where, bit in flips:
        mutated[int(where * len(mutated))] ^= 1 << bit
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{FORMATS[fmt]}"
        path.write_bytes(bytes(mutated))
        info = read_image(path, MAX_PIXELS, 1 << 20)
        assert info.readable == fully_decodes(path)
        assert info.readable or info.reason


# --- Generated names and labels through scan -> report (every format) -> gate (every format) ------

PAYLOADS = [
    "<iframe src=x>", "<img src=x onerror=alert(1)>", "</details>", "<!--", "[/]", "[bold red]", "[", "]",
    "`", "``", "\n# heading", "\n\n", "|", "||", "@octocat", "https://evil.example/x.png", "www.evil.example",
    "![i](https://e.example/i.png)", "[l](javascript:alert(1))", "\x1b[31m", "\x1b]0;title\x07", "\u202e", "\r",
    "\t", "&lt;", "&#60;", "*", "**", "_", "__", "~~", "\\", "$x$", "#1", "- ", "1. ", "> ", "=", "{{ x }}",
    "{% x %}", "😀", "猫", "é", "\u200b",
]
_piece = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=6))
_hostile = st.lists(_piece, min_size=1, max_size=6).map("".join)
HOSTILE_TEXT = st.one_of(_hostile, _hostile.map(lambda text: text * 40))  # some very long


def _file_name(text: str, n: int) -> str:
    """A name the file system accepts (no '/', NUL, leading dot; under 255 bytes) that keeps the rest.

    No backslash either: a manifest reads it as a path separator (Windows-written manifests).
    """
    name = text.replace("/", "∕").replace("\\", "∖").replace("\x00", "")[:60].lstrip(".") or "x"
    return f"{name}_{n}.png"


@settings(max_examples=8, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(labels=st.lists(HOSTILE_TEXT, min_size=2, max_size=3), names=st.lists(HOSTILE_TEXT, min_size=3, max_size=3),
       split=HOSTILE_TEXT)
def test_generated_names_and_labels_never_crash_or_leave_data_unescaped(
    labels: list[str], names: list[str], split: str
) -> None:
    import io
    import json

    import pandas as pd
    from rich.console import Console

    from auditor.actions.gate import evaluate
    from auditor.cli.console import print_summary
    from auditor.core.config import GateConfig
    from auditor.report import ReportFormat, ReportOptions, render_results
    from auditor.report.gate_render import GateFormat, render
    from auditor.results.reading import load_results
    from tests.safety import assert_html_safe, assert_markdown_safe, assert_no_control_characters

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        folder = data / _file_name(names[0], 0)[:-4]
        folder.mkdir(parents=True)
        rows = []
        for c, label in enumerate(labels):
            for i in range(3):
                name = _file_name(names[(c + i) % 3], 10 * c + i)
                draw_shape(SHAPES[c % 3], 100 * c + i, size=32).save(folder / name)
                rows.append({"path": f"{folder.name}/{name}", "label": label, "split": split if i else None})
        manifest = root / "manifest.parquet"
        pd.DataFrame(rows).to_parquet(manifest)
        config = load_config(overrides={
            "encoder": {"name": "builtin", "workers": 0},
            "scan": {"workers": 0, "cache_dir": str(root / "cache"),
                     "checks": ["unreadable", "class_imbalance", "duplicates"]},
        })
        result = run_scan(data, config, root / "out", manifest=manifest)
        summary = io.StringIO()
        print_summary(Console(file=summary, width=100, no_color=True), result)
        assert_no_control_characters(summary.getvalue())

        results = root / "out"
        assert_no_control_characters(render_results(results, ReportFormat.TERMINAL, ReportOptions(top=0)))
        assert_markdown_safe(render_results(results, ReportFormat.MARKDOWN, ReportOptions(top=0)))
        assert_html_safe(render_results(results, ReportFormat.HTML), {"iframe"})

        verdict = evaluate(load_results(results), GateConfig(max_findings={"class_imbalance": 0}),
                           load_results(results) if len(labels) == 3 else None)
        assert_markdown_safe(render(verdict, GateFormat.MARKDOWN))
        assert_no_control_characters(render(verdict, GateFormat.TEXT))
        json.loads(render(verdict, GateFormat.JSON))
