"""Safe checkpoint loading: ``torch.load(..., weights_only=True)`` only, flat or ``{"model": state_dict}``.

A checkpoint is a pickle; unpickling an untrusted one with ``weights_only=False`` can run arbitrary code. Here only
PyTorch's restricted unpickler is used (tensors, containers, numbers, strings): anything else (a class, a callable
such as ``os.system`` or ``open``) is refused with :class:`CheckpointError` before it can run. Weights holding NaN or
infinite values are refused too (such a network gives an empty or arbitrary mask), and a checkpoint that does not fit
the network is named in one line: the first few missing/unexpected/mis-shaped keys and their counts.

This is the project's one checkpoint loader: the inference CLI, the Deploy operators, the MONAI Label app (serving,
the list of servable files, the training statistics, the bundle pre-check), the resume handler, the experiments and
the bundles' own ``inference.json``/``evaluate.json`` (:class:`CheckpointLoad` in their ``initialize``/handlers) all
read checkpoints here, so a bad checkpoint reads the same everywhere.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "CheckpointLoad", "load_state_dict", "load_weights", "mismatch", "read_checkpoint"]

logger = logging.getLogger(__name__)

_NESTED_KEYS = ("model", "state_dict", "network", "net")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely, has an unexpected layout, or does not fit the network."""


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """The object saved in ``path`` (a state dict, or a dict of several such as a resume checkpoint), read safely.

    Raises:
        CheckpointError: missing/unreadable file, or a pickle needing anything beyond plain weights (refused
            unexecuted).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"refused checkpoint {p}: it holds objects other than plain weights, and loading it could run code "
            "(torch.load weights_only=True refused it). Re-save it as a state_dict: torch.save(net.state_dict(), path)"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {p}: {type(e).__name__}: {' '.join(str(e).split())}") from None


def load_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)``.

    Accepted layouts: a flat ``{name: tensor}`` dict, or a dict holding it under ``"model"`` (MONAI's
    ``CheckpointSaver``/``CheckpointLoader`` convention and the resume checkpoint ``last.pt``; ``"state_dict"``,
    ``"network"``, ``"net"`` too). A ``"module."`` prefix on every key (DistributedDataParallel) is removed.

    Args:
        path: the checkpoint file.
        map_location: where tensors are loaded (``"cpu"`` or a device).

    Returns:
        ``{parameter name: tensor}``.

    Raises:
        CheckpointError: missing/unreadable file, a pickle needing anything beyond plain weights (refused unexecuted),
            no state dict inside, or NaN/infinite weights.
    """
    p = Path(path)
    obj = read_checkpoint(p, map_location)
    state = obj
    if not _is_state_dict(state) and isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if _is_state_dict(obj.get(key)):
                state = obj[key]
                break
    if not _is_state_dict(state):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"checkpoint {p} holds no state dict: expected {{name: tensor}} or {{'model': state_dict}}, found {keys}"
        )
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"refused checkpoint {p}: {len(bad)} tensor(s) hold NaN or infinite weights "
                              f"({_first(bad)}); a diverged training? Use an earlier checkpoint")
    return state


def _first(keys: list[str], n: int = 2) -> str:
    """``"a, b, c and 7 more"``."""
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def mismatch(state: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """Why ``state`` does not fit a network whose ``state_dict()`` is ``reference``, in one line ('' when it fits).

    Args:
        state: ``{name: tensor}`` read from a checkpoint.
        reference: the network's ``state_dict()`` (names and shapes are compared).
    """
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(reference[k].shape)}" for k in reference
              if k in state and tuple(state[k].shape) != tuple(reference[k].shape)]
    parts = [f"{len(v)} {what} ({_first(v)})" for what, v in
             (("missing key(s)", missing), ("unexpected key(s)", unexpected), ("shape mismatch(es)", shapes)) if v]
    return "; ".join(parts)


def load_weights(net: nn.Module, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load the checkpoint at ``path`` into ``net`` (strict: every key must match), return ``net``.

    Raises:
        CheckpointError: see :func:`load_state_dict`, or keys/shapes that do not fit ``net`` (listed, one line).
    """
    state = load_state_dict(path, map_location)
    try:  # modules may convert an earlier layout of their weights while loading (e.g. the decoder's join)
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = mismatch(state, net.state_dict()) or " ".join(str(e).split())[:150]
        raise CheckpointError(f"checkpoint {path} does not fit the network ({type(net).__name__}): {detail}. "
                              "Another network or task?") from None
    logger.info("loaded %d tensors from %s", len(state), path)
    return net


class CheckpointLoad:
    """A bundle-config step that loads ``load_path`` into ``network`` with :func:`load_weights` (safe, checked).

    Usable where MONAI's ``CheckpointLoader`` was: as an Ignite handler (``attach(engine)`` loads at the start of
    the run) or called directly (``"$@checkpoint_load()"`` in ``initialize``). Missing file, unsafe pickle,
    non-finite weights and mismatching keys all end in one :class:`CheckpointError` line.

    Args:
        load_path: the checkpoint file.
        network: the network to fill.
        map_location: where tensors are loaded.
    """

    def __init__(self, load_path: str | os.PathLike, network: nn.Module,
                 map_location: str | torch.device = "cpu") -> None:
        self.load_path = load_path
        self.network = network
        self.map_location = map_location

    def __call__(self, engine: object = None) -> nn.Module:
        return load_weights(self.network, self.load_path, map_location=self.map_location)

    def attach(self, engine) -> None:
        """Load when ``engine`` starts (an Ignite ``Events.STARTED`` handler)."""
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self)
