"""Checkpoints kept along training (``--keep-epochs``) and the selection weights tracked over time.

One long training then gives a whole learning curve: at each kept epoch ``k`` the network's weights are written to
``CELL/kept/epoch_<k>.pt`` (``{"model": state_dict}``, the bundle's checkpoint layout) and evaluated at once on the
test split through the bundle's evaluate config; the result, ``CELL/kept/epoch_<k>.json``, holds the per-case metrics
and the state of every selection weight at that epoch. The evaluation runs inside the training process with the
random number generators saved and restored around it, so keeping checkpoints does not change the training.

Selection tracking (gates with selection weights, ``st``/``sat``): the raw weights ``w`` of the initial draw are
recorded when training starts (``CELL/kept/selection_track.json``), and after every iteration each weight's state is
compared with the draw's: *crossed 0* when it is off (``w <= 0``) now but was not at the draw or the reverse,
*crossed 1* likewise for frozen (``w >= 1``). ``ever`` counts the weights that crossed at some iteration (saved at
every epoch end, so a resumed training keeps them), ``now`` those on the other side at the kept epoch.

Resumable: kept files survive an interruption; a resumed training first evaluates kept checkpoints that have no
result yet and keeps the checkpoint of the epoch it resumes at if that one is missing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from data_prep.atomic import atomic_path
from satgate_monai.experiments.io import atomic_write_json, read_json

__all__ = ["HIST_EDGES", "KeptCheckpoints", "kept_dir", "kept_results", "parse_epochs", "selection_snapshot"]

logger = logging.getLogger(__name__)

KEPT = "kept"
TRACK = "selection_track.json"
#: histogram bin edges of the raw selection weights; counts below the first and above the last edge are kept too
HIST_EDGES = [round(-1.0 + 0.1 * i, 1) for i in range(31)]


def parse_epochs(text: str) -> list[int]:
    """``"10,20,50"`` -> ``[10, 20, 50]`` (sorted, distinct, each >= 1).

    Raises:
        ValueError: a value that is not a positive int.
    """
    try:
        epochs = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"--keep-epochs takes a comma list of positive ints, got {text!r}") from None
    if not epochs or epochs[0] < 1:
        raise ValueError(f"--keep-epochs takes a comma list of positive ints, got {text!r}")
    return epochs


def kept_dir(cell_dir: Path) -> Path:
    return Path(cell_dir) / KEPT


def _checkpoint(cell_dir: Path, epoch: int) -> Path:
    return kept_dir(cell_dir) / f"epoch_{epoch:04d}.pt"


def _result(cell_dir: Path, epoch: int) -> Path:
    return kept_dir(cell_dir) / f"epoch_{epoch:04d}.json"


def kept_results(cell_dir: Path) -> list[dict]:
    """Every evaluated kept checkpoint of a cell (finished or not), by epoch."""
    files = sorted(kept_dir(cell_dir).glob("epoch_*.json"))
    return sorted((read_json(f) for f in files), key=lambda r: r["epoch"])


def _raw_weights(net: nn.Module) -> list[torch.Tensor]:
    """The raw selection weights ``w`` of every gate with selection, shallow to deep (``[]`` without any)."""
    gates = getattr(net, "gates", None) or []
    return [g.selection.weight.detach().flatten().cpu().double() for g in gates if getattr(g, "has_selection", False)]


def _state(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return w <= 0, w >= 1


def selection_snapshot(weights: Sequence[torch.Tensor], initial: Sequence[Sequence[float]] | None,
                       ever: dict[str, list[list[bool]]] | None) -> list[dict]:
    """Per selecting skip (shallow to deep): shares off/between/frozen, a histogram of ``w`` over :data:`HIST_EDGES`
    (``[below first edge, bins..., above last edge]``), and the counts of weights that crossed 0 or 1 relative to
    ``initial`` (``now``) and at any tracked iteration (``ever``; ``None`` when not tracked)."""
    out = []
    for i, w in enumerate(weights):
        off, frozen = _state(w)
        n = int(w.numel())
        inner, _ = np.histogram(w.numpy(), bins=HIST_EDGES)
        hist = [int((w < HIST_EDGES[0]).sum()), *map(int, inner), int((w > HIST_EDGES[-1]).sum())]
        entry: dict[str, Any] = {"n": n, "off": float(off.double().mean()), "frozen": float(frozen.double().mean()),
                                 "hist": hist, "min": float(w.min()), "max": float(w.max())}
        entry["between"] = 1.0 - entry["off"] - entry["frozen"]
        if initial is not None:
            off0, frozen0 = _state(torch.as_tensor(initial[i], dtype=torch.float64))
            entry["crossed0_now"] = int((off != off0).sum())
            entry["crossed1_now"] = int((frozen != frozen0).sum())
            entry["initial_off"] = float(off0.double().mean())
            entry["initial_frozen"] = float(frozen0.double().mean())
        if ever is not None:
            entry["crossed0_ever"] = int(sum(ever["crossed0"][i]))
            entry["crossed1_ever"] = int(sum(ever["crossed1"][i]))
        out.append(entry)
    return out


class KeptCheckpoints:
    """Ignite handlers on the bundle's trainer: keep and evaluate the weights at ``epochs``, track the selection.

    Args:
        cell_dir: the cell folder (files go to ``cell_dir/kept``).
        epochs: the epochs whose weights are kept (after that epoch's training and validation).
        network: the network being trained.
        evaluate: ``evaluate(checkpoint_path, output_dir) -> list of per-case dicts`` on the test split.
    """

    def __init__(self, cell_dir: Path, epochs: Sequence[int], network: nn.Module,
                 evaluate: Callable[[Path, Path], list[dict]]) -> None:
        self.cell_dir = Path(cell_dir)
        self.epochs = sorted({int(e) for e in epochs})
        self.network = network
        self.evaluate = evaluate
        self.track_file = kept_dir(self.cell_dir) / TRACK
        self.initial: list[list[float]] | None = None
        self.ever: dict[str, list[list[bool]]] | None = None

    def attach(self, trainer: Any) -> None:
        from ignite.engine import Events

        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    # ------------------------------------------------------------------ events
    def _started(self, engine: Any) -> None:
        kept_dir(self.cell_dir).mkdir(parents=True, exist_ok=True)
        epoch = int(engine.state.epoch or 0)
        if self.track_file.is_file():
            track = read_json(self.track_file)
            self.initial, self.ever = track["initial"], track["ever"]
        elif epoch == 0:
            weights = _raw_weights(self.network)
            self.initial = [w.tolist() for w in weights]
            self.ever = {"crossed0": [[False] * w.numel() for w in weights],
                         "crossed1": [[False] * w.numel() for w in weights]}
            self._save_track(0)
        else:
            logger.warning("%s: training resumed at epoch %d without a record of the initial selection weights; "
                           "crossings are not counted", self.cell_dir.name, epoch)
        for e in self.epochs:  # an interruption between saving a checkpoint and evaluating it
            if e < epoch and _checkpoint(self.cell_dir, e).is_file() and not _result(self.cell_dir, e).is_file():
                self._evaluate(e, selection=None)
        if epoch in self.epochs and not _result(self.cell_dir, epoch).is_file():
            self._keep(epoch)  # interrupted after last.pt of a kept epoch was written but before it was kept

    def _iteration(self, engine: Any) -> None:
        if not self.initial or self.ever is None:
            return
        for i, w in enumerate(_raw_weights(self.network)):
            off, frozen = _state(w)
            off0, frozen0 = _state(torch.as_tensor(self.initial[i], dtype=torch.float64))
            c0, c1 = (off != off0).tolist(), (frozen != frozen0).tolist()
            self.ever["crossed0"][i] = [a or b for a, b in zip(self.ever["crossed0"][i], c0)]
            self.ever["crossed1"][i] = [a or b for a, b in zip(self.ever["crossed1"][i], c1)]

    def _epoch(self, engine: Any) -> None:
        epoch = int(engine.state.epoch)
        if self.initial is not None:
            self._save_track(epoch)
        if epoch in self.epochs:
            self._keep(epoch)

    # ------------------------------------------------------------------ keeping
    def _save_track(self, epoch: int) -> None:
        atomic_write_json(self.track_file, {"epoch": epoch, "initial": self.initial, "ever": self.ever})

    def _keep(self, epoch: int) -> None:
        path = _checkpoint(self.cell_dir, epoch)
        state = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save({"model": state}, tmp)
        selection = selection_snapshot(_raw_weights(self.network), self.initial, self.ever)
        self._evaluate(epoch, selection)

    def _evaluate(self, epoch: int, selection: list[dict] | None) -> None:
        """Evaluate a kept checkpoint on the test split with every random generator restored afterwards."""
        states = (torch.get_rng_state(), np.random.get_state(), random.getstate(),  # noqa: NPY002 (the global state)
                  torch.are_deterministic_algorithms_enabled())
        was_training = self.network.training
        start = time.perf_counter()
        try:
            cases = self.evaluate(_checkpoint(self.cell_dir, epoch), kept_dir(self.cell_dir) / f"eval_{epoch:04d}")
        finally:
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])  # noqa: NPY002
            random.setstate(states[2])
            torch.use_deterministic_algorithms(states[3])
            self.network.train(was_training)
        if selection is None:  # evaluated after a resume: the weights of that epoch are read back from the file
            from satgate_monai.bundle.checkpoint import load_state_dict

            state = load_state_dict(_checkpoint(self.cell_dir, epoch))
            weights = [state[k].flatten().double() for k in _selection_keys(self.network)]
            selection = selection_snapshot(weights, self.initial, None)
        atomic_write_json(_result(self.cell_dir, epoch), {
            "epoch": epoch, "cases": cases, "selection": selection, "eval_seconds": time.perf_counter() - start})
        logger.info("%s: kept epoch %d evaluated", self.cell_dir.name, epoch)


def _selection_keys(net: nn.Module) -> list[str]:
    """State-dict keys of the raw selection weights, shallow to deep (the order of :func:`_raw_weights`)."""
    names = {id(p): n for n, p in net.named_parameters()}
    return [names[id(g.selection.weight)] for g in (getattr(net, "gates", None) or [])
            if getattr(g, "has_selection", False)]
