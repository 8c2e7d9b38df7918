"""MONAI factories for the SAT components: the ``SkipGate`` registry and ``Act["trelu"]``.

``SkipGate`` is a :class:`monai.networks.layers.LayerFactory`, the machinery behind MONAI's ``Act``, ``Norm`` and
``Conv``: ``SkipGate["sat"]`` returns :class:`~satgate_monai.networks.blocks.skip_gates.SATGate`. Networks name a gate
by a string or a ``(name, kwargs)`` pair, so a bundle config switches it with one key.
"""

from __future__ import annotations

from typing import Any, Union

from monai.networks.layers.factories import Act, LayerFactory, split_args
from monai.utils import look_up_option
from torch import nn

from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, STGate
from satgate_monai.networks.layers.trelu import TReLU

__all__ = ["SkipGate", "SKIP_GATE_NAMES", "GateSpec", "build_skip_gate", "gate_name", "register_trelu"]

GateSpec = Union[str, tuple[str, dict[str, Any]], list]
"""A gate given as a name (``"sat"``) or a ``(name, kwargs)`` pair (``("sat", {"selection_init": 0.5})``)."""

SkipGate = LayerFactory(name="Skip gates", description="Factory for Select-Attend-Transfer skip-connection gates.")
SkipGate.add_factory_class("sat", SATGate, "Select-Attend-Transfer: one attention channel from selected features.")
SkipGate.add_factory_class("st", STGate, "Select-Transfer: the C channels scaled by trelu(w).")
SkipGate.add_factory_class("at", ATGate, "Attend-Transfer: one attention channel, no selection.")
SkipGate.add_factory_class("org", OrgGate, "The plain skip connection.")

SKIP_GATE_NAMES: tuple[str, ...] = ("sat", "st", "at", "org")


def gate_name(gate: GateSpec) -> str:
    """The lower-case registry name of a gate spec, validated (``ValueError`` with a "did you mean" otherwise)."""
    name, _ = split_args(tuple(gate) if isinstance(gate, list) else gate)
    if not isinstance(name, str):
        raise ValueError(f"a skip gate must be named by a string, got {name!r}.")
    return look_up_option(name.lower(), SKIP_GATE_NAMES)


def build_skip_gate(gate: GateSpec, spatial_dims: int, in_channels: int) -> nn.Module:
    """Build a gate from a name or ``(name, kwargs)``.

    Args:
        gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``; names are case-insensitive.
        spatial_dims: 2 or 3.
        in_channels: channels of the skip feature map.

    Returns:
        the gate module; its ``out_channels`` is 1 for ``sat``/``at`` and ``in_channels`` for ``st``/``org``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones) or bad arguments.

    Example::

        >>> build_skip_gate(("sat", {"selection_init": 0.5}), spatial_dims=2, in_channels=16).out_channels
        1
    """
    name = gate_name(gate)
    _, kwargs = split_args(tuple(gate) if isinstance(gate, list) else gate)
    return SkipGate[name](spatial_dims, in_channels, **kwargs)


def register_trelu() -> None:
    """Register :class:`TReLU` in MONAI's activation factory as ``Act["trelu"]`` (idempotent)."""
    if "TRELU" not in Act.components:
        Act.add_factory_class("trelu", TReLU, "Truncated ReLU clamp(x, 0, 1) of Select-Attend-Transfer.")


register_trelu()
