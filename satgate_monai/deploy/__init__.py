"""MONAI Deploy App SDK applications for the 3D bundles (liver CT, prostate MR): DICOM study in, DICOM-SEG out.

Needs the MONAI Deploy App SDK, which lives in its own environment (``bash .ci/deploy_env.sh``); importing this
package does not import it. The per-bundle application folders are ``deploy/<bundle>/`` (see docs/pacs.md).
"""

from __future__ import annotations

__all__ = ["BUNDLE_ENV", "DEVICE_ENV", "SERIES_ENV"]

BUNDLE_ENV = "SATGATE_BUNDLE"  # the bundle folder when -m does not point at one
DEVICE_ENV = "SATGATE_DEVICE"  # auto (default), cpu, cuda, cuda:N
SERIES_ENV = "SATGATE_SERIES_UID"  # a SeriesInstanceUID to read whatever the rules say (the CLI's --series)
