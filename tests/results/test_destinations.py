"""Every command that writes refuses a path inside the dataset or over a file of a results set, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.core.config import load_config
from auditor.core.errors import OutputError
from auditor.results.destinations import RESULT_SET_FILES, is_inside, recorded_dataset, refuse_destination
from auditor.scan import run_scan
from tests.conftest import run_cli, write_class_folder


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, results) of a small scan."""
    root = tmp_path_factory.mktemp("scanned")
    write_class_folder(root / "data", per_class=4)
    config = load_config(overrides={"encoder": {"name": "builtin", "workers": 0},
                                    "scan": {"workers": 0, "cache_dir": str(root / "cache"),
                                             "checks": ["unreadable", "class_imbalance"]}})
    run_scan(root / "data", config, root / "out")
    return root / "data", root / "out"


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [
        (["report", "--format", "html"], "--output", "r.html"),
        (["gate", "--format", "json"], "--output", "g.json"),
        (["export", "--to", "label-studio"], "--out", "t.json"),
        (["review", "--accept", "--check", "unreadable", "--path", "x.png", "--reason", "fine"], "--decisions",
         "d.toml"),
        (["fix"], "--out", "m.csv"),
    ],
    ids=["report", "gate", "export", "review", "fix"],
)
def test_no_command_writes_inside_the_dataset(scanned: tuple[Path, Path], command: list[str], option: str,
                                              name: str) -> None:
    data, results = scanned
    before = _listing(data)
    result = run_cli(command[0], str(results), *command[1:], option, str(data / "sub" / name))
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, line
    assert f"{option} " in line and "never writes into a dataset" in line, line
    assert _listing(data) == before


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [
        (["fix"], "--out", "findings.parquet"),
        (["gate", "--format", "json"], "--output", "run.json"),
        (["report", "--format", "markdown"], "--output", "images.parquet"),
        (["export", "--to", "label-studio"], "--out", "run.json"),
    ],
    ids=["fix", "gate", "report", "export"],
)
def test_no_command_writes_over_a_results_file(tmp_path: Path, scanned: tuple[Path, Path], command: list[str],
                                               option: str, name: str) -> None:
    results = scanned[1]
    before = _listing(results)
    result = run_cli(command[0], str(results), *command[1:], option, str(results / name))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"{option} " in result.stderr and f"would overwrite {name}" in result.stderr, result.stderr
    assert _listing(results) == before


def test_a_link_into_the_dataset_is_inside_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    assert is_inside(tmp_path / "alias" / "x.json", tmp_path / "data")
    assert is_inside(tmp_path / "other" / ".." / "data", tmp_path / "data")
    assert not is_inside(tmp_path / "data2" / "x.json", tmp_path / "data")


def test_another_result_set_is_protected_too(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "run.json").write_text(json.dumps({"dataset": {"root": str(tmp_path / "data")}}))
    with pytest.raises(OutputError, match="would overwrite findings.parquet"):
        refuse_destination("--out", tmp_path / "theirs" / "findings.parquet", tmp_path / "mine")
    refuse_destination("--out", tmp_path / "mine" / "clean.parquet", tmp_path / "mine")  # not a result file
    assert "findings.parquet" in RESULT_SET_FILES


@pytest.mark.parametrize("text", ["{", "[]", '{"dataset": []}', '{"dataset": {"root": 3}}', "[" * 100_000])
def test_an_unreadable_run_json_names_no_dataset(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text)
    assert recorded_dataset(tmp_path) is None  # the results reader then says what is wrong with it
