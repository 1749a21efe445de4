"""The CLI through its real entry point: exit codes 0 (ok) and 2 (usage or input error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from tests.conftest import run_cli, write_class_folder


def audit_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m auditor ARGS`` in a fresh process (for what only a real process shows: start-up, env read
    at import, pipes)."""
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


audit = run_cli


def test_version() -> None:
    from auditor import __version__

    result = audit_process("--version")  # one real `python -m auditor` start
    assert result.returncode == 0 and __version__ in result.stdout


def test_scan_writes_outputs_and_summary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=4)
    (data / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = audit("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin",
                   "--workers", "0", "--checks", "unreadable,class_imbalance")
    assert result.returncode == 0, result.stderr
    assert "unreadable" in result.stdout and "builtin:v2" in result.stdout
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert list(run["checks"]) == ["unreadable", "class_imbalance"]
    assert run["findings_per_check"]["unreadable"] == {"error": 1}


def test_auto_encoder_falls_back_with_a_prominent_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    result = audit("scan", str(data), "--out", str(tmp_path / "out"), "--workers", "0",
                   "--checks", "unreadable")
    assert result.returncode == 0, result.stderr
    assert "fell back to the built-in descriptor" in result.stdout
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["encoder"]["requested"] == "auto" and run["encoder"]["name"] == "builtin"
    assert run["encoder"]["fallback_reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "{tmp}/missing"], "dataset folder not found"),
        (["scan", "{tmp}/empty"], "no images found"),
        (["scan", "{data}", "--checks", "nonsense"], "unknown check"),
        (["scan", "{data}", "--config", "{tmp}/bad.toml"], "not valid TOML"),
        (["scan", "{data}", "--config", "{tmp}/typo.toml"], "encoder.batchsize"),
        (["scan", "{data}", "--config", "{tmp}/nope.toml"], "config file not found"),
        (["scan", "{data}", "--encoder", "clip"], "not available on this machine"),
        (["scan", "{data}", "--out", "{data}/inside"], "never writes into a dataset"),
        (["scan", "{data}", "--bogus-option"], "No such option"),
        (["scan"], "Missing argument"),
    ],
    ids=["missing", "empty", "unknown-check", "bad-toml", "typo-key", "no-config", "clip-no-weights",
         "out-inside", "bad-option", "no-dataset"],
)
def test_usage_and_input_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=2)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "bad.toml").write_text("[encoder\nname=")
    (tmp_path / "typo.toml").write_text("[encoder]\nbatchsize = 3\n")
    filled = [a.format(tmp=tmp_path, data=data) for a in args]
    if "--out" not in filled and filled[:1] == ["scan"] and len(filled) > 1:
        filled += ["--out", str(tmp_path / "out")]
    result = audit(*filled)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    if args[-1] in ("--bogus-option", "scan"):  # click's own errors: one line, never a box, saying how to call
        assert result.stderr.count("\n") == 1 and "╭" not in result.stderr
        assert "(usage: audit scan [OPTIONS] DATASET; audit scan -h for help)" in result.stderr


def test_help_names_arguments_as_written() -> None:
    """The usage line reads ``DATASET``, as the help text does (typer writes ``{DATASET}``)."""
    for command, argument in (("scan", "DATASET"), ("gate", "RESULTS"), ("review", "RESULTS"), ("fix", "RESULTS")):
        usage = next(line for line in audit(command, "--help").stdout.splitlines() if "Usage:" in line)
        assert f"Usage: audit {command} [OPTIONS] {argument}" in usage and "{" not in usage, usage


def test_config_errors_name_their_origin_and_suggest_the_near_miss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=2)
    typo = tmp_path / "typo.toml"
    typo.write_text("[encoder]\nbatchsize = 3\n", encoding="utf-8")
    section = tmp_path / "section.toml"
    section.write_text("[checks.label_erors]\n", encoding="utf-8")
    cases = [
        (["--config", str(typo)], ["encoder.batchsize", "did you mean 'batch_size'", str(typo)]),
        (["--checks", "label_error"], ["in --checks", "did you mean 'label_errors'"]),
        (["--config", str(section)], ["[checks.label_erors]", "did you mean 'label_errors'"]),
        (["--batch-size", "0"], ["encoder.batch_size", "command-line option"]),
        (["--encoder", "builtin", "--device", "cuda"], ["'cuda'", "CPU only"]),
    ]
    for extra, expected in cases:
        done = audit("scan", str(data), "--out", str(tmp_path / "out"), *extra)
        assert done.returncode == 2, (extra, done.stderr)
        for text in expected:
            assert text in done.stderr, (extra, text, done.stderr)
        assert "Traceback" not in done.stderr


def test_quiet_still_warns_and_gate_names_encoder_and_what_broke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    (data / "circle" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    done = audit_process("scan", str(data), "--out", str(out), "--encoder", "auto", "--quiet", "--workers", "0",
                  env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert any("fell back" in line or "builtin" in line for line in warnings), done.stderr
    gate = audit("gate", str(out))
    assert gate.returncode == 1
    assert "encoder: builtin:" in gate.stdout
    last = gate.stdout.strip().splitlines()[-1]
    assert last.startswith("gate FAILED: 1 of ") and "1 finding to fix" in last, last
    markdown = audit("gate", str(out), "--format", "markdown").stdout
    assert "Encoder: `builtin:" in markdown and "1 finding to fix" in markdown


def test_a_bad_choice_is_one_line_naming_the_allowed_values(tmp_path: Path) -> None:
    for args, allowed in [(["report", str(tmp_path), "--format", "pdf"], "terminal, markdown, html"),
                          (["gate", str(tmp_path), "-f", "xml"], "text, markdown, json"),
                          (["export", str(tmp_path), "--to", "cvat"], "label-studio, fiftyone")]:
        result = audit(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and allowed in lines[0] and lines[0].startswith("error:"), result.stderr


@pytest.fixture(scope="module")
def passing_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results whose gate passes: clean images, only the unreadable check."""
    root = tmp_path_factory.mktemp("passing")
    write_class_folder(root / "data", per_class=3)
    done = audit("scan", str(root / "data"), "--out", str(root / "out"), "--encoder", "builtin", "--workers", "0",
                 "--checks", "unreadable", "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "out"


def _with_reader_gone(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has already left (`| head -0`): every write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "auditor", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write_end)


def test_a_reader_leaving_early_keeps_the_gate_verdict_and_prints_nothing(passing_results: Path) -> None:
    for fmt in ("text", "json"):
        gate = _with_reader_gone("gate", str(passing_results), "--format", fmt)
        assert gate.returncode == 0, (fmt, gate.stderr)  # typer alone exits 1 ("gate failed") on EPIPE
        assert gate.stderr == "", gate.stderr
    report = _with_reader_gone("report", str(passing_results))
    assert report.returncode == 0 and report.stderr == "", report.stderr


def test_a_reader_leaving_help_or_version_early_is_exit_0_and_silent() -> None:
    for args in (("--version",), ("gate", "--help"), ("--help",)):
        result = _with_reader_gone(*args)
        assert result.returncode == EXIT_OK and result.stderr == "", (args, result.returncode, result.stderr)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_a_full_standard_output_is_exit_2_with_one_line(passing_results: Path, tmp_path: Path) -> None:
    """Once an internal error (exit 70), and the gate's verdict was lost."""
    data = tmp_path / "data"
    write_class_folder(data, per_class=3)
    scan = ("scan", str(data), "--out", str(tmp_path / "out"), "--encoder", "builtin", "--workers", "0",
            "--checks", "unreadable")
    for args in (("--version",), ("gate", "--help"), ("gate", str(passing_results)), ("report", str(passing_results)),
                 scan):
        with open("/dev/full", "w") as full:
            result = subprocess.run([sys.executable, "-m", "auditor", *args], stdout=full, stderr=subprocess.PIPE,
                                    text=True, timeout=300)
        lines = result.stderr.splitlines()
        assert result.returncode == EXIT_USAGE and len(lines) == 1, (args, result.returncode, result.stderr)
        assert "No space left on device" in lines[0], args
        if args == ("gate", str(passing_results)):
            assert lines[0].startswith("error: the gate passed, but its verdict could not be written"), lines
    assert (tmp_path / "out" / "run.json").is_file()  # the scan's results were written all the same


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(
    passing_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fix and export once exited 130 without a word (typer turns an uncaught Ctrl-C into a silent exit)."""
    import auditor.actions.exports
    import auditor.actions.fix
    import auditor.actions.gate
    import auditor.report
    from auditor.cli.terminal import LEFT_AS_THEY_WERE

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(auditor.report, "render_results", interrupted)
    monkeypatch.setattr(auditor.actions.gate, "evaluate", interrupted)
    monkeypatch.setattr(auditor.actions.fix, "plan_fix", interrupted)
    monkeypatch.setattr(auditor.actions.exports, "label_studio_tasks", interrupted)
    for args, left in [(["report", str(passing_results)], "no report was written"),
                       (["gate", str(passing_results)], "no verdict was given"),
                       (["fix", str(passing_results), "--out", str(tmp_path / "m.csv")], LEFT_AS_THEY_WERE),
                       (["export", str(passing_results), "--to", "label-studio", "--out", str(tmp_path / "t.json")],
                        LEFT_AS_THEY_WERE)]:
        result = audit(*args)
        assert result.returncode == EXIT_INTERRUPTED, (args, result.stderr)
        assert result.stderr.strip() == f"interrupted: {left}", result.stderr
