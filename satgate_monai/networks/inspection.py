"""Interpretability hooks: every gate's attention map and selection weights, and the share of switched-off channels.

They work on any ``nn.Module`` that contains skip gates (found by type through ``named_modules``), so every network of
the package, and user networks built from :func:`~satgate_monai.networks.factories.build_skip_gate`, are covered.
"""

from __future__ import annotations

import torch
from torch import nn

from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, STGate

__all__ = [
    "GATE_TYPES",
    "gate_modules",
    "selection_weights",
    "switched_off_fraction",
    "switched_off_fractions",
    "attention_maps",
]

GATE_TYPES = (SATGate, STGate, ATGate, OrgGate)


def gate_modules(net: nn.Module) -> dict[str, nn.Module]:
    """Every skip gate of ``net`` by its qualified module name, in registration order."""
    return {name: m for name, m in net.named_modules() if isinstance(m, GATE_TYPES)}


def selection_weights(net: nn.Module) -> dict[str, torch.Tensor]:
    """``trelu(w)`` of every ``sat``/``st`` gate, each of shape ``(C,)``, detached, on the CPU."""
    gates = gate_modules(net).items()
    return {name: g.selection_weights.cpu() for name, g in gates if isinstance(g, (SATGate, STGate))}


def switched_off_fractions(net: nn.Module) -> dict[str, float]:
    """Per ``sat``/``st`` gate, the share of its channels whose selection weight is 0."""
    return {name: float((w == 0).float().mean()) for name, w in selection_weights(net).items()}


def switched_off_fraction(net: nn.Module) -> float:
    """The network's overall share of switched-off skip channels (all ``sat``/``st`` gates pooled).

    Returns ``nan`` when the network has no selecting gate (``org``/``at``).
    """
    weights = list(selection_weights(net).values())
    if not weights:
        return float("nan")
    return float((torch.cat(weights) == 0).float().mean())


@torch.no_grad()
def attention_maps(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``net`` on ``x`` and return the attention map of every ``sat``/``at`` gate.

    Args:
        net: a network containing gates (put it in ``eval()`` mode first for deterministic batch norm).
        x: a network input ``(N, C_in, *S)``.

    Returns:
        ``{gate name: (N, 1, *S_gate)}`` with values in ``(0, 1)``, ``S_gate`` the skip's resolution, detached.
    """
    maps: dict[str, torch.Tensor] = {}
    handles = []
    for name, gate in gate_modules(net).items():
        if isinstance(gate, (SATGate, ATGate)):
            handles.append(gate.register_forward_hook(lambda _m, _i, out, name=name: maps.__setitem__(name, out)))
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return {name: m.detach() for name, m in maps.items()}
