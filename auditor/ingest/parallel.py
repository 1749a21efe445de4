"""Ordered, bounded parallel map over worker processes.

Unlike ``Pool.imap`` this never runs more than ``window`` chunks ahead of the consumer, so memory
stays bounded however large the dataset (a preprocessed 224-px image is 600 kB).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _apply_chunk(function: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [function(item) for item in chunk]


# prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
# How often a worker checks, where the kernel cannot be asked, whether its parent is still there.
_PARENT_POLL_S = 1.0


def _die_with(parent: int) -> None:
    """End this worker when ``parent`` dies, even by ``kill -9``, which leaves it no chance to shut the pool down.

    Linux sends it SIGKILL then (PR_SET_PDEATHSIG); elsewhere, or should that fail, a thread polls the parent id.
    A worker left behind would hold the multiprocessing resource tracker open too.
    """
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_init(parent: int) -> None:
    """Workers decode and resize; one thread each, so they do not fight the model for cores.

    Worker functions live in light modules (images, embedding) so a spawned worker never pays for
    importing torch or pandas. ``parent``: the process id of the scan, which a worker must not outlive.
    """
    _die_with(parent)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    # Ctrl-C reaches the whole process group; only the parent acts on it (it cancels queued chunks and
    # shuts the pool down), so a worker must not die mid-chunk with its own traceback. Workers start
    # with SIGINT/SIGTERM blocked (see _signals_blocked); ignoring SIGINT as well keeps that true if a
    # library unblocks signals.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while ``submit`` may start a worker process.

    A worker inherits the signal mask it is started with and keeps it: a Ctrl-C sent to the whole
    process group while workers are still importing would otherwise kill them with their own
    KeyboardInterrupt tracebacks (and break the pool). The parent gets the held signal right after.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ordered_map(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    chunk_size: int = 8,
    window: int = 8,
    on_workers_started: Callable[[], None] | None = None,
) -> Generator[R, None, None]:
    """Yield ``function(item)`` for each item in order; ``workers=0`` runs in this process.

    Close the generator (``contextlib.closing``) when stopping early: that shuts the pool down now
    instead of whenever the suspended generator is garbage-collected. ``on_workers_started`` is called once
    the worker processes are started and busy (never when the items are mapped in this process).
    """
    if workers <= 0 or len(items) <= chunk_size:
        for item in items:
            yield function(item)
        return
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        pending: deque[Future[list[R]]] = deque()
        next_chunk = 0
        try:
            while pending or next_chunk < len(chunks):
                while next_chunk < len(chunks) and len(pending) < max(window, workers * 2):
                    with _signals_blocked():
                        pending.append(pool.submit(_apply_chunk, function, chunks[next_chunk]))
                    next_chunk += 1
                if on_workers_started is not None:
                    on_workers_started()
                    on_workers_started = None
                yield from pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
