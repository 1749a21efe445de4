"""One exception family: every input problem is an ``AuditorError``, which the CLI turns into exit code 2 and a
one-line message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.core.config import load_config
from auditor.core.errors import AuditorError, ConfigError, DatasetError, EncoderUnavailable, OutputError
from auditor.results.outputs import prepare_results_dir
from auditor.scan import run_scan
from tests.conftest import run_cli


@pytest.mark.parametrize("error", [ConfigError, DatasetError, EncoderUnavailable, OutputError])
def test_every_input_error_is_an_auditor_error(error: type[Exception]) -> None:
    assert issubclass(error, AuditorError) and not issubclass(AuditorError, error)


def test_each_layer_raises_its_kind_of_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        run_scan(tmp_path / "no-such-data", load_config(), tmp_path / "out")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        prepare_results_dir(tmp_path / "a-file", frozenset())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "{tmp}/no-such-data", "--out", "{tmp}/out"], "error: dataset folder not found: {tmp}/no-such-data\n"),
        (["report", "{tmp}/no-such-results"], "error: results folder not found: {tmp}/no-such-results\n"),
    ],
)
def test_the_cli_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stderr == message.format(tmp=tmp_path)
