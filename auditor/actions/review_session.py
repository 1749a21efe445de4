"""Interactive review without a terminal: which finding to show next, which answers it takes, what they decide.

The session asks questions (a key for the finding on show, then a reason for an accept or a relabel) and takes
the answers as text; whoever drives it only reads and writes them. Each decision is written to the decisions
file as soon as its reason is given, so stopping at any point keeps what was decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from auditor.actions.review import (
    existing_decisions,
    make_decision,
    review_queue,
    review_thumbnail,
    write_decisions,
)
from auditor.results.findings import Finding
from auditor.results.reading import Results

# PIL's own decompression-bomb limit, for results whose run.json records none.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
ACCEPT, RELABEL, SKIP, QUIT = "a", "r", "s", "q"
DEFAULT_REASONS = {"accept": "accepted in review", "relabel": "relabelled in review"}


@dataclass(frozen=True)
class KeyQuestion:
    """A finding on show and the keys it takes (relabel only where the finding suggests a label)."""

    number: int
    total: int
    finding: Finding
    # The thumbnail sheet to open, or the image itself when no thumbnail could be drawn but the scan decoded it;
    # None for a file the decoder refused (a decompression bomb, a corrupt file): never pointed at to be opened.
    picture: Path | None
    keys: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.number}/{self.total} {self.finding.check} · score {self.finding.score:.3g}"

    @property
    def lines(self) -> tuple[str, ...]:
        """The finding as a reviewer reads it: image, label (and the suggested one), evidence, partner."""
        label = f"label:     {self.finding.label or '(none)'}"
        if self.finding.suggested_label:
            label += f" -> suggested {self.finding.suggested_label}"
        partner = (f"partner:   {self.finding.other_path}",) if self.finding.other_path else ()
        return (f"path:      {self.finding.path or ''}", label, f"evidence:  {self.finding.message}", *partner)

    @property
    def legend(self) -> str:
        relabel = "r=relabel to suggested, " if RELABEL in self.keys else ""
        then = "a and r then ask" if RELABEL in self.keys else "a then asks"
        return f"a=accept, {relabel}s=skip, q=quit ({then} for a reason)"


@dataclass(frozen=True)
class ReasonQuestion:
    """Why the finding on show is accepted or relabelled; an empty answer is not one (the default stands in)."""

    action: str
    default: str

    @property
    def prompt(self) -> str:
        """Says what is asked and what Enter gives, so the next key pressed is not taken for a reason unawares."""
        return f"reason for this {self.action} (Enter: {self.default})"


@dataclass
class Tally:
    accepted: int = 0
    relabelled: int = 0
    skipped: int = 0


class ReviewSession:
    """Walks the undecided image findings (report order, strongest evidence first), one question at a time."""

    def __init__(self, results: Results, target: Path, queue: list[Finding], who: str, until: date | None) -> None:
        self.results = results
        self.target = target
        self.queue = queue
        self.who = who
        self.until = until
        self.tally = Tally()
        # True when the answers ran out (None) before the walk did.
        self.input_ended = False
        self._index = 0
        self._stopped = False
        self._on_show: KeyQuestion | None = None
        self._pending: str | None = None  # the action waiting for its reason
        dataset = results.run.get("dataset") or {}
        scan = (results.run.get("config") or {}).get("scan") or {}
        self._root = Path(str(dataset.get("root") or "."))
        self._max_pixels = int(scan.get("max_image_pixels") or DEFAULT_MAX_IMAGE_PIXELS)
        images = results.images
        self._decoded = set(images.loc[images["readable"].astype(bool), "path"].astype(str))

    @classmethod
    def start(cls, results: Results, target: Path, checks: tuple[str, ...], top: int, who: str,
              until: date | None) -> ReviewSession:
        """The top ``top`` findings of kinds ``checks`` (all when empty) not yet decided in ``target``."""
        return cls(results, target, review_queue(results, checks, existing_decisions(target), top), who, until)

    def question(self) -> KeyQuestion | ReasonQuestion | None:
        """What to ask now; None once the walk is over (every finding seen, quit, or the answers ran out)."""
        if self._stopped or self._index >= len(self.queue):
            return None
        if self._pending is not None:
            return ReasonQuestion(self._pending, DEFAULT_REASONS[self._pending])
        if self._on_show is None:
            self._on_show = self._show(self._index)
        return self._on_show

    def answer(self, text: str | None) -> None:
        """Take the answer to ``question()``; None: the answers ended, which stops the walk like quitting.

        A key the finding on show does not take asks again."""
        question = self.question()
        if question is None:
            raise ValueError("the review is over; there is no question to answer")
        if text is None:
            self.input_ended = self._stopped = True
        elif isinstance(question, ReasonQuestion):
            self._decide(question.action, text or question.default)
        elif text in question.keys:
            self._press(text)

    def _show(self, index: int) -> KeyQuestion:
        finding = self.queue[index]
        thumbnail = review_thumbnail(self.results, finding, self._root, self._max_pixels)
        keys = (ACCEPT, RELABEL, SKIP, QUIT) if finding.suggested_label else (ACCEPT, SKIP, QUIT)
        if thumbnail is None and finding.path is not None and finding.path in self._decoded:
            thumbnail = self._root / finding.path
        return KeyQuestion(index + 1, len(self.queue), finding, thumbnail, keys)

    def _press(self, key: str) -> None:
        if key == QUIT:
            self._stopped = True
        elif key == SKIP:
            self.tally.skipped += 1
            self._next()
        else:
            self._pending = "accept" if key == ACCEPT else "relabel"

    def _decide(self, action: str, reason: str) -> None:
        finding = self.queue[self._index]
        write_decisions(self.target, [make_decision(finding, self.results, action, reason, self.who, self.until)])
        if action == "accept":
            self.tally.accepted += 1
        else:
            self.tally.relabelled += 1
        self._next()

    def _next(self) -> None:
        self._index += 1
        self._on_show = None
        self._pending = None
