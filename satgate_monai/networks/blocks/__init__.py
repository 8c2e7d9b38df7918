"""Building blocks of satgate-monai's networks."""

from __future__ import annotations

from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, SelectionWeights, SkipGateModule, STGate

__all__ = ["ATGate", "OrgGate", "SATGate", "STGate", "SelectionWeights", "SkipGateModule"]
