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

from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, SkipGateModule, STGate
from satgate_monai.networks.layers.trelu import TReLU

__all__ = [
    "SkipGate",
    "SKIP_GATE_NAMES",
    "GATE_CAPABILITIES",
    "GateSpec",
    "build_skip_gate",
    "gate_class",
    "gate_classes",
    "gate_name",
    "gate_names",
    "register_skip_gate",
    "register_trelu",
]

GateSpec = Union[str, tuple[str, dict[str, Any]], list]
"""A gate given as a name (``"sat"``) or a ``(name, kwargs)`` pair (``("sat", {"selection_init": "uniform"})``)."""

GATE_CAPABILITIES = ("transfers_one_channel", "has_selection", "produces_attention", "foldable")
"""The capability flags every gate class declares (see :class:`SkipGateModule`)."""

SkipGate = LayerFactory(name="Skip gates", description="Factory for Select-Attend-Transfer skip-connection gates.")
"""The one list of gate names: everything below reads it, in registration order (the order of tables and plots)."""


def register_skip_gate(name: str, cls: type, desc: str | None = None) -> None:
    """Register a gate class under ``name`` (case-insensitive): ``SkipGate[name]``, :func:`gate_name`,
    :func:`build_skip_gate`, inspection, folding, inference and the experiment grid accept it from then on.

    Raises:
        ValueError: ``cls`` is not a :class:`SkipGateModule` subclass, or ``name`` is taken by another class.
    """
    if not (isinstance(cls, type) and issubclass(cls, SkipGateModule)):
        raise ValueError(f"a skip gate class must subclass SkipGateModule (and declare {GATE_CAPABILITIES}), "
                         f"got {cls!r}.")
    key = name.lower()
    existing = gate_classes().get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"skip gate name {name!r} is already registered for {existing.__name__}.")
    if existing is None:
        SkipGate.add_factory_class(key, cls, desc)


def gate_classes() -> dict[str, type]:
    """Every gate registered in :data:`SkipGate`, ``{name: class}``, in registration order (``org, at, st, sat``,
    then any added)."""
    return {n.lower(): SkipGate[n] for n in SkipGate.names}


register_skip_gate("org", OrgGate, "The plain skip connection.")
register_skip_gate("at", ATGate, "Attend-Transfer: one attention channel, no selection.")
register_skip_gate("st", STGate, "Select-Transfer: the C channels scaled by trelu(w).")
register_skip_gate("sat", SATGate, "Select-Attend-Transfer: one attention channel from selected features.")


def gate_names(**flags: bool) -> tuple[str, ...]:
    """Registered gate names, in registration order, optionally those whose capability flags match, e.g.
    ``gate_names(has_selection=True)`` -> ``("st", "sat")``.

    Raises:
        ValueError: for a flag that is not one of :data:`GATE_CAPABILITIES`.
    """
    unknown = set(flags) - set(GATE_CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown gate capabilities {sorted(unknown)}; valid: {GATE_CAPABILITIES}.")
    return tuple(n for n, c in gate_classes().items() if all(getattr(c, f, False) == v for f, v in flags.items()))


SKIP_GATE_NAMES: tuple[str, ...] = gate_names()
"""The built-in gate names (``org, at, st, sat``); :func:`gate_names` also lists gates registered later."""


def gate_name(gate: GateSpec) -> str:
    """The lower-case registry name of a gate spec, validated (``ValueError`` with a "did you mean" otherwise)."""
    name, _ = split_args(tuple(gate) if isinstance(gate, list) else gate)
    if not isinstance(name, str):
        raise ValueError(f"a skip gate must be named by a string, got {name!r}.")
    return look_up_option(name.lower(), gate_names())


def gate_class(gate: GateSpec) -> type:
    """The registered class of a gate spec (its capability flags are class attributes)."""
    return SkipGate[gate_name(gate)]


def build_skip_gate(gate: GateSpec, spatial_dims: int, in_channels: int) -> nn.Module:
    """Build a gate from a name or ``(name, kwargs)``.

    Args:
        gate: a registered name (``"sat" | "st" | "at" | "org"``) or ``(name, kwargs)``; case-insensitive.
        spatial_dims: 2 or 3.
        in_channels: channels of the skip feature map.

    Returns:
        the gate module; its ``out_channels`` is 1 for gates that transfer one channel (``sat``/``at``) and
        ``in_channels`` for the others (``st``/``org``).

    Raises:
        ValueError: for an unknown name (the message lists the valid ones) or bad arguments.

    Example::

        >>> build_skip_gate(("sat", {"selection_init": "uniform"}), spatial_dims=2, in_channels=16).out_channels
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
