"""Run the grid cell by cell with a cache, then write ``results.json``, ``report.md`` and the figures.

Cell cache (``OUT/cells/<network>-<gate>-s<seed>/``):

* ``settings.json``: the cell's fingerprint and settings, written when the cell starts;
* ``trained.json``: written atomically when training finished (curve, time), so a crash during evaluation does not
  retrain;
* ``cell.json``: the done marker, written atomically last; it holds the cell record (see
  ``docs/experiments.md``, "results.json").

A rerun skips every cell with a ``cell.json`` whose fingerprint matches; an unfinished cell resumes (the bundle's
``last.pt`` resumes its training); a finished cell whose settings differ is refused (``ValueError``) unless
``rerun_stale`` is set, so results of different settings never mix.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from satgate_monai.experiments.grid import Cell, fingerprint
from satgate_monai.experiments.io import atomic_write_json, atomic_write_text, read_json

__all__ = [
    "SCHEMA", "cell_fingerprint", "figure_seeds", "pending_cells", "run_cell", "write_outputs",
    "estimate_seconds",
]

logger = logging.getLogger(__name__)

SCHEMA = "satgate-monai/experiments/results/v1"


def cell_fingerprint(task_settings: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """The settings that decide a cell's result, and their hash."""
    payload = {"schema": SCHEMA, **task_settings, "network": cell.network, "gate": cell.gate, "seed": cell.seed,
               "network_def": cell.network_def}
    return {"fingerprint": fingerprint(payload), "settings": payload}


def _load_done(cell_dir: Path, expected: str, rerun_stale: bool) -> dict | None:
    done = cell_dir / "cell.json"
    if not done.is_file():
        return None
    record = read_json(done)
    if record.get("fingerprint") == expected:
        return record
    if not rerun_stale:
        raise ValueError(
            f"{cell_dir} holds a finished cell run with different settings (fingerprint {record.get('fingerprint')} "
            f"!= {expected}; compare {cell_dir / 'settings.json'}). Use another --out, or --rerun-stale to retrain it."
        )
    logger.warning("retraining stale cell %s (settings changed)", cell_dir.name)
    shutil.rmtree(cell_dir)
    return None


def _prepare_partial(cell_dir: Path, fp: dict[str, Any]) -> None:
    settings = cell_dir / "settings.json"
    if cell_dir.is_dir() and (not settings.is_file() or read_json(settings).get("fingerprint") != fp["fingerprint"]):
        logger.warning("discarding unfinished cell %s from other settings", cell_dir.name)
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(settings, fp)


def pending_cells(task: Any, cells: Sequence[Cell], out_dir: Path, rerun_stale: bool = False) -> list[Cell]:
    """The cells without a finished ``cell.json`` of the current settings (stale ones raise unless ``rerun_stale``)."""
    return [c for c in cells
            if _load_done(Path(out_dir) / "cells" / c.key, cell_fingerprint(task.settings(), c)["fingerprint"],
                          rerun_stale) is None]


def figure_seeds(cells: Sequence[Cell]) -> dict[tuple[str, str], int]:
    """The seed whose cell keeps the figure data, per ``(network, gate)``: the first in grid order."""
    first: dict[tuple[str, str], int] = {}
    for cell in cells:
        first.setdefault((cell.network, cell.gate), cell.seed)
    return first


def run_cell(task: Any, cell: Cell, out_dir: Path, keep_figure_data: bool, rerun_stale: bool = False) -> dict:
    """Train and evaluate one cell unless it is done; returns its record (the ``cell.json`` content).

    Self-contained (it reads and writes only ``out_dir/cells/<key>``), so executors can run cells in other
    processes or on other machines that see the same ``out_dir``.
    """
    cell_dir = Path(out_dir) / "cells" / cell.key
    fp = cell_fingerprint(task.settings(), cell)
    record = _load_done(cell_dir, fp["fingerprint"], rerun_stale)
    if record is not None:
        return record
    _prepare_partial(cell_dir, fp)
    trained_file = cell_dir / "trained.json"
    if trained_file.is_file():
        trained = read_json(trained_file)
    else:
        trained = task.train(cell, cell_dir)
        atomic_write_json(trained_file, trained)
    evaluated = task.evaluate(cell, cell_dir, keep_figure_data=keep_figure_data)
    record = {
        "key": cell.key, "dir": f"cells/{cell.key}", "fingerprint": fp["fingerprint"],
        "network": cell.network, "gate": cell.gate, "seed": cell.seed, "peer": cell.is_peer,
        "target": cell.network_def["_target_"], "network_def": cell.network_def,
        **{k: trained[k] for k in ("curve", "train_seconds")},
        **evaluated,
        "worker": f"{platform.node()}:{os.getpid()}",  # which machine and process ran the cell
    }
    atomic_write_json(cell_dir / "cell.json", record)
    logger.info("cell %s done: %.1f s train, %.1f s eval", cell.key, record["train_seconds"], record["eval_seconds"])
    return record


def _environment() -> dict[str, str]:
    import monai
    import torch

    import satgate_monai

    return {"python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__,
            "satgate_monai": satgate_monai.__version__, "platform": platform.platform()}


def _consistency_warnings(out_dir: Path, records: Sequence[dict]) -> list[str]:
    """Warn when the cells ran with different bundle configs/data lists (e.g. a bundle edited mid-run)."""
    digests: dict[str, list[str]] = {}
    for r in records:
        f = out_dir / r.get("dir", f"cells/{r['key']}") / "settings.json"
        digest = read_json(f)["settings"].get("configs_sha256", "unknown") if f.is_file() else "unknown"
        digests.setdefault(digest, []).append(r["key"])
    if len(digests) <= 1:
        return []
    groups = "; ".join(f"{d}: {', '.join(keys)}" for d, keys in digests.items())
    return [f"cells ran with different bundle configs or data lists (sha256 prefix: cells): {groups}"]


def write_outputs(out_dir: Path, records: Sequence[dict], meta: dict[str, Any], n_boot: int = 10000) -> dict:
    """Analyse the finished cells and write ``results.json``, ``figures/*.png`` and ``report.md`` (atomically).

    Args:
        out_dir: run folder.
        records: cell records (finished cells only).
        meta: ``{"task", "data", "data_note", "bundle", "command", "settings": {...}}``.
        n_boot: bootstrap resamples of the paired tests.

    Returns:
        the results dictionary written to ``results.json``.
    """
    from satgate_monai.experiments.analysis import analyze
    from satgate_monai.experiments.figures import make_figures
    from satgate_monai.experiments.report import render_report

    out_dir = Path(out_dir)
    results: dict[str, Any] = {"schema": SCHEMA, **meta, "environment": _environment(),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cells": list(records),
                               "warnings": _consistency_warnings(out_dir, records)}
    results.update(analyze(records, n_boot=n_boot))
    results["figures"] = make_figures(results, out_dir) if records else {}
    atomic_write_json(out_dir / "results.json", results)
    results = read_json(out_dir / "results.json")  # the report is rendered from exactly what was written
    atomic_write_text(out_dir / "report.md", render_report(results))
    return results


def estimate_seconds(n_train: int, n_val: int, n_test: int, epochs: int, batch_size: int, step_seconds: float,
                     forward_seconds: float, val_interval: int = 1) -> float:
    """Rough wall time of one cell from measured per-step times.

    ``epochs * (ceil(n_train / batch) * step + n_val / val_interval * forward) + 2 * n_test * forward`` plus
    5 s of set-up (the test set is run twice: evaluation and attention inspection).
    """
    steps = math.ceil(max(n_train, 1) / max(batch_size, 1))
    per_epoch = steps * step_seconds + n_val * forward_seconds / max(val_interval, 1)
    return epochs * per_epoch + 2 * n_test * forward_seconds + 5.0
