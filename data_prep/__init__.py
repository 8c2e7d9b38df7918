"""Data preparation for satgate-monai: validated readers, isotropic resampling, dataset importers and demo phantoms.

This package stands alone: it never imports ``satgate_monai``. Command line: ``python -m data_prep --help``.
"""

from __future__ import annotations

__all__: list[str] = []
