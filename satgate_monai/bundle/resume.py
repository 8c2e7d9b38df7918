"""Resume training from the last completed epoch after the process was killed or interrupted.

:class:`ResumeHandler` writes ``last.pt`` atomically at the end of every epoch (after validation, so it holds the
best-checkpoint bookkeeping too) and, when training starts, loads it if the previous run did not finish. A finished
run is marked ``completed``; the next training starts afresh (and MONAI Label's repeated trainings are not skipped).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from data_prep.atomic import atomic_write
from satgate_monai.bundle.checkpoint import read_checkpoint

__all__ = ["ResumeHandler", "unwrap"]

logger = logging.getLogger(__name__)


def unwrap(module: nn.Module) -> nn.Module:
    """The wrapped model of ``DistributedDataParallel``/``DataParallel``, else ``module`` itself."""
    return module.module if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else module


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class ResumeHandler:
    """Save a resumable checkpoint every epoch and resume from it when an unfinished training is restarted.

    Args:
        save_dir: folder of the checkpoint (the bundle's ``ckpt_dir``).
        network: the trained network (``DistributedDataParallel`` is unwrapped; the saved weights are flat).
        optimizer: its optimizer.
        lr_scheduler: optional learning-rate scheduler.
        evaluator: optional validation engine; its ``best_metric``/``best_metric_epoch`` are saved and restored.
        best_saver: optional ``monai.handlers.CheckpointSaver`` writing the best model; its key-metric bookkeeping is
            saved and restored, so a worse model after resuming does not overwrite ``model.pt``.
        filename: checkpoint file name. Defaults to ``"last.pt"``.
        resume: whether to resume at all. Defaults to True.

    The checkpoint holds ``{"model", "optimizer", "trainer", "evaluator", "best_saver", "epoch", "completed"}``;
    it loads with
    :func:`~satgate_monai.bundle.checkpoint.read_checkpoint` (``weights_only=True``). Only rank 0 writes it; every
    rank loads it.
    Random augmentation streams are not restored: a resumed run continues with the same weights, optimizer state
    and epoch count, not with bit-identical random crops.
    """

    def __init__(
        self,
        save_dir: str | Path,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_scheduler: Any = None,
        evaluator: Any = None,
        best_saver: Any = None,
        filename: str = "last.pt",
        resume: bool = True,
    ) -> None:
        self.path = Path(str(save_dir)) / filename
        self.network = network
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.evaluator = evaluator
        self.best_saver = best_saver
        self.resume = bool(resume)
        self.resumed_epoch: int | None = None

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)
        engine.add_event_handler(Events.COMPLETED, self.save, True)

    def _best_checkpoint(self) -> Any:
        return getattr(self.best_saver, "_key_metric_checkpoint", None) if self.best_saver is not None else None

    def state_dict(self, engine: Any, completed: bool = False) -> dict[str, Any]:
        """The resumable state after the engine's current epoch."""
        state: dict[str, Any] = {
            "model": unwrap(self.network).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "trainer": dict(engine.state_dict()),
            "epoch": int(engine.state.epoch),
            "completed": bool(completed),
        }
        if self.lr_scheduler is not None:
            state["lr_scheduler"] = self.lr_scheduler.state_dict()
        if self.evaluator is not None:
            best = getattr(self.evaluator.state, "best_metric", -1)
            state["evaluator"] = {
                "best_metric": float(best) if best is not None and math.isfinite(float(best)) else -1.0,
                "best_metric_epoch": int(getattr(self.evaluator.state, "best_metric_epoch", -1)),
            }
        checkpoint = self._best_checkpoint()
        if checkpoint is not None:
            state["best_saver"] = {"_saved": [(float(p), str(f)) for p, f in checkpoint.state_dict()["_saved"]]}
        return state

    def save(self, engine: Any, completed: bool = False) -> None:
        """Write the checkpoint atomically (rank 0 only)."""
        if _rank() != 0:
            return
        state = self.state_dict(engine, completed=completed)
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))
        logger.debug("saved resumable checkpoint %s (epoch %d)", self.path, engine.state.epoch)

    def load(self, engine: Any) -> None:
        """Resume from the checkpoint if it exists and its run did not complete."""
        self.resumed_epoch = None
        if not self.resume or not self.path.is_file():
            return
        state = read_checkpoint(self.path)
        if state.get("completed", False):
            logger.info("%s is from a finished training (epoch %s): starting a new training.", self.path,
                        state.get("epoch"))
            return
        unwrap(self.network).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and "lr_scheduler" in state:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        max_epochs = engine.state.max_epochs
        engine.load_state_dict(state["trainer"])
        engine.state.max_epochs = max_epochs
        if self.evaluator is not None and "evaluator" in state:
            self.evaluator.state.best_metric = state["evaluator"]["best_metric"]
            self.evaluator.state.best_metric_epoch = state["evaluator"]["best_metric_epoch"]
        checkpoint = self._best_checkpoint()
        if checkpoint is not None and "best_saver" in state:
            checkpoint.load_state_dict({"_saved": [tuple(x) for x in state["best_saver"]["_saved"]]})
        self.resumed_epoch = int(engine.state.epoch)
        logger.info("Resumed training from %s at epoch %d of %s.", self.path, engine.state.epoch, max_epochs)
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            logger.warning("the resumed checkpoint already reached max_epochs=%s: nothing left to train.", max_epochs)
