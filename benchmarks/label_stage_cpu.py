"""CPU-seconds of auditor's label-error stage and of cleanlab Datalab's label analysis on the same vectors.

    nice python benchmarks/label_stage_cpu.py --n 1000 --repeats 7
    python benchmarks/label_stage_cpu.py --smoke   # 300 vectors, one repeat (Datalab side only if installed)

The vectors are ``vectors.py``'s synthetic ones (512-d, 10 classes below 10,000 images, 1% planted label errors).
One process runs both sides alternately, ``--repeats`` times each, after cleanlab and scipy are imported, and
prints the least and the median CPU time (``time.process_time``: every thread of the process) and wall time of
each. CPU time barely moves when other work shares the machine, where wall time (``scale.py``) can double; the
wall figures are printed too. auditor's stage is what a scan's label_errors row costs: the K-fold classifier,
the k-NN vote blended in, and the label_errors check (confident learning, quality scores, reliability).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from vectors import DATALAB_MISSING, DIM, _images_frame, datalab_available, synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (300 vectors, one repeat)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.repeats = 300, 1
    warnings.filterwarnings("ignore")
    from cleanlab import Datalab

    from auditor.checks import CheckContext
    from auditor.checks.label_errors import LabelErrorsCheck, LabelErrorsParams
    from auditor.core import slow_imports
    from auditor.core.config import AuditConfig
    from auditor.core.encoder_facts import EncoderInfo

    slow_imports.start()
    slow_imports.wait()
    data = synthetic(args.n)
    images = _images_frame(data, 0)
    classes = sorted(images["label"].unique().tolist())

    def auditor_stage() -> None:
        context = CheckContext(images=images, embeddings=data["vectors"], classes=classes, splits=[],
                               empty_classes={}, encoder=EncoderInfo("precomputed", "precomputed", "synthetic", DIM,
                                                                     False), config=AuditConfig())
        LabelErrorsCheck(LabelErrorsParams()).run(context)  # reads the classifier and the blended vote

    def datalab_label() -> None:
        lab = Datalab(data={"label": data["labels"]}, label_name="label", verbosity=0)
        lab.find_issues(features=data["vectors"], issue_types={"label": {}})

    sides: dict[str, Callable[[], None]] = {"auditor label-error stage": auditor_stage}
    if datalab_available():
        sides["Datalab label"] = datalab_label
    else:
        print(DATALAB_MISSING)
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, run in sides.items():
            started_cpu, started = time.process_time(), time.perf_counter()
            run()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    for name in sides:
        print(f"{name}: CPU least {min(cpu[name]):.3f} s, median {np.median(cpu[name]):.3f} s; "
              f"wall least {min(wall[name]):.3f} s, median {np.median(wall[name]):.3f} s")
    if len(sides) == 2:
        ours, theirs = sides
        print(f"ratio (least CPU) {min(cpu[ours]) / min(cpu[theirs]):.2f}, "
              f"(least wall) {min(wall[ours]) / min(wall[theirs]):.2f}")


if __name__ == "__main__":
    main()
