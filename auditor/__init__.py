"""auditor: audit labelled image datasets before anyone trains on them.

In Python (a notebook): ``auditor.scan(path, **options)`` scans and returns an ``auditor.Audit``;
``auditor.Audit.load(folder)`` opens an earlier scan's results (see ``auditor.api``). Both are loaded on first
use, so that ``import auditor`` (and with it every ``audit`` command's start) stays instant.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__version__ = "0.1.0"


class CallableScanModule(ModuleType):
    """The class of the ``auditor.scan`` package, which is also the notebook entry point ``auditor.scan(path)``.

    ``auditor.scan`` must stay the subpackage (``from auditor.scan import run_scan``), and Python sets a parent
    package's attribute to its imported subpackage, so the API's function cannot take the name: the module
    object itself is made callable instead. It lives here, above every layer, because the scan layer must not
    import the API that sits on top of it.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _api().scan(*args, **kwargs)


def _api() -> ModuleType:
    """``auditor.api``, imported by name on first use. Modules of every layer import this package (for
    ``__version__``); a static import of the API here, even inside a function, would read to import-linter as
    each of them reaching the scan and the checks through it, which at run time none does."""
    return importlib.import_module("auditor.api")


def __getattr__(name: str) -> Any:
    """``auditor.Audit`` and ``auditor.scan`` without importing pandas, torch or the checks at ``import auditor``."""
    if name == "Audit":
        return _api().Audit
    if name == "scan":
        module: ModuleType = importlib.import_module("auditor.scan")
        return module
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")
