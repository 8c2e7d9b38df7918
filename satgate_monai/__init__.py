"""satgate-monai: Select-Attend-Transfer (SAT) skip connections for MONAI.

Importing the package registers the skip gates as MONAI network components (``SkipGate``) and the truncated ReLU in
MONAI's activation factory (``Act["trelu"]``). It needs only torch and monai.
"""

from __future__ import annotations

from satgate_monai.networks import (
    SKIP_GATE_NAMES,
    ATGate,
    OrgGate,
    SATGate,
    SelectionWeights,
    SkipGate,
    STGate,
    TReLU,
    build_skip_gate,
    gate_name,
    trelu,
)

__version__ = "0.1.0"

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
    "__version__",
]
