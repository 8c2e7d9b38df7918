"""Pure modelling: skip gates, their MONAI factory, and SAT-equipped networks (torch + monai only)."""

from __future__ import annotations

from satgate_monai.networks.blocks import ATGate, OrgGate, SATGate, SelectionWeights, STGate
from satgate_monai.networks.factories import SKIP_GATE_NAMES, SkipGate, build_skip_gate, gate_name
from satgate_monai.networks.layers import TReLU, trelu

__all__ = [
    "ATGate",
    "OrgGate",
    "SATGate",
    "STGate",
    "SelectionWeights",
    "SKIP_GATE_NAMES",
    "SkipGate",
    "TReLU",
    "build_skip_gate",
    "gate_name",
    "trelu",
]
