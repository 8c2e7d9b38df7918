"""Learning curves from the checkpoints kept along training (``run --keep-epochs``): each gate against ORG at every
kept epoch, and the selection weights over time.

Reads a run folder as it is, finished or not: every cell's ``kept/epoch_<E>.json`` (written during training, see
:mod:`~satgate_monai.experiments.checkpoints`), so a grid still training or stopped early gives the part of the curve
it reached. A comparison at epoch ``E`` pairs the test cases (each case averaged over the seeds that reached ``E``
with both gates); it is *complete* when every seed of the run did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satgate_monai.experiments.analysis import per_case
from satgate_monai.experiments.checkpoints import HIST_EDGES, kept_dir, kept_results
from satgate_monai.experiments.io import read_json
from satgate_monai.experiments.stats import paired_comparison

__all__ = ["load_run", "gap_table", "selection_table", "histograms", "METRICS"]

METRICS = ("dice", "fpr", "fnr")


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's settings and every cell's kept evaluations.

    Returns:
        ``{"dir", "task", "command", "data_note", "settings", "keep_epochs", "epochs", "seeds", "cells": [{"key",
        "network", "gate", "seed", "done", "trained_epochs", "train_seconds", "kept": {epoch: {"cases",
        "selection"}}, "initial": [[w, ...] per selecting skip] or None}]}``.

    Raises:
        ValueError: ``run_dir`` has no ``run.json``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no run.json).")
    meta = read_json(run_dir / "run.json")
    settings = meta.get("settings", {})
    cells = []
    for cell_dir in sorted((run_dir / "cells").glob("*")):
        if not (cell_dir / "settings.json").is_file():
            continue
        s = read_json(cell_dir / "settings.json")["settings"]
        curve = read_json(cell_dir / "curve.json") if (cell_dir / "curve.json").is_file() else []
        done = cell_dir / "cell.json"
        track = kept_dir(cell_dir) / "selection_track.json"
        kept = {r["epoch"]: r for r in kept_results(cell_dir)}
        initial = read_json(track)["initial"] if track.is_file() else None
        if initial is not None:
            for epoch, r in kept.items():
                r["moved"] = _moved(cell_dir, epoch, initial)
        cells.append({
            "key": cell_dir.name, "network": s["network"], "gate": s["gate"], "seed": int(s["seed"]),
            "done": done.is_file(), "trained_epochs": max((p["epoch"] for p in curve), default=0),
            "train_seconds": read_json(done).get("train_seconds") if done.is_file() else None,
            "kept": kept, "initial": initial,
        })
    return {"dir": str(run_dir), "task": meta.get("task"), "command": meta.get("command"),
            "data_note": meta.get("data_note"), "settings": settings,
            "keep_epochs": list(settings.get("keep_epochs") or []), "epochs": settings.get("epochs"),
            "seeds": list(settings.get("seeds") or []), "cells": cells}


def _moved(cell_dir: Path, epoch: int, initial: Sequence[Sequence[float]]) -> dict[str, float | None] | None:
    """How far the selection weights moved from the draw by ``epoch``: the largest ``|w - w0|`` among the weights
    off at the draw (``w0 <= 0``) and among those between (``0 < w0 < 1``); None without the kept weights."""
    from satgate_monai.bundle.checkpoint import load_state_dict

    path = kept_dir(cell_dir) / f"epoch_{epoch:04d}.pt"
    if not initial or not path.is_file():
        return None
    state = load_state_dict(path)
    weights = [v for k, v in state.items() if k.endswith("selection.weight")]  # state-dict order: shallow to deep
    if len(weights) != len(initial):
        return None
    w = np.concatenate([x.double().flatten().numpy() for x in weights])
    w0 = np.concatenate([np.asarray(x, dtype=float) for x in initial])
    off, between = w0 <= 0, (w0 > 0) & (w0 < 1)
    move = np.abs(w - w0)
    return {"off": float(move[off].max()) if off.any() else None,
            "between": float(move[between].max()) if between.any() else None}


def _by_gate(run: dict) -> dict[str, dict[int, dict]]:
    """``{gate: {seed: cell}}`` (first network only: the curves are a U-Net experiment)."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    networks = list(dict.fromkeys(c["network"] for c in run["cells"]))
    for c in run["cells"]:
        if networks and c["network"] == networks[0]:
            out[c["gate"]][c["seed"]] = c
    return out


def gap_table(run: dict, gate: str, reference: str = "org", n_boot: int = 10000) -> list[dict]:
    """``gate`` against ``reference`` at every kept epoch both reached with at least one common seed.

    Returns:
        rows ``{"epoch", "seeds", "complete", "dice_a", "dice_b", "dice" | "fpr" | "fnr": paired_comparison(...)}``;
        ``complete`` when every seed of the run reached the epoch with both gates.
    """
    by_gate = _by_gate(run)
    a_cells, b_cells = by_gate.get(gate, {}), by_gate.get(reference, {})
    epochs = sorted({e for c in [*a_cells.values(), *b_cells.values()] for e in c["kept"]})
    rows = []
    for epoch in epochs:
        seeds = sorted(s for s in a_cells if s in b_cells and epoch in a_cells[s]["kept"]
                       and epoch in b_cells[s]["kept"])
        if not seeds:
            continue
        row: dict[str, Any] = {"epoch": epoch, "seeds": seeds,
                               "complete": set(run["seeds"]) <= set(seeds) if run["seeds"] else True}
        for metric in METRICS:
            a = per_case([a_cells[s]["kept"][epoch] for s in seeds], metric)
            b = per_case([b_cells[s]["kept"][epoch] for s in seeds], metric)
            cases = sorted(set(a) & set(b))
            row[metric] = paired_comparison([a[c] for c in cases], [b[c] for c in cases], n_boot=n_boot)
        rows.append(row)
    return rows


def selection_table(run: dict, gate: str) -> list[dict]:
    """The selection weights of ``gate`` (``sat``/``st``) at every kept epoch, mean over the seeds that reached it,
    and at the initial draw (epoch 0).

    Returns:
        rows ``{"epoch", "seeds", "n", "off", "between", "frozen" (pooled shares), "per_skip": [{"off", "between",
        "frozen"}], "draw_off" (the share off at the draw of the same seeds; kept epochs only), "crossed0_ever",
        "crossed0_now", "crossed1_ever", "crossed1_now" (summed over skips, mean over
        seeds; None when not tracked), "moved_off", "moved_between" (largest ``|w - w0|`` over the seeds among the
        weights off / between at the draw; kept epochs only)}``.
    """
    cells = _by_gate(run).get(gate, {})
    rows = []
    # the draw of the seeds that reached a kept epoch (all seeds before any did), so the rows compare like with like
    kept_seeds = {s for s, c in cells.items() if c["kept"]}
    draw_seeds = sorted(s for s, c in cells.items() if c["initial"] and (s in kept_seeds or not kept_seeds))
    if draw_seeds:
        rows.append(_selection_row(0, draw_seeds, [[_shares(np.asarray(w, dtype=float)) for w in cells[s]["initial"]]
                                                   for s in draw_seeds]))
    for epoch in sorted({e for c in cells.values() for e in c["kept"]}):
        seeds = sorted(s for s, c in cells.items() if epoch in c["kept"])
        snaps = [cells[s]["kept"][epoch]["selection"] for s in seeds]
        if snaps and snaps[0]:
            row = _selection_row(epoch, seeds, snaps)
            draws = [[_shares(np.asarray(w, dtype=float)) for w in cells[s]["initial"]] for s in seeds
                     if cells[s]["initial"]]
            row["draw_off"] = _selection_row(0, seeds, draws)["off"] if len(draws) == len(seeds) else None
            moved = [cells[s]["kept"][epoch].get("moved") for s in seeds]
            for key in ("off", "between"):
                values = [m[key] for m in moved if m and m[key] is not None]
                row[f"moved_{key}"] = max(values) if values and len(values) == len(seeds) else None
            rows.append(row)
    return rows


def _shares(w: np.ndarray) -> dict[str, Any]:
    off, frozen = float((w <= 0).mean()), float((w >= 1).mean())
    return {"n": int(w.size), "off": off, "frozen": frozen, "between": 1.0 - off - frozen}


def _selection_row(epoch: int, seeds: Sequence[int], snaps: Sequence[Sequence[dict]]) -> dict[str, Any]:
    """Pool the per-skip snapshots of several seeds (same network, so the same skips)."""
    n = sum(s["n"] for s in snaps[0])
    row: dict[str, Any] = {"epoch": epoch, "seeds": list(seeds), "n": n}
    for key in ("off", "between", "frozen"):
        row[key] = float(np.mean([sum(s[key] * s["n"] for s in snap) / n for snap in snaps]))
    row["per_skip"] = [{key: float(np.mean([snap[i][key] for snap in snaps])) for key in ("off", "between", "frozen")}
                       for i in range(len(snaps[0]))]
    for key in ("crossed0_ever", "crossed0_now", "crossed1_ever", "crossed1_now"):
        values = [sum(s[key] for s in snap) for snap in snaps if all(key in s for s in snap)]
        row[key] = float(np.mean(values)) if values and len(values) == len(snaps) else (0.0 if epoch == 0 else None)
    return row


def histograms(run: dict, gate: str) -> dict[int, np.ndarray]:
    """``{epoch: counts}`` of the raw selection weights of ``gate`` over :data:`HIST_EDGES` (``[below, bins...,
    above]``), summed over skips and the seeds that reached the epoch; epoch 0 is the initial draw."""
    cells = _by_gate(run).get(gate, {})
    out: dict[int, np.ndarray] = {}
    for c in cells.values():
        if c["initial"]:
            w = np.concatenate([np.asarray(x, dtype=float) for x in c["initial"]])
            inner, _ = np.histogram(w, bins=HIST_EDGES)
            counts = np.array([(w < HIST_EDGES[0]).sum(), *inner, (w > HIST_EDGES[-1]).sum()])
            out[0] = out.get(0, 0) + counts
        for epoch, kept in c["kept"].items():
            if kept["selection"]:
                out[epoch] = out.get(epoch, 0) + np.sum([s["hist"] for s in kept["selection"]], axis=0)
    return dict(sorted(out.items()))
