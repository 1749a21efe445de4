"""Sub-steps of long work reach the listener of the enclosing ``reporting`` block, and nothing else."""

from __future__ import annotations

import contextvars

from auditor.core import progress


def test_steps_inside_reporting_reach_the_listener_in_order() -> None:
    heard: list[str] = []
    with progress.reporting(heard.append):
        progress.step("class closeness 1/2")
        progress.step("class closeness 2/2")
    progress.step("after the block")
    assert heard == ["class closeness 1/2", "class closeness 2/2"]


def test_nested_reporting_routes_to_the_inner_listener_then_restores_the_outer() -> None:
    outer: list[str] = []
    inner: list[str] = []
    with progress.reporting(outer.append):
        with progress.reporting(inner.append):
            progress.step("inner")
        progress.step("outer")
    assert (outer, inner) == (["outer"], ["inner"])


def test_the_listener_is_restored_when_the_block_raises() -> None:
    heard: list[str] = []
    try:
        with progress.reporting(heard.append):
            raise ValueError("work failed")
    except ValueError:
        pass
    progress.step("after the failure")
    assert heard == []


def test_another_context_does_not_hear_the_steps() -> None:
    heard: list[str] = []
    with progress.reporting(heard.append):
        contextvars.Context().run(progress.step, "from another context")
        progress.step("from this context")
    assert heard == ["from this context"]
