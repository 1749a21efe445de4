"""The documented entry point ``auditor.scan.run_scan``: a stable alias of the pipeline in ``pipeline.py``.

Kept so that code written against ``from auditor.scan import run_scan, ScanResult`` keeps working. The module
is also callable, ``auditor.scan(path, **options)``, the notebook API (``auditor.api.scan``; see
``auditor.CallableScanModule`` for why a module is called).
"""

from __future__ import annotations

import sys

from auditor import CallableScanModule
from auditor.results.findings import EMBEDDINGS_FILE, FINDINGS_FILE, IMAGES_FILE, RUN_FILE
from auditor.scan.pipeline import (
    Observer,
    ScanResult,
    SilentObserver,
    run_scan,
)

__all__ = [
    "EMBEDDINGS_FILE",
    "FINDINGS_FILE",
    "IMAGES_FILE",
    "RUN_FILE",
    "Observer",
    "ScanResult",
    "SilentObserver",
    "run_scan",
]

sys.modules[__name__].__class__ = CallableScanModule
