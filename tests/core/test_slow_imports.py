"""cleanlab, scipy and faiss load in the background while a scan reads its images, never when the pipeline is
imported."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_pipeline_leaves_cleanlab_and_scipy_for_later() -> None:
    loaded = _run(
        "import sys, auditor.scan.pipeline, auditor.checks\n"
        "print(','.join(sorted(m for m in ('cleanlab', 'scipy.stats', 'scipy.optimize', 'sklearn', 'faiss') "
        "if m in sys.modules)))\n"
    )
    assert loaded == ""


def test_start_and_wait_load_every_deferred_module() -> None:
    loaded = _run(
        "import sys\n"
        "from auditor.core import slow_imports\n"
        "slow_imports.start(); slow_imports.start(); slow_imports.wait()\n"
        "print(all(name in sys.modules for name in slow_imports.MODULES),\n"
        "      slow_imports.blas_controller.cache_info().currsize)\n"
    )
    assert loaded == "True 1"  # the BLAS libraries found too


def test_a_proxy_imports_on_first_use_without_start() -> None:
    result = _run(
        "import sys\n"
        "from auditor.core.slow_imports import scipy_stats\n"
        "before = 'scipy.stats' in sys.modules\n"
        "print(before, round(float(scipy_stats.norm.ppf(0.5)), 6), 'scipy.stats' in sys.modules)\n"
    )
    assert result == "False 0.0 True"


def test_the_background_import_cannot_silence_the_scans_warning_collector() -> None:
    """cleanlab's Datalab (present with Hugging Face datasets) runs warnings.filterwarnings("ignore") on import;
    imported during a scan, that filter would hide every library warning the scan collects."""
    result = _run(
        "import warnings\n"
        "from auditor.core import library_warnings; from auditor.core import slow_imports\n"
        "with library_warnings.collected() as noise:\n"
        "    slow_imports.start(); slow_imports.wait()\n"
        "    warnings.warn('still heard', UserWarning)\n"
        "print(len(noise.records), ('ignore', None, Warning, None, 0) in warnings.filters)\n"
    )
    assert result == "1 False"


def test_the_read_stage_signals_once_its_workers_run_and_never_in_process() -> None:
    """The pipeline starts the background import from this signal: with workers, once; in-process, never (the
    main thread then imports what it needs itself, and two importers must never run at once)."""
    from auditor.ingest.parallel import ordered_map

    calls: list[int] = []
    in_process = list(ordered_map(abs, list(range(-40, 0)), workers=0, on_workers_started=lambda: calls.append(0)))
    assert in_process == list(range(40, 0, -1)) and calls == []
    pooled = list(ordered_map(abs, list(range(-40, 0)), workers=2, chunk_size=4,
                              on_workers_started=lambda: calls.append(1)))
    assert pooled == list(range(40, 0, -1)) and calls == [1]
