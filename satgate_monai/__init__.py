"""satgate-monai: Select-Attend-Transfer (SAT) skip connections for MONAI.

Importing the package registers the skip gates as MONAI network components (``SkipGate``) and the truncated ReLU in
MONAI's activation factory (``Act["trelu"]``). It needs only torch and monai.
"""

from __future__ import annotations

from satgate_monai.networks import *  # noqa: F403 - the package's public API is the networks API
from satgate_monai.networks import __all__ as _networks_all

__version__ = "0.1.0"

__all__ = [*_networks_all, "__version__"]
