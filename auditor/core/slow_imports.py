"""The libraries that take seconds to import, loaded in a background thread while a scan reads its images.

cleanlab's package imports scikit-learn, scipy.stats, pandas and (when installed) Hugging Face datasets: two to
three seconds on a 2-core machine, half of a small scan; faiss takes another 35 ms, and finding the process's
BLAS libraries for ``blas_controller`` 30 ms. The modules that use cleanlab, scipy's stats and optimisers or
faiss name them through the proxies below instead of importing them at the top, and the pipeline calls
``start()`` once the read stage's worker processes are running and ``wait()`` when they are done: the import
runs while the main thread only waits on those workers (and imports nothing itself: two threads importing one
package tree at once can see half-made modules). A proxy imports its module on first use, so code that never
calls ``start()`` (tests, library users) behaves as with an ordinary import, only later.

This is the one place auditor defers a required dependency for speed (the CLI's start-up guard and the
optional packages aside): a new slow dependency is added here, never as a function-local import.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from threadpoolctl import ThreadpoolController

__all__ = [
    "MODULES", "blas_controller", "cleanlab_count", "cleanlab_dataset", "cleanlab_filter", "cleanlab_rank", "faiss",
    "scipy_optimize", "scipy_stats", "start", "wait",
]

# In the order the background thread imports them: cleanlab first pulls in most of the rest.
MODULES = ("cleanlab.count", "cleanlab.filter", "cleanlab.rank", "cleanlab.dataset", "scipy.stats", "scipy.optimize",
           "faiss")


class _Deferred:
    """Stands for the module ``name``; the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = _import(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r}>"


if TYPE_CHECKING:
    import cleanlab.count as cleanlab_count
    import cleanlab.dataset as cleanlab_dataset
    import cleanlab.filter as cleanlab_filter
    import cleanlab.rank as cleanlab_rank
    import faiss
    import scipy.optimize as scipy_optimize
    import scipy.stats as scipy_stats
else:
    cleanlab_count = _Deferred("cleanlab.count")
    cleanlab_dataset = _Deferred("cleanlab.dataset")
    cleanlab_filter = _Deferred("cleanlab.filter")
    cleanlab_rank = _Deferred("cleanlab.rank")
    faiss = _Deferred("faiss")
    scipy_optimize = _Deferred("scipy.optimize")
    scipy_stats = _Deferred("scipy.stats")

_lock = threading.Lock()
_thread: threading.Thread | None = None


# What ``warnings.filterwarnings("ignore")`` adds: silence every warning from everywhere.
_IGNORE_ALL = ("ignore", None, Warning, None, 0)


def _import(name: str) -> ModuleType:
    """Import ``name``, undoing a blanket "ignore every warning" filter that the import itself installs.

    cleanlab's Datalab (imported by cleanlab's package whenever Hugging Face datasets is installed) calls
    ``warnings.filterwarnings("ignore")`` at import: every warning of the process silenced for good. The
    scan collects library warnings and reports them once each (library_warnings.py); imported during the
    scan, that filter would land in front of the collector's and hide them all.
    """
    had_it = _IGNORE_ALL in warnings.filters
    module = importlib.import_module(name)
    if not had_it and _IGNORE_ALL in warnings.filters:
        cast(list[Any], warnings.filters).remove(_IGNORE_ALL)  # typeshed calls it a Sequence; it is the list
        # Any filter call tells the warnings machinery that its filters changed; appending the default
        # action, which applies anyway when no filter matches, is the public one that changes nothing else.
        warnings.simplefilter("default", append=True)
    return module


@cache
def blas_controller() -> ThreadpoolController:
    """The process's BLAS libraries, found once (each ``threadpool_limits`` would scan the loaded shared libraries
    again). Found in the background thread once ``MODULES`` are in, so it sees their BLAS libraries too."""
    return ThreadpoolController()


def _import_all() -> None:
    for name in MODULES:
        try:
            _import(name)
        except Exception:  # noqa: BLE001, S110 - the proxy's own import raises it again, where it is used
            return
    blas_controller()


def start() -> None:
    """Begin importing ``MODULES`` in a daemon thread (once per process; later calls do nothing).

    A daemon thread, so an interrupted or failed scan exits at once instead of finishing the import first.
    """
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_all, name="auditor-slow-imports", daemon=True)
            _thread.start()


def wait() -> None:
    """Block until the background import is done (returns at once when none was started).

    The caller imports nothing between ``start()`` and this (see the module docstring).
    """
    with _lock:
        thread = _thread
    if thread is not None:
        thread.join()
