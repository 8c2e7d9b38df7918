"""``python -m satgate_monai.experiments``: see :mod:`satgate_monai.experiments.cli`."""

from __future__ import annotations

import sys

from satgate_monai.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
