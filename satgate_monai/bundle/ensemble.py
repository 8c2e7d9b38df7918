"""Checkpoint ensembles and test-time mirroring around any MONAI inferer, with a bounded memory cost.

:class:`EnsembleInferer` wraps the bundle's own inferer (a :class:`~monai.inferers.SlidingWindowInferer`: the same
windows, overlap and blending for every pass) and averages the softmax probabilities of

* every checkpoint in ``checkpoints`` (nnU-Net's ``-f 0 1 2 3 4``; empty: the network's current weights), and
* every mirroring of the input over a subset of ``mirror_axes`` (nnU-Net's test-time mirroring, all ``2**k``
  subsets of the ``k`` axes including no flip): the input is flipped, inferred, and the output flipped back.

Passes are accumulated into one probability tensor (``acc += softmax(pass)``), never stacked, so memory is one
prediction plus one accumulator whatever the number of passes. The checkpoints' weights are kept on the CPU and
copied into the one network in turn; after a call the network holds the first checkpoint again.

The result is returned as ``log(mean probability)``: the bundle's unchanged postprocessing
(``Activationsd(softmax=True)`` then ``AsDiscreted(argmax=True)``) turns it back into exactly the mean
probabilities (``softmax(log p) = p`` when ``p`` sums to one) and their argmax. With no checkpoint list and no
mirroring the inner inferer's logits are returned untouched.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

from satgate_monai.bundle.checkpoint import CheckpointError, load_state_dict

__all__ = ["EnsembleInferer", "check_mirror_axes", "ensemble_from_config", "mirror_subsets"]

logger = logging.getLogger(__name__)

_TINY = torch.finfo(torch.float32).tiny


def check_mirror_axes(axes: Sequence[int] | None, spatial_dims: int | None = None) -> tuple[int, ...]:
    """Validated spatial axes ``(0 .. spatial_dims-1)``, unique and sorted.

    Raises:
        ValueError: naming the offending value.
    """
    if axes is None:
        return ()
    if isinstance(axes, (int, str)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise ValueError(f"mirror_axes must be a list of spatial axis indices, e.g. [0, 1, 2], got {axes!r}")
    out = tuple(sorted(set(axes)))
    if len(out) != len(axes) or any(a < 0 for a in out):
        raise ValueError(f"mirror_axes must be distinct non-negative spatial axes, got {list(axes)}")
    if spatial_dims is not None and any(a >= spatial_dims for a in out):
        raise ValueError(f"mirror_axes {list(axes)} do not fit a {spatial_dims}D image (axes 0..{spatial_dims - 1})")
    return out


def mirror_subsets(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every subset of ``axes``, the empty one (no flip) first: ``(0, 1)`` -> ``[(), (0,), (1,), (0, 1)]``."""
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


def _first(out: Any) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        return out[0]
    if isinstance(out, Mapping):
        return out.get("pred", next(iter(out.values())))
    return out


class EnsembleInferer(Inferer):
    """Average softmax probabilities over checkpoints and input mirrorings (see the module docstring).

    Args:
        inferer: the inner inferer (e.g. the bundle's ``SlidingWindowInferer``), called as ``inferer(x, network)``.
        checkpoints: checkpoint files of the same network (flat state dict or ``{"model": state_dict}``, loaded
            with ``weights_only=True``); empty: the network's own weights only.
        mirror_axes: spatial axes to mirror over (``[0, 1, 2]`` in 3D: 8 passes per checkpoint); empty: off.

    Raises:
        CheckpointError: an unreadable checkpoint (at construction), or one that does not fit the network (first
            call, or :meth:`check`).
        ValueError: invalid ``mirror_axes``.
    """

    def __init__(self, inferer: Inferer | Callable, checkpoints: Sequence[str | os.PathLike] | None = None,
                 mirror_axes: Sequence[int] | None = None) -> None:
        super().__init__()
        if isinstance(checkpoints, (str, os.PathLike)):
            checkpoints = [checkpoints]
        self.inferer = inferer
        self.checkpoints = [str(c) for c in (checkpoints or [])]
        self.mirror_axes = check_mirror_axes(mirror_axes)
        self.members = [load_state_dict(c, map_location="cpu") for c in self.checkpoints]
        self.checked = False

    @property
    def n_passes(self) -> int:
        """Inner-inferer calls per image: ``max(1, len(checkpoints)) * 2 ** len(mirror_axes)``."""
        return max(1, len(self.members)) * 2 ** len(self.mirror_axes)

    def check(self, network: nn.Module) -> None:
        """Load every checkpoint into ``network`` strictly (raising :class:`CheckpointError` naming the file), then
        leave the first one loaded."""
        for path, state in zip(self.checkpoints, self.members):
            try:
                network.load_state_dict(state, strict=True)
            except RuntimeError as e:
                detail = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
                raise CheckpointError(f"checkpoint {path} does not fit the network ({type(network).__name__}): "
                                      f"{detail[:400]}") from None
        if self.members:
            network.load_state_dict(self.members[0], strict=True)
        self.checked = True

    def __call__(self, inputs: torch.Tensor, network: Callable, *args: Any, **kwargs: Any) -> Any:
        """``inputs (N, C_in, *S)`` -> ``log`` of the mean probabilities ``(N, C_out, *S)`` (see the class).

        A network returning a tuple (e.g. logits and attention maps) gives ``(log p, *further outputs)``: the further
        outputs of the first pass (first checkpoint, no flip), which the averaging leaves out."""
        if not self.members and not self.mirror_axes:
            return self.inferer(inputs, network, *args, **kwargs)
        check_mirror_axes(self.mirror_axes, inputs.ndim - 2)
        if self.members and not isinstance(network, nn.Module):
            raise ValueError(f"a checkpoint ensemble needs an nn.Module network, got {type(network).__name__}")
        if self.members and not self.checked:
            self.check(network)
        acc: torch.Tensor | None = None
        extras: tuple | None = None
        for state in self.members or [None]:
            if state is not None:
                network.load_state_dict(state, strict=True)
            for axes in mirror_subsets(self.mirror_axes):
                dims = [2 + a for a in axes]
                x = torch.flip(inputs, dims) if dims else inputs
                out = self.inferer(x, network, *args, **kwargs)
                logits = _first(out)
                if extras is None and isinstance(out, (tuple, list)):  # the first pass's further outputs
                    extras = tuple(out[1:])
                del out
                if logits.shape[1] < 2:
                    raise ValueError("ensembles and mirroring average softmax probabilities over channels: the network "
                                     f"has {logits.shape[1]} output channel(s); expected 2 or more")
                prob = torch.softmax(logits.float(), dim=1)
                del logits
                if dims:
                    prob = torch.flip(prob, dims)
                if acc is None:
                    acc = prob
                else:
                    acc += prob
                del prob
        if self.members:
            network.load_state_dict(self.members[0], strict=True)
        assert acc is not None
        acc /= self.n_passes
        log_p = torch.log(acc.clamp_min_(_TINY))
        return (log_p, *extras) if extras else log_p


def ensemble_from_config(parser: Any, inferer: Inferer | Callable) -> EnsembleInferer:
    """The config's ``ensemble_inferer`` (a bundle of this package), else an :class:`EnsembleInferer` around
    ``inferer`` built from the config's ``checkpoints`` and ``mirror_axes`` (both optional)."""
    if "ensemble_inferer" in parser:
        try:
            ens = parser.get_parsed_content("ensemble_inferer")
        except RuntimeError as e:  # MONAI wraps the constructor's error: report the checkpoint/axes fault itself
            cause = e.__cause__
            while isinstance(cause, RuntimeError) and cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, (ValueError, OSError)):
                raise cause from None
            raise
        if not isinstance(ens, EnsembleInferer):
            raise ValueError(f"the config's ensemble_inferer must be an EnsembleInferer, got {type(ens).__name__}")
        return ens
    checkpoints = parser.get_parsed_content("checkpoints") if "checkpoints" in parser else None
    mirror_axes = parser.get_parsed_content("mirror_axes") if "mirror_axes" in parser else None
    return EnsembleInferer(inferer, checkpoints=checkpoints, mirror_axes=mirror_axes)
