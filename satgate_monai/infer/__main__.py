"""Entry point: ``python -m satgate_monai.infer --help``."""

from __future__ import annotations

import sys

from satgate_monai.infer.cli import main

if __name__ == "__main__":
    sys.exit(main())
