"""`audit report`: the three formats on real scan results, size caps at 10,000 findings, and the HTML
page driven in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from auditor.checks import check_record
from auditor.core.config import load_config
from auditor.core.errors import AuditorError
from auditor.report import RENDERERS, ReportFormat, ReportOptions, load_results, render, render_results
from auditor.report.markdown import MAX_CHARS
from auditor.report.thumbnails import Thumbnailer
from auditor.results.findings import IMAGES_BASE_SCHEMA, SCHEMA_VERSION, Finding, Severity, findings_table
from auditor.results.outputs import TableWriter, atomic_write, write_json, write_parquet
from auditor.scan import run_scan
from tests.conftest import draw_shape, run_cli, write_class_folder
from tests.report.test_report_base import results_folder

SEED = 7
HTML_LIMIT = 30 * 1024 * 1024


audit = run_cli  # in this process, through main() (tests/conftest.py)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real scan (builtin encoder) of a small drawn dataset: splits, a broken file, a starved class."""
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    write_class_folder(data / "train", per_class=8, seed=1)
    write_class_folder(data / "val", per_class=3, seed=2)
    (data / "train" / "hexagon").mkdir()
    draw_shape("circle", 99).save(data / "train" / "hexagon" / "odd_one.png")
    (data / "train" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    # Only the checks whose findings the tests below count exactly; every_kind adds the other kinds.
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"cache_dir": str(root / "cache"), "workers": 0,
                                             "checks": ["unreadable", "class_imbalance"]}})
    run_scan(data, config, root / "out")
    return root / "out"


def _copy_results(source: Path, target: Path, extra: list[Finding] | None = None,
                  run_changes: dict[str, Any] | None = None) -> Path:
    """A results folder derived from a real one: extra findings appended, run.json keys replaced."""
    results = load_results(source)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "images.parquet", target / "images.parquet")
    shutil.copy(source / "embeddings.parquet", target / "embeddings.parquet")
    write_json(target / "run.json", {**results.run, **(run_changes or {})})
    _write_findings(target, results.finding_objects() + (extra or []))
    return target


def _write_findings(folder: Path, findings: list[Finding]) -> None:
    """Replace a results folder's findings; they join its set, so they carry its run id."""
    run_id = json.loads((folder / "run.json").read_text())["run_id"]
    atomic_write(folder / "findings.parquet", TableWriter(findings_table(findings)).stamped(run_id))


@pytest.fixture(scope="module")
def every_kind(scanned: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real scan plus findings of every other kind, with known counts and scores, on real images."""
    w = Severity.WARNING
    extra = [
        Finding("label_error", Severity.ERROR, "looks like a square", path="train/circle/circle_003.png",
                label="circle", split="train", suggested_label="square", score=0.93),
        Finding("label_error", Severity.ERROR, "looks like a triangle", path="train/square/square_001.png",
                label="square", split="train", suggested_label="triangle", score=0.71),
        Finding("near_duplicate", w, "near copy", path="train/square/square_002.png", label="square",
                split="train", group_id=1, other_path="train/square/square_004.png", score=0.97),
        Finding("near_duplicate", w, "near copy", path="train/square/square_004.png", label="square",
                split="train", group_id=1, other_path="train/square/square_002.png", score=0.97),
        Finding("split_leakage", Severity.ERROR, "also in train", path="val/triangle/triangle_000.png",
                label="triangle", split="val", group_id=2, other_path="train/triangle/triangle_005.png"),
        Finding("class_overlap", w, "circle and hexagon overlap", classes=("circle", "hexagon"), score=0.8),
        Finding("sharpness_probe", Severity.INFO, "a check this report has never heard of",
                path="train/triangle/triangle_001.png", label="triangle", split="train", score=0.2),
    ]
    return _copy_results(scanned, tmp_path_factory.mktemp("kinds") / "out", extra)


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(ReportFormat)
    assert {fmt.value for fmt in ReportFormat} == {"terminal", "markdown", "html"}


@pytest.mark.parametrize("fmt", list(ReportFormat), ids=lambda f: f.value)
def test_formats_render_the_real_scan(scanned: Path, fmt: ReportFormat) -> None:
    text = render_results(scanned, fmt)
    results = load_results(scanned)
    assert "train/circle/broken.png" in text  # the unreadable file, listed in every format
    assert results.run["encoder"]["identity"] in text
    assert set(results.findings["check"]) <= {c for c in results.findings["check"] if c in text}


def test_terminal_shows_class_bars_encoder_and_fallback_warning(scanned: Path, tmp_path: Path) -> None:
    run = load_results(scanned).run
    fallback = {**run["encoder"], "requested": "auto", "fallback_reason": "no weights for ViT-B-32 here"}
    warning = "CLIP weights unavailable, fell back to the built-in descriptor (lower quality): no weights"
    folder = _copy_results(scanned, tmp_path / "fb", run_changes={"encoder": fallback, "warnings": [warning]})
    text = render_results(folder, ReportFormat.TERMINAL, ReportOptions(width=200))
    assert "fell back to the built-in descriptor" in text and "requested auto" in text
    train_bars = re.search(r"Classes in train(.*?)Classes in val", text, re.S)
    assert train_bars is not None
    bars = {line.split()[0]: line.count("█") for line in train_bars.group(1).splitlines() if "█" in line}
    assert bars["circle"] == bars["square"] == 30 and 0 < bars["hexagon"] < 10


def test_terminal_quality_table_never_cuts_a_kind_short(scanned: Path, tmp_path: Path) -> None:
    """Kind names head the per-class quality table one word per line, so they fit whole at 100 columns, and
    narrower they fold: never cut short with "…" (a 120-column report cut low_information to low_informat…)."""
    run = load_results(scanned).run
    kinds = ("low_information", "odd_aspect_ratio", "overexposed", "letterboxed", "greyscale", "odd_size")
    per_class = {name: {"images": 10, **dict.fromkeys(kinds, 1)} for name in ("circle", "square")}
    checks = {**run["checks"], "image_quality": {"per_class": per_class}}
    folder = _copy_results(scanned, tmp_path / "q", run_changes={"checks": checks})
    for width in (60, 80, 100):
        text = render_results(folder, ReportFormat.TERMINAL, ReportOptions(width=width))
        table = text.split("Image quality by class")[1].split("finding(s)")[0]
        assert "…" not in table, table  # folded where it must be, never cut
    assert "information" in table and "aspect_" in table and "overexposed" in table  # whole at 100 columns


def test_terminal_sorts_by_score_and_respects_top(every_kind: Path) -> None:
    text = render_results(every_kind, ReportFormat.TERMINAL, ReportOptions(top=1, width=200))
    table = text.split("label_error: 2 finding(s), top 1 by score")[1].split("finding(s)")[0]
    assert "train/circle/circle_003.png" in table and "square_001.png" not in table


def test_check_filter_and_unknown_check(every_kind: Path) -> None:
    text = render_results(every_kind, ReportFormat.MARKDOWN, ReportOptions(checks=("label_error",)))
    assert "circle_003.png" in text and "broken.png" not in text
    grouped = render_results(every_kind, ReportFormat.MARKDOWN, ReportOptions(checks=("duplicates",)))
    assert "near_duplicate" in grouped and "split_leakage" in grouped and "label_error" not in grouped
    with pytest.raises(AuditorError, match="unknown check 'nonsense'"):
        render_results(every_kind, ReportFormat.MARKDOWN, ReportOptions(checks=("nonsense",)))


@pytest.mark.parametrize("fmt", list(ReportFormat), ids=lambda f: f.value)
def test_a_clean_dataset_renders(scanned: Path, tmp_path: Path, fmt: ReportFormat) -> None:
    folder = _copy_results(scanned, tmp_path / "clean", run_changes={"warnings": ["one", "two"]})
    _write_findings(folder, [])
    text = render_results(folder, fmt)
    assert ("No findings" in text) if fmt is ReportFormat.HTML else ("no findings" in text)
    if fmt is ReportFormat.MARKDOWN:
        assert text.count("> [!WARNING]") == 2 and "> one\n\n> [!WARNING]" in text


def test_markdown_counts_and_details(every_kind: Path) -> None:
    text = render_results(every_kind, ReportFormat.MARKDOWN)
    assert "| label_error | 2 | 0 | 0 | 2 |" in text
    kinds = load_results(every_kind).findings["check"].nunique()
    assert text.count("<details>") == text.count("</details>") == kinds
    assert "circle → square" in text


def test_html_layouts_for_every_kind(every_kind: Path) -> None:
    html = render_results(every_kind, ReportFormat.HTML)
    assert len(re.findall(r'<img class="thumb" src="data:image/webp;base64,', html)) >= 6
    # The near-duplicate group shows both images side by side; leakage shows both splits.
    group = re.search(r'data-check="near_duplicate".*?</article>', html, re.S)
    assert group and "square_002.png" in group.group(0) and "square_004.png" in group.group(0)
    leak = re.search(r'data-check="split_leakage".*?</article>', html, re.S)
    assert leak and "train/triangle/triangle_005.png" in leak.group(0) and ">val<" in leak.group(0)
    # A grouped section's heading counts its groups and their findings, as the summary table counts findings.
    findings = load_results(every_kind).findings
    pairs = int((findings["check"] == "near_duplicate").sum())
    assert f'Near duplicates <span class="muted">(1 group · {pairs} findings)</span>' in html
    assert f"{len(findings)} findings in all" in html
    assert "Sharpness probe" in html  # an unknown kind gets the generic layout under its own name
    assert 'data-classes=\'["circle", "square"]\'' in html.replace("&#34;", '"')
    assert "Readable images per class in train" in html and 'id="map-heading"' in html
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attribute.startswith(("data:", "#")), attribute


def test_html_marks_the_severity_of_every_entry(every_kind: Path) -> None:
    html = render_results(every_kind, ReportFormat.HTML)
    entries = re.findall(r'<(?:article|tr) class="(?:card|group|row) level-(\w+)" id="entry-\d+" data-item', html)
    assert len(entries) == html.count(" data-item ") == len(re.findall(r'<span class="sev sev-', html))
    assert set(entries) == {"error", "warning", "info"}
    card = re.search(r'id="entry-\d+" data-item data-check="label_error".*?</article>', html, re.S)
    assert card and '<span class="sev sev-error">✖ error</span>' in card.group(0)


def test_html_shows_an_unreliable_finding_as_info(scanned: Path, tmp_path: Path) -> None:
    demoted = Finding("label_error", Severity.INFO, "looks like a square", path="train/circle/circle_003.png",
                      label="circle", split="train", suggested_label="square", score=0.93, details={"reliable": False})
    html = render_results(_copy_results(scanned, tmp_path / "out", [demoted]), ReportFormat.HTML)
    card = re.search(r'<article class="card level-(\w+)"[^>]*data-check="label_error".*?</article>', html, re.S)
    assert card and card.group(1) == "info"
    assert "ⓘ info · unreliable" in card.group(0) and "sev-error" not in card.group(0)


def test_html_embedding_map_links_flagged_images_to_their_entries(every_kind: Path) -> None:
    html = render_results(every_kind, ReportFormat.HTML)
    embedded = pq.read_table(every_kind / "embeddings.parquet").num_rows
    assert html.count("<circle ") == embedded  # a small dataset: every image is drawn
    links = dict(re.findall(r'<a href="#(entry-\d+)" class="flag flag-\w+"><circle [^>]*><title>([^<]*)</title>', html))
    assert set(links) <= set(re.findall(r' id="(entry-\d+)"', html))
    target = next(anchor for anchor, title in links.items() if title.startswith("train/circle/circle_003.png"))
    assert re.search(f'id="{target}" data-item data-check="label_error"', html)
    # Flagged images are drawn last, on top of the plain ones.
    assert html.rindex('r="2.5"') < html.index('class="flag')
    assert "Findings per class" in html and "circle: " in html


def test_html_without_embeddings_says_why_there_is_no_map(every_kind: Path, tmp_path: Path) -> None:
    out = _copy_results(every_kind, tmp_path / "out")
    (out / "embeddings.parquet").unlink()
    html = render_results(out, ReportFormat.HTML)
    assert 'id="map-heading"' not in html and "No embedding map: embeddings.parquet cannot be read" in html
    # One from another scan would place the findings wrongly: it is not drawn either.
    embeddings = pq.read_table(every_kind / "embeddings.parquet")
    metadata = {**embeddings.schema.metadata, b"auditor_run_id": b"0" * 32}
    pq.write_table(embeddings.replace_schema_metadata(metadata), out / "embeddings.parquet")
    html = render_results(out, ReportFormat.HTML)
    assert "No embedding map: embeddings.parquet is from another scan than the findings" in html


def test_html_gives_up_thumbnails_when_text_takes_the_room(every_kind: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.report.html as html_module

    full = render_results(every_kind, ReportFormat.HTML)
    thumbnail_bytes = sum(map(len, re.findall(r'src="(data:[^"]*)"', full)))
    cap = len(full.encode()) - thumbnail_bytes // 2  # room for about half of the thumbnails
    monkeypatch.setattr(html_module, "MAX_HTML_BYTES", cap)
    smaller = render_results(every_kind, ReportFormat.HTML)
    assert len(smaller.encode()) <= cap and 0 < smaller.count("<img ") < full.count("<img ")
    assert "thumbnail(s) left out" in smaller


def test_thumbnails_refuse_paths_outside_the_dataset_and_respect_the_budget(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    draw_shape("circle", 1).save(root / "a.png")
    draw_shape("square", 2).save(tmp_path / "secret.png")
    thumbs = Thumbnailer(root, {"a.png": True, "../secret.png": True, "b.png": False}, 10**8)
    assert thumbs.uri("../secret.png") is None and thumbs.uri("b.png") is None
    first = thumbs.uri("a.png")
    assert first is not None and first.startswith("data:image/webp;base64,")
    tight = Thumbnailer(root, {"a.png": True}, 10**8, budget_bytes=len(first) + 10)
    assert tight.uri("a.png") == first and tight.uri("a.png") is None and tight.omitted == 1


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 findings of every kind over 400 incompressible (noise) images: the worst case for size."""
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(SEED)
    classes = [f"class_{i:02d}" for i in range(20)]
    paths = []
    for i in range(400):
        label = classes[i % len(classes)]
        path = f"train/{label}/img_{i:04d}.png"
        (root / "data" / "train" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(root / "data" / path)
        paths.append((path, label))
    kinds = ["unreadable", "class_imbalance", "label_error", "class_overlap", "split_leakage",
             "exact_duplicate", "near_duplicate", "ambiguous", "outlier", "never_seen"]
    findings = []
    for n in range(10_000):
        kind = kinds[n % len(kinds)]
        path, label = paths[n % len(paths)]
        other, _ = paths[(n * 7 + 1) % len(paths)]
        long = " and a long explanation" * (n % 20)
        if kind in {"class_imbalance", "class_overlap"}:
            findings.append(Finding(kind, Severity.WARNING, f"classes {n}{long}", split="train",
                                    classes=(label, classes[(n + 1) % 20]), score=float(rng.random())))
        else:
            findings.append(Finding(
                kind, Severity.ERROR if n % 3 else Severity.INFO, f"finding {n} | with <markup>{long}",
                path=path, label=label, split="train", score=float(rng.random()),
                suggested_label=classes[(n + 3) % 20] if kind == "label_error" else None,
                group_id=n // 20 if "dup" in kind or "leak" in kind else None,
                other_path=other if "dup" in kind or "leak" in kind else None,
                classes=(label, classes[(n + 5) % 20]) if kind == "ambiguous" else (),
                details={"reason": "decode failed"} if kind == "unreadable" else {},
            ))
    out = root / "out"
    write_parquet(out / "findings.parquet", findings_table(findings))
    table = pa.Table.from_pydict(
        {name: [None] * len(paths) for name in IMAGES_BASE_SCHEMA.names}
        | {"path": [p for p, _ in paths], "label": [lab for _, lab in paths], "split": ["train"] * len(paths),
           "readable": [True] * len(paths)},
        schema=IMAGES_BASE_SCHEMA,
    ).replace_schema_metadata({"auditor_schema_version": SCHEMA_VERSION, "auditor_table": "images"})
    write_parquet(out / "images.parquet", table)
    write_json(out / "run.json", {
        "schema_version": SCHEMA_VERSION, "tool_version": "test", "created": "now",
        "dataset": {"root": str(root / "data"), "classes": classes, "splits": ["train"], "files": len(paths),
                    "readable": len(paths), "counts": {"train": dict.fromkeys(classes, 20)}},
        "encoder": {"name": "builtin", "identity": "builtin:v2", "pretrained": False},
        "config": {"scan": {"max_image_pixels": load_config().scan.max_image_pixels}},
        "checks": {}, "warnings": [],
        "check_info": check_record(),  # what a scan records: which kinds each check makes, how to show them
    })
    return out


@pytest.mark.slow
def test_ten_thousand_findings_stay_within_size_limits(ten_thousand: Path) -> None:
    results = load_results(ten_thousand)
    markdown = render(results, ReportFormat.MARKDOWN, ReportOptions(top=0))
    assert len(markdown) < MAX_CHARS
    left = re.search(r"_([\d,]+) of 10,000 findings are not listed here", markdown)
    assert left is not None
    listed = markdown.count("\n| ") - markdown.count("\n| check |") - markdown.count("\n| score |") - 10
    assert int(left.group(1).replace(",", "")) == 10_000 - listed
    html = render(results, ReportFormat.HTML, ReportOptions(top=0))
    assert len(html.encode()) < HTML_LIMIT
    assert html.count("<img ") > 1000 and "thumbnail(s) left out to keep this file small" in html
    # Every finding is listed (grouped kinds as groups), so the cap came from thumbnails, not from rows.
    groups = {(f.check, f.group_id) for f in results.finding_objects() if f.group_id is not None}
    assert html.count(" data-item ") == 10_000 - 3_000 + len(groups)


def test_cli_report_formats_and_errors(every_kind: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    done = audit("report", str(every_kind), "--format", "html", "--output", str(page))
    assert done.returncode == 0, done.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")
    md = audit("report", str(every_kind), "--format", "markdown", "--top", "1", "--check", "label_error")
    assert md.returncode == 0 and "circle_003.png" in md.stdout and "square_001.png" not in md.stdout
    term = audit("report", str(every_kind))
    assert term.returncode == 0 and "Classes in train" in term.stdout

    broken = _copy_results(every_kind, tmp_path / "broken")
    (broken / "findings.parquet").write_bytes(b"PAR1 truncated")
    missing = _copy_results(every_kind, tmp_path / "missing")
    (missing / "run.json").unlink()
    old = _copy_results(every_kind, tmp_path / "old", run_changes={"schema_version": "0.1"})
    for folder, message in [(broken, "cannot read"), (missing, "no run.json"), (old, "schema version 0.1"),
                            (tmp_path / "nowhere", "results folder not found")]:
        result = audit("report", str(folder))
        assert result.returncode == 2 and message in result.stderr, (folder, result.stderr)


# --- headless Chromium ---------------------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage", "--window-size=1280,1600")


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages when missing (needs root + apt)."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install '.[test]')")
    found = _chromium()
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium",
                                                       "chromium-driver"]):
            subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        found = _chromium()
    if found is None:
        pytest.skip("Chromium cannot be installed here (needs the Debian packages chromium and "
                    "chromium-driver, root and apt-get)")
    return found


@pytest.mark.slow
def test_html_in_headless_chromium(chromium: tuple[str, str], every_kind: Path, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    page = tmp_path / "report.html"
    page.write_text(render_results(every_kind, ReportFormat.HTML), encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromium[1]))
    try:
        driver.get(page.as_uri())
        images = driver.find_elements(By.CSS_SELECTOR, "img.thumb")
        assert len(images) >= 6
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1)")
        assert all(w > 0 for w in widths), widths
        assert all(img.get_attribute("alt") for img in images)

        def visible(selector: str = "[data-item]") -> list[Any]:
            return [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]

        total = len(driver.find_elements(By.CSS_SELECTOR, "[data-item]"))
        assert len(visible()) == total
        Select(driver.find_element(By.ID, "filter-check")).select_by_value("label_error")
        assert [e.get_attribute("data-check") for e in visible()] == ["label_error", "label_error"]
        assert driver.find_element(By.ID, "filter-status").text == f"Showing 2 of {total} entries."
        Select(driver.find_element(By.ID, "filter-class")).select_by_value("triangle")
        shown = visible()
        assert len(shown) == 1 and "square_001.png" in shown[0].text
        Select(driver.find_element(By.ID, "filter-check")).select_by_value("")
        assert all("triangle" in json.loads(e.get_attribute("data-classes")) for e in visible())
        assert len(visible()) < total
        Select(driver.find_element(By.ID, "filter-class")).select_by_value("")
        assert len(visible()) == total

        # A dot on the embedding map goes to its image's entry, clearing the filters that hide it.
        entry = driver.find_element(By.CSS_SELECTOR, '[data-item][data-check="label_error"]').get_attribute("id")
        Select(driver.find_element(By.ID, "filter-check")).select_by_value("near_duplicate")
        assert not driver.find_element(By.ID, entry).is_displayed()
        dot = driver.find_element(By.CSS_SELECTOR, f'a.flag[href="#{entry}"]')
        driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}))",
                              dot)
        WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, entry).is_displayed())
        assert driver.execute_script("return location.hash") == f"#{entry}" and len(visible()) == total

        # The whole page at a desktop's and a phone's width: nothing scrolls sideways at 390 px.
        for width in (1400, 390):
            driver.set_window_size(width, 900)
            assert driver.execute_script("return window.innerWidth") == width
            assert driver.execute_script("return document.documentElement.scrollWidth") <= width
            # Nor past the vertical scroll bar, which takes its width from the page.
            assert driver.execute_script("return document.documentElement.scrollWidth "
                                         "<= document.documentElement.clientWidth")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(height + 100, 8000))
            screenshot = tmp_path / f"report-{width}.png"
            assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
        urls = {m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"}
        # The page's own requests are file: and data:; Chromium's start page adds chrome: ones.
        assert urls and not {url for url in urls if urlsplit(url).scheme in {"http", "https", "ws", "wss"}}
    finally:
        driver.quit()


def test_markdown_header_shows_the_version_as_written_and_data_neutralised(tmp_path: Path) -> None:
    results_folder(tmp_path / "plain", [], {"tool_version": "0.1.0"})
    text = render_results(tmp_path / "plain", ReportFormat.MARKDOWN)
    assert "· auditor 0.1.0\n" in text and "0\\.1" not in text
    results_folder(tmp_path / "hostile", [], {"tool_version": "1) [x](http://e.com)"})
    hostile = render_results(tmp_path / "hostile", ReportFormat.MARKDOWN)
    assert "auditor 1) \\[x\\](http:" in hostile
