"""The one test table of the registered gates: what each can do and what it costs on a skip of ``C`` channels.

Adding a gate to the package adds its row here; the registry tests (``test_gate_registry.py``) and every network's
shared checks (``base.py``) read this table.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["GATE_TABLE", "CAPABILITIES", "GATES", "gate_cost"]

#: name -> ((transfers_one_channel, has_selection, produces_attention, foldable),
#:          C -> (channels the gate transfers, the gate's own parameters))
GATE_TABLE: dict[str, tuple[tuple[bool, bool, bool, bool], Callable[[int], tuple[int, int]]]] = {
    "org": ((False, False, False, False), lambda c: (c, 0)),  # C maps, nothing
    "at": ((True, False, True, False), lambda c: (1, c + 1)),  # one map, K (C) + bias (1)
    "st": ((False, True, False, False), lambda c: (c, c)),  # C maps, w (C)
    "sat": ((True, True, True, True), lambda c: (1, 2 * c + 1)),  # one map, w (C) + K (C) + bias (1)
}

#: name -> the capability flags, in :data:`satgate_monai.networks.factories.GATE_CAPABILITIES` order
CAPABILITIES = {name: flags for name, (flags, _) in GATE_TABLE.items()}
#: the gate names, in registry order
GATES = tuple(GATE_TABLE)


def gate_cost(gate: str, channels: int) -> tuple[int, int]:
    """``(channels the gate transfers, the gate's own parameters)`` for a skip of ``channels`` channels."""
    return GATE_TABLE[gate][1](channels)
