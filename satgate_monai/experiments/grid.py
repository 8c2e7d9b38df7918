"""The experiment grid: which networks, gates, peers and seeds, and the network definition of every cell.

A cell is one training + evaluation: ``(network, gate, seed)``. Its ``network_def`` is derived from the task bundle's
own ``network_def`` so every cell shares the recipe: the U-Net keeps the bundle's definition and only its
``skip_gate`` changes; other networks take the bundle's shared vocabulary (``spatial_dims, in_channels, out_channels,
channels, strides``...) with their own defaults for the rest; the MONAI ``AttentionUnet`` peer takes
``spatial_dims, in_channels, out_channels, channels, strides`` (it has no gate and uses MONAI's default init).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monai.utils import look_up_option

from satgate_monai.networks.factories import gate_class, gate_names
from satgate_monai.tasks import TASKS

__all__ = [
    "NETWORKS",
    "PEERS",
    "TASK_BUNDLES",
    "Cell",
    "build_grid",
    "network_def_for",
    "parse_list",
    "fingerprint",
]

# network name -> (dotted target, bundle network_def keys it shares)
NETWORKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "unet": ("satgate_monai.networks.nets.SATUNet", ()),  # () = keep the bundle's whole network_def
    "vnet": ("satgate_monai.networks.nets.SATVNet",
             ("spatial_dims", "in_channels", "out_channels", "channels", "strides", "norm", "dropout", "init")),
    "fcdensenet": ("satgate_monai.networks.nets.SATFCDenseNet",
                   ("spatial_dims", "in_channels", "out_channels", "norm", "dropout", "init")),
    "di2in": ("satgate_monai.networks.nets.SATDI2IN",
              ("spatial_dims", "in_channels", "out_channels", "norm", "dropout", "init")),
}
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "attentionunet": ("monai.networks.nets.AttentionUnet",
                      ("spatial_dims", "in_channels", "out_channels", "channels", "strides", "dropout")),
}
PEER_GATE = "ag"  # the gate column of a peer: MONAI's attention gate
TASK_BUNDLES = {name: task.bundle for name, task in TASKS.items()}  # from the task registry


def parse_list(value: str | Sequence[str], valid: Iterable[str], what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each validated against ``valid`` (``ValueError`` with "did you mean")."""
    items = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    valid = tuple(valid)
    out = []
    for item in items:
        try:
            out.append(look_up_option(item, valid))
        except ValueError as e:
            raise ValueError(f"unknown {what} {item!r}: {e}") from None
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Cell:
    """One training + evaluation of the grid."""

    network: str
    gate: str
    seed: int
    network_def: dict[str, Any] = field(compare=False, hash=False)

    @property
    def key(self) -> str:
        """Folder name, e.g. ``unet-sat-s0``."""
        return f"{self.network}-{self.gate}-s{self.seed}"

    @property
    def is_peer(self) -> bool:
        return self.network in PEERS


def network_def_for(bundle_def: dict[str, Any], network: str, gate: str | None,
                    selection_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``network_def`` of one cell, derived from the bundle's ``network_def``.

    Args:
        bundle_def: the bundle's ``network_def`` (a plain dict with ``_target_``; ``@``/``$`` references resolved).
        network: a key of :data:`NETWORKS` or :data:`PEERS`.
        gate: a registered gate name (``org|at|st|sat``) for our networks, ignored for peers.
        selection_args: keyword arguments of the gates that own selection weights (e.g.
            ``{"selection_init": 1.0}``); the cell's ``skip_gate`` becomes ``[gate, selection_args]`` for them.
    """
    if network in NETWORKS:
        target, shared = NETWORKS[network]
    elif network in PEERS:
        target, shared = PEERS[network]
    else:
        raise ValueError(f"unknown network {network!r}; expected one of {sorted(NETWORKS) + sorted(PEERS)}.")
    base = {k: v for k, v in bundle_def.items() if k != "_target_"}
    out: dict[str, Any] = {"_target_": target}
    out.update(base if not shared else {k: base[k] for k in shared if k in base})
    if network in PEERS:
        channels = out.get("channels")
        if channels is None:
            raise ValueError(f"the bundle's network_def has no 'channels'; {network} needs them: {bundle_def!r}")
        if out.get("strides") is None:
            out["strides"] = [2] * (len(channels) - 1)
        out.pop("skip_gate", None)
    elif selection_args and gate_class(gate).has_selection:
        out["skip_gate"] = [gate, dict(selection_args)]
    else:
        out["skip_gate"] = gate
    return out


def build_grid(bundle_def: dict[str, Any], networks: Sequence[str], gates: Sequence[str], seeds: Sequence[int],
               peers: Sequence[str] = (), selection_args: dict[str, Any] | None = None) -> list[Cell]:
    """Every cell, seed-major (all variants of seed 0 first, so an interrupted run has complete comparisons early).

    ``selection_args`` go to every gate with selection weights (see :func:`network_def_for`)."""
    for g in gates:
        if g not in gate_names():
            raise ValueError(f"unknown gate {g!r}; expected one of {gate_names()}.")
    cells = []
    for seed in seeds:
        for network in networks:
            for gate in gates:
                cells.append(Cell(network, gate, int(seed),
                                  network_def_for(bundle_def, network, gate, selection_args)))
        for peer in peers:
            cells.append(Cell(peer, PEER_GATE, int(seed), network_def_for(bundle_def, peer, None)))
    return cells


def fingerprint(payload: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable settings dict (decides whether a cached cell is still valid)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
