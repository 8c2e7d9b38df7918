"""Benchmark: one training epoch of every bundle, end to end, on demo phantoms (synthetic, not patient data).

Run::

    python benchmarks/bundle_epoch.py --device cuda            # the bundles' full networks and patches
    python benchmarks/bundle_epoch.py --device cpu --quick     # the demo's CPU-sized networks (what the tests run)

Each task goes through ``python -m satgate_monai.demo`` (phantoms -> data_prep import -> ``monai.bundle run``
train, evaluate, inference) with one epoch. Without ``--quick`` the demo's CPU-sized network and patch are replaced
by the bundle's own (``network_def#channels``, ``network_def#strides``, ``roi_size`` read from the bundle's
``configs/train.json``); the demo's batch size and phantom count stay. Prints the seconds of every stage per task
(the demo's progress goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from monai.bundle import ConfigParser

from satgate_monai.demo import run_demo
from satgate_monai.resources import bundle_path
from satgate_monai.tasks import get_task

TASKS = ("liver", "prostate", "skin")


def full_size_overrides(task: str) -> dict:
    """The bundle's own network widths and patch, to undo the demo's CPU-sized overrides."""
    parser = ConfigParser()
    parser.read_config(str(bundle_path(get_task(task).bundle) / "configs" / "train.json"))
    out = {f"network_def#{k}": parser.get_parsed_content(f"network_def#{k}") for k in ("channels", "strides")}
    if "roi_size" in get_task(task).demo_overrides:
        out["roi_size"] = parser.get_parsed_content("roi_size")
    return out


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to stdout meanwhile (also by handlers holding ``sys.stdout``, e.g. the bundle's logging
    configuration) to stderr, at the file-descriptor level."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="the demo's CPU-sized networks and patches")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--gate", default="sat")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bundle_epoch_") as tmp:
        for task in args.tasks:
            start = time.perf_counter()
            extra = None if args.quick else full_size_overrides(task)
            with _stdout_to_stderr():  # the demo's progress and the bundle's logs; stdout is the results table
                result = run_demo(task, Path(tmp) / task, epochs=1, device=args.device, gate=args.gate,
                                  extra_overrides=extra)
            rows.append((task, result["seconds"], time.perf_counter() - start))
    stages = list(rows[0][1]) if rows else []
    print(f"# One epoch of each bundle on {args.device} ({'demo sizes' if args.quick else 'bundle sizes'}, "
          f"gate {args.gate})\n")
    print("| task | " + " | ".join(f"{s} (s)" for s in stages) + " |")
    print("|---|" + "---|" * len(stages))
    for task, seconds, _ in rows:
        print(f"| {task} | " + " | ".join(f"{seconds.get(s, float('nan')):.1f}" for s in stages) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
