"""Sub-steps of long work (the classifier's held-out logits, neighbour searches, class closeness) for the
progress display.

A check can spend most of a scan inside one evidence function, so the checks bar alone sits still for
minutes. The functions that do such work call ``step("class closeness 2/5")``; the pipeline, while it runs a
check, routes those calls to its progress observer (``reporting``), and the CLI draws them. Outside ``reporting``
(tests, library use) a step goes nowhere. A context variable rather than a parameter: progress is an
observation of the work, never an input to it, and the evidence functions' signatures stay about the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_listener: ContextVar[Callable[[str], None] | None] = ContextVar("auditor_progress_listener", default=None)


def step(text: str) -> None:
    """Report what the current long computation is doing now, e.g. ``"class closeness 2/5"``."""
    listener = _listener.get()
    if listener is not None:
        listener(text)


@contextmanager
def reporting(listener: Callable[[str], None]) -> Iterator[None]:
    """Send every ``step`` made inside the block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
