"""The interactive review's state machine, driven by answers as text: no terminal, no prompts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from auditor.actions.review_session import KeyQuestion, ReasonQuestion, ReviewSession
from auditor.results.decisions import load_decisions
from auditor.results.findings import Finding, Severity
from auditor.results.reading import Results
from tests.conftest import draw_shape


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results_with_findings(tmp_path: Path) -> Results:
    """A dataset of three drawn images and, in report order, a label error on one and a copy pair of the others."""
    root = tmp_path / "data"
    (root / "circle").mkdir(parents=True)
    for name, seed in (("a.png", 1), ("b.png", 2), ("c.png", 2)):
        draw_shape("circle", seed).save(root / "circle" / name)
    a, b, c = (sha(root / "circle" / name) for name in ("a.png", "b.png", "c.png"))
    objects = (
        Finding("exact_duplicate", Severity.WARNING, "same bytes as circle/b.png", path="circle/c.png",
                label="circle", score=1.0, other_path="circle/b.png", sha256=c),
        Finding("label_error", Severity.WARNING, "looks like square", path="circle/a.png", label="circle",
                suggested_label="square", score=0.9, sha256=a),
        Finding("label_error", Severity.WARNING, "looks like square, barely", path="circle/b.png", label="circle",
                suggested_label="square", score=0.4, sha256=b),
    )
    run = {
        "dataset": {"root": str(root)},
        "check_info": {
            "label_errors": {"produces": ["label_error"], "kinds": {"label_error": {
                "title": "Label errors", "intro": "", "layout": "labels", "order": 10}}},
            "duplicates": {"produces": ["exact_duplicate"], "kinds": {"exact_duplicate": {
                "title": "Exact copies", "intro": "", "layout": "groups", "order": 20}}},
        },
    }
    images = pd.DataFrame({"path": ["circle/a.png", "circle/b.png", "circle/c.png"], "sha256": [a, b, c],
                           "readable": [True, True, True]})
    (tmp_path / "results").mkdir()
    return Results(tmp_path / "results", run, pd.DataFrame(), images, objects)


def walk(session: ReviewSession, answers: list[str | None]) -> list[KeyQuestion | ReasonQuestion]:
    """Answer each question in turn; the questions asked, in order."""
    asked: list[KeyQuestion | ReasonQuestion] = []
    for text in answers:
        question = session.question()
        assert question is not None, f"the review ended before the answer {text!r}"
        asked.append(question)
        session.answer(text)
    return asked


def test_findings_come_in_report_order_strongest_first_and_decisions_are_written_at_once(tmp_path: Path) -> None:
    results = results_with_findings(tmp_path)
    target = tmp_path / "decisions.toml"
    session = ReviewSession.start(results, target, (), 20, "tester", None)
    first = session.question()
    assert isinstance(first, KeyQuestion)
    assert (first.number, first.total, first.finding.path) == (1, 3, "circle/a.png")
    assert first.title == "1/3 label_error · score 0.9"
    assert first.lines == ("path:      circle/a.png", "label:     circle -> suggested square",
                           "evidence:  looks like square")
    assert first.keys == ("a", "r", "s", "q")
    assert first.legend == "a=accept, r=relabel to suggested, s=skip, q=quit (a and r then ask for a reason)"
    assert first.picture is not None and first.picture.is_file()
    assert first.picture.parent == results.directory / "review-thumbnails"
    assert session.question() is first  # asking again draws no second thumbnail

    session.answer("r")
    reason = session.question()
    assert reason == ReasonQuestion("relabel", "relabelled in review")
    assert isinstance(reason, ReasonQuestion)
    assert reason.prompt == "reason for this relabel (Enter: relabelled in review)"
    assert not target.exists()
    session.answer("")  # an empty answer takes the default reason
    [relabel] = load_decisions(target)
    assert (relabel.action, relabel.path, relabel.new_label, relabel.reason, relabel.who) == (
        "relabel", "circle/a.png", "square", "relabelled in review", "tester")

    second, _ = walk(session, ["a", "a true circle"])
    assert isinstance(second, KeyQuestion) and second.finding.path == "circle/b.png"
    third, = walk(session, ["s"])
    assert isinstance(third, KeyQuestion) and third.finding.check == "exact_duplicate"
    assert third.keys == ("a", "s", "q")
    assert third.legend == "a=accept, s=skip, q=quit (a then asks for a reason)"
    assert third.lines[-1] == "partner:   circle/b.png"
    # A pair's sheet shows both images side by side.
    assert third.picture is not None and Image.open(third.picture).width > Image.open(first.picture).width
    assert session.question() is None
    assert (session.tally.accepted, session.tally.relabelled, session.tally.skipped) == (1, 1, 1)
    assert [d.reason for d in load_decisions(target)] == ["relabelled in review", "a true circle"]
    assert not session.input_ended
    with pytest.raises(ValueError, match="review is over"):
        session.answer("a")

    # Decided findings are not offered again; the skipped one is.
    again = ReviewSession.start(results, target, (), 20, "tester", None)
    assert [f.check for f in again.queue] == ["exact_duplicate"]


def test_quitting_or_running_out_of_answers_stops_the_walk_keeping_what_was_decided(tmp_path: Path) -> None:
    results = results_with_findings(tmp_path)
    target = tmp_path / "decisions.toml"
    quitter = ReviewSession.start(results, target, (), 20, "tester", None)
    walk(quitter, ["s", "q"])
    assert quitter.question() is None and not quitter.input_ended and not target.exists()

    ended = ReviewSession.start(results, target, (), 20, "tester", None)
    walk(ended, ["a", "fine", "a", None])  # input ends at the second finding's reason
    assert ended.question() is None and ended.input_ended
    assert [d.path for d in load_decisions(target)] == ["circle/a.png"]
    assert (ended.tally.accepted, ended.tally.skipped) == (1, 0)


def test_a_key_the_finding_does_not_take_asks_again(tmp_path: Path) -> None:
    results = results_with_findings(tmp_path)
    session = ReviewSession.start(results, tmp_path / "decisions.toml", ("exact_duplicate",), 20, "tester", None)
    pair = session.question()
    assert isinstance(pair, KeyQuestion) and pair.total == 1
    session.answer("r")  # a copy pair suggests no label: relabel is not on offer
    session.answer("x")
    assert session.question() is pair


def test_top_and_the_check_filter_bound_the_walk(tmp_path: Path) -> None:
    results = results_with_findings(tmp_path)
    session = ReviewSession.start(results, tmp_path / "decisions.toml", ("label_error",), 1, "tester", None)
    assert [f.path for f in session.queue] == ["circle/a.png"]
    missing_image = results_with_findings(tmp_path / "other")
    root = Path(missing_image.run["dataset"]["root"])
    (root / "circle" / "a.png").unlink()
    shown = ReviewSession.start(missing_image, tmp_path / "d.toml", (), 1, "tester", None).question()
    # No thumbnail can be drawn: the image's own path is shown instead.
    assert isinstance(shown, KeyQuestion) and shown.picture == root / "circle" / "a.png"


def test_a_file_the_decoder_refused_is_never_offered_to_open(tmp_path: Path) -> None:
    """An unreadable finding (here a file that is no image; in the field a decompression bomb) gets no picture:
    no thumbnail can be drawn, and the raw file is not shown in its place."""
    root = tmp_path / "data"
    (root / "circle").mkdir(parents=True)
    (root / "circle" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    finding = Finding("unreadable", Severity.ERROR, "unreadable: decode failed", path="circle/bomb.png",
                      label="circle", sha256=sha(root / "circle" / "bomb.png"))
    images = pd.DataFrame({"path": ["circle/bomb.png"], "sha256": [finding.sha256], "readable": [False]})
    (tmp_path / "results").mkdir()
    results = Results(tmp_path / "results", {"dataset": {"root": str(root)}}, pd.DataFrame(), images, (finding,))
    shown = ReviewSession.start(results, tmp_path / "d.toml", (), 5, "tester", None).question()
    assert isinstance(shown, KeyQuestion) and shown.finding.path == "circle/bomb.png"
    assert shown.picture is None
    assert shown.legend == "a=accept, s=skip, q=quit (a then asks for a reason)"
