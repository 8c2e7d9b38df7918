"""``python deploy/prostate_mri_sat -i DICOM_DIR -o OUT -m BUNDLE``: the application folder run as the SDK documents."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when run as `python -m deploy.prostate_mri_sat`

from app import App

if __name__ == "__main__":
    App().run()
