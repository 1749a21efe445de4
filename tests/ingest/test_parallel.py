"""ordered_map: results come back in input order, from worker processes or in this process."""

from __future__ import annotations

import operator
from contextlib import closing

from auditor.ingest.parallel import ordered_map


def test_worker_processes_return_results_in_input_order() -> None:
    started: list[bool] = []
    items = list(range(-60, 0))
    results = list(ordered_map(operator.neg, items, workers=2, chunk_size=4, window=2,
                               on_workers_started=lambda: started.append(True)))
    assert results == [-item for item in items]
    assert started == [True]  # called once, when the workers were busy


def test_no_workers_or_a_single_chunk_maps_in_this_process() -> None:
    calls: list[int] = []

    def record(item: int) -> int:  # a local function: it could not be sent to a worker process
        calls.append(item)
        return item * 2

    started: list[bool] = []
    assert list(ordered_map(record, [1, 2, 3], workers=0, on_workers_started=lambda: started.append(True))) == [2, 4, 6]
    assert list(ordered_map(record, [4, 5], workers=4, chunk_size=8)) == [8, 10]
    assert calls == [1, 2, 3, 4, 5] and started == []


def test_closing_early_stops_the_map_after_the_items_taken() -> None:
    items = list(range(100))
    with closing(ordered_map(operator.neg, items, workers=2, chunk_size=5, window=2)) as mapped:
        first = [next(mapped) for _ in range(7)]
    assert first == [0, -1, -2, -3, -4, -5, -6]
    assert list(mapped) == []  # a closed map yields nothing more
