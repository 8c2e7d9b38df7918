"""Pure modelling: skip gates, their MONAI factory, and SAT-equipped networks (torch + monai only)."""

from __future__ import annotations

from satgate_monai.networks.blocks import ATGate, OrgGate, SATGate, SelectionWeights, SkipGateModule, STGate
from satgate_monai.networks.factories import (
    SKIP_GATE_NAMES,
    SkipGate,
    build_skip_gate,
    gate_class,
    gate_name,
    gate_names,
    register_skip_gate,
)
from satgate_monai.networks.fold import fold_gates
from satgate_monai.networks.inspection import (
    attention_maps,
    gate_modules,
    selection_state,
    selection_weights,
    switched_off_fraction,
    switched_off_fractions,
)
from satgate_monai.networks.layers import TReLU, trelu
from satgate_monai.networks.nets import SATDI2IN, SATDynUNet, SATFCDenseNet, SATUNet, SATVNet

__all__ = [
    "ATGate",
    "OrgGate",
    "SATGate",
    "STGate",
    "SelectionWeights",
    "SkipGateModule",
    "SATDI2IN",
    "SATDynUNet",
    "SATFCDenseNet",
    "SATUNet",
    "SATVNet",
    "SKIP_GATE_NAMES",
    "SkipGate",
    "TReLU",
    "attention_maps",
    "build_skip_gate",
    "fold_gates",
    "gate_class",
    "gate_modules",
    "gate_name",
    "gate_names",
    "register_skip_gate",
    "selection_state",
    "selection_weights",
    "switched_off_fraction",
    "switched_off_fractions",
    "trelu",
]
