"""``audit export``: what each target needs, and what the label-studio export writes and says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from auditor.cli.export import ExportTarget, export_command
from tests.conftest import run_cli, write_class_folder
from tests.safety import assert_no_control_characters

audit = run_cli


def test_label_studio_writes_tasks_and_a_config_beside_them(
    results_with_findings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tasks.json"
    export_command(results_with_findings, "label-studio", out)
    assert json.loads(out.read_text(encoding="utf-8")) == []  # copies and unreadable files are not for annotators
    config = tmp_path / "tasks.label_config.xml"
    assert all(f'value="{name}"' in config.read_text(encoding="utf-8") for name in ("circle", "square", "triangle"))
    shown = capsys.readouterr()
    assert shown.out == f"0 Label Studio task(s) in {out}; labelling config: {config}\n"
    # Bare paths 404 in Label Studio: the export says so, and how to make them resolve.
    assert shown.err.startswith("warning: data.image is the bare dataset-relative path, which Label Studio cannot "
                                "load; pass --local-files ROOT")


def test_an_image_prefix_is_shown_as_how_images_resolve(results_with_findings: Path, tmp_path: Path) -> None:
    done = audit("export", str(results_with_findings), "--to", "label-studio", "--out", str(tmp_path / "t.json"),
                 "--image-prefix", "https://bucket/")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines()[1] == "images: --image-prefix + the URL-encoded dataset-relative path"


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--to", "label-studio"], "--to label-studio needs --out tasks.json"),
     (["--to", "fiftyone", "--dataset", "{tmp}/gone"], "dataset folder not found: {tmp}/gone; pass --dataset"),
     (["--to", "label-studio", "--out", "{tmp}/t.json", "--local-files", "{tmp}", "--image-prefix", "x/"],
      "--local-files and --image-prefix both set data.image: pass one"),
     (["--to", "label-studio", "--out", "{tmp}/t.json", "--local-files", "{tmp}/gone"],
      "--local-files {tmp}/gone: not a folder")],
    ids=["label-studio-no-out", "fiftyone-no-dataset", "two-image-sources", "local-files-not-a-folder"],
)
def test_what_a_target_lacks_is_one_line_exit_2(results_with_findings: Path, tmp_path: Path, extra: list[str],
                                                message: str) -> None:
    assert get_args(ExportTarget) == ("label-studio", "fiftyone")
    done = audit("export", str(results_with_findings), *(arg.format(tmp=tmp_path) for arg in extra))
    assert done.returncode == 2 and done.stderr == f"error: {message.format(tmp=tmp_path)}\n"


def test_local_files_outside_the_dataset_is_exit_2(results_with_findings: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = audit("export", str(results_with_findings), "--to", "label-studio", "--out", str(tmp_path / "t.json"),
                 "--local-files", str(elsewhere))
    assert done.returncode == 2 and "is not inside it (Label Studio serves only files below its" in done.stderr


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    write_class_folder(root / "data", per_class=3)
    done = run_cli("scan", str(root / "data"), "--out", str(root / "out"), "--encoder", "builtin", "--workers", "0",
                   "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "out"


def test_an_unknown_target_is_one_line_naming_every_target(results: Path) -> None:
    result = run_cli("export", str(results), "--to", "csv")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(target in result.stderr for target in get_args(ExportTarget))


def test_the_written_paths_are_shown_escaped(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export_command(results, to="label-studio", out=tmp_path / "tasks\x1b]0;x\x07.json")
    shown = capsys.readouterr().out
    assert "tasks\\x1b]0;x\\x07.json" in shown and "tasks\\x1b]0;x\\x07.label_config.xml" in shown
    assert_no_control_characters(shown)
