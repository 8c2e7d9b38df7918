"""``python -m satgate_monai.report params [--format markdown|csv]``."""

from __future__ import annotations

import sys

from satgate_monai.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
