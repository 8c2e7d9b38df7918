"""SAT-equipped networks; bundles name them by full dotted path, e.g. ``satgate_monai.networks.nets.SATUNet``."""

from __future__ import annotations

from satgate_monai.networks.nets.sat_unet import SATUNet

__all__ = ["SATUNet"]
