"""Interpretability hooks: every gate's attention map and selection weights, and where the selection weights lie.

They work on any ``nn.Module`` that contains skip gates (modules of a class registered in
:data:`~satgate_monai.networks.factories.SkipGate`, found through ``named_modules``), so every network of the package,
and user networks built from :func:`~satgate_monai.networks.factories.build_skip_gate`, are covered. Which gates have
selection weights or produce attention is read from the gates' capability flags.

A selection weight ``w`` is in one of three states (``trelu`` has no gradient outside ``(0, 1]``): *off*
(``w <= 0``, the channel is switched off for good), *frozen* (``w >= 1``, passed whole for good) or *between*
(``0 < w < 1``, the channels that select). A ``sat`` gate with no weight between computes ``at`` with channels
dropped; one with every weight frozen computes ``at`` exactly (and ``st`` computes ``org``).
"""

from __future__ import annotations

import torch
from torch import nn

from satgate_monai.networks.blocks.skip_gates import selection_shares
from satgate_monai.networks.factories import gate_classes

__all__ = [
    "gate_modules",
    "selection_weights",
    "raw_selection_weights",
    "switched_off_fraction",
    "switched_off_fractions",
    "selection_state",
    "format_selection_state",
    "attention_maps",
]


def gate_modules(net: nn.Module) -> dict[str, nn.Module]:
    """Every skip gate of ``net`` by its qualified module name, in registration order."""
    types = tuple(gate_classes().values())
    return {name: m for name, m in net.named_modules() if isinstance(m, types)}


def selection_weights(net: nn.Module) -> dict[str, torch.Tensor]:
    """``trelu(w)`` of every gate with selection weights (``sat``/``st``), each of shape ``(C,)``, detached, on the
    CPU."""
    return {name: g.selection_weights.cpu() for name, g in gate_modules(net).items() if g.has_selection}


def raw_selection_weights(net: nn.Module) -> dict[str, torch.Tensor]:
    """The raw ``w`` (before ``trelu``) of every gate with selection weights, each ``(C,)``, detached, on the CPU."""
    return {name: g.selection.weight.detach().cpu() for name, g in gate_modules(net).items() if g.has_selection}


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


def selection_state(net: nn.Module) -> dict[str, dict[str, float]]:
    """Shares of skip channels *off* (``w <= 0``), *between* (``0 < w < 1``) and *frozen* on (``w >= 1``), per gate
    with selection weights and pooled over them as ``"all"`` (weighted by channels); each entry also has ``"n"``
    (channels). Empty when the network has no gate with selection weights.

    Example::

        >>> sorted(selection_state(net)["all"])
        ['between', 'frozen', 'n', 'off']
    """
    raw = raw_selection_weights(net)
    out = {name: {**selection_shares(w), "n": int(w.numel())} for name, w in raw.items()}
    if raw:
        pooled = torch.cat(list(raw.values()))
        out["all"] = {**selection_shares(pooled), "n": int(pooled.numel())}
    return out


def format_selection_state(state: dict[str, dict[str, float]]) -> str:
    """One line per gate and one pooled (``all``): the shares of :func:`selection_state` in words, with a warning
    when no weight lies strictly between 0 and 1 (the gates no longer select). Empty without selecting gates."""
    lines = []
    for name, s in state.items():
        note = "" if s["between"] > 0 else "  <- no weight between 0 and 1: no selection"
        lines.append(f"{'pooled' if name == 'all' else name}: {s['n']} channels, {100 * s['off']:.1f} % off (w <= 0), "
                     f"{100 * s['between']:.1f} % between, {100 * s['frozen']:.1f} % frozen on (w >= 1){note}")
    return "\n".join(lines)


@torch.no_grad()
def attention_maps(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``net`` on ``x`` and return the attention map of every gate that produces one (``sat``/``at``).

    Args:
        net: a network containing gates (put it in ``eval()`` mode first for deterministic batch norm).
        x: a network input ``(N, C_in, *S)``.

    Returns:
        ``{gate name: (N, 1, *S_gate)}`` with values in ``(0, 1)``, ``S_gate`` the skip's resolution, detached.
    """
    maps: dict[str, torch.Tensor] = {}
    handles = []
    for name, gate in gate_modules(net).items():
        if gate.produces_attention:
            handles.append(gate.register_forward_hook(lambda _m, _i, out, name=name: maps.__setitem__(name, out)))
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return {name: m.detach() for name, m in maps.items()}
