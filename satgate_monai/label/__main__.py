"""``python -m satgate_monai.label``: see :mod:`satgate_monai.label.cli`."""

from __future__ import annotations

import sys

from satgate_monai.label.cli import main

if __name__ == "__main__":
    sys.exit(main())
