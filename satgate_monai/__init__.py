"""satgate-monai: Select-Attend-Transfer (SAT) skip connections for MONAI.

Importing the package registers the skip gates as MONAI network components (``SkipGate``) and the truncated ReLU in
MONAI's activation factory (``Act["trelu"]``). It needs only torch and monai.
"""

from __future__ import annotations

from satgate_monai.networks import (
    SKIP_GATE_NAMES,
    ATGate,
    OrgGate,
    SATFCDenseNet,
    SATGate,
    SATUNet,
    SATVNet,
    SelectionWeights,
    SkipGate,
    STGate,
    TReLU,
    attention_maps,
    build_skip_gate,
    fold_gates,
    gate_modules,
    gate_name,
    selection_weights,
    switched_off_fraction,
    switched_off_fractions,
    trelu,
)

__version__ = "0.1.0"

__all__ = [
    "ATGate",
    "OrgGate",
    "SATGate",
    "STGate",
    "SelectionWeights",
    "SATFCDenseNet",
    "SATUNet",
    "SATVNet",
    "SKIP_GATE_NAMES",
    "SkipGate",
    "TReLU",
    "attention_maps",
    "build_skip_gate",
    "fold_gates",
    "gate_modules",
    "gate_name",
    "selection_weights",
    "switched_off_fraction",
    "switched_off_fractions",
    "trelu",
    "__version__",
]
