"""SAT-equipped networks; bundles name them by full dotted path, e.g. ``satgate_monai.networks.nets.SATUNet``."""

from __future__ import annotations

from satgate_monai.networks.nets.sat_di2in import DI2IN_CHANNELS, SATDI2IN
from satgate_monai.networks.nets.sat_dynunet import SATDynUNet
from satgate_monai.networks.nets.sat_fcdensenet import FCDENSENET_PRESETS, SATFCDenseNet
from satgate_monai.networks.nets.sat_unet import SATUNet
from satgate_monai.networks.nets.sat_vnet import SATVNet

__all__ = ["DI2IN_CHANNELS", "FCDENSENET_PRESETS", "SATDI2IN", "SATDynUNet", "SATFCDenseNet", "SATUNet", "SATVNet"]
