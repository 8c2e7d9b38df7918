"""Device-independent activation-memory meters used by the benchmarks (they work on CPU, where PyTorch keeps no
allocator statistics).

* :func:`saved_tensor_bytes`: the bytes autograd keeps for backward after a forward pass, summed over the unique
  storages handed to ``torch.autograd.graph.saved_tensors_hooks`` (parameters and other given tensors excluded).
* :func:`peak_live_bytes`: the peak of the bytes held by live tensors while a function runs, tracked through a
  ``TorchDispatchMode``: every tensor an operator returns is counted until its last reference dies; storages that
  existed before (inputs, parameters, buffers) and views of them are not counted. Scratch buffers an operator kernel
  allocates and frees internally (e.g. im2col workspaces) are invisible to it, so it measures tensor memory, the
  part a network's design controls. It also counts tensors on the ``meta`` device (shapes without data), so the
  peak of a computation at any size can be counted without allocating or computing it (``benchmarks/capacity.py``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["saved_tensor_bytes", "peak_live_bytes", "LiveTensorMeter"]


def _storage_key(t: torch.Tensor) -> int:
    """The identity of ``t``'s storage (its ``StorageImpl``; also defined for meta tensors, which have no data)."""
    return t.untyped_storage()._cdata


def saved_tensor_bytes(forward: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of the unique storages autograd saves for backward while ``forward()`` runs.

    Args:
        forward: builds the graph and returns a scalar loss (it is back-propagated afterwards to free the graph).
        exclude: tensors whose storages are not counted (typically the parameters and the input batch).

    Returns:
        the number of bytes kept for backward.
    """
    excluded = {_storage_key(t) for t in exclude}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in excluded and key != 0:
            storages[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    loss.backward()
    return sum(storages.values())


class LiveTensorMeter(TorchDispatchMode):
    """A dispatch mode that tracks the bytes held by the tensors operators return (see the module doc).

    Attributes:
        current: bytes held now by tracked tensors.
        peak: the largest ``current`` seen.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.excluded = {_storage_key(t) for t in exclude}
        self.live: dict[int, list[int]] = {}  # storage key -> [bytes, live tensors using it]
        self.tracked: set[int] = set()
        self.current = 0
        self.peak = 0

    def _release(self, key: int, tensor_id: int) -> None:
        self.tracked.discard(tensor_id)
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[key]
            self.current -= entry[0]

    def _track(self, t: torch.Tensor) -> None:
        if id(t) in self.tracked:
            return
        key = _storage_key(t)
        if key == 0 or key in self.excluded:
            return
        entry = self.live.get(key)
        if entry is None:
            nbytes = t.untyped_storage().nbytes()
            self.live[key] = [nbytes, 1]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        else:
            entry[1] += 1
        self.tracked.add(id(t))
        weakref.finalize(t, self._release, key, id(t))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out


def peak_live_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Peak bytes of live tensors created while ``fn()`` runs (the result is released before returning).

    Args:
        fn: the computation, e.g. ``lambda: net(x)`` under ``torch.no_grad()``.
        exclude: pre-existing tensors (parameters, buffers, inputs) whose storages are never counted.
    """
    meter = LiveTensorMeter(exclude)
    with meter:
        result = fn()
    del result
    return meter.peak
