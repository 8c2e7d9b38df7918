"""Serve satgate-monai's bundles from a MONAI Label server (3D Slicer, OHIF).

MONAI Label runs in its own environment (``.ci/monailabel_env.sh``, see ``docs/label.md``) because it needs
``pydicom<3``. This package part has two halves:

- ``python -m satgate_monai.label serve --studies DIR`` (stdlib only, runs in any environment): finds the MONAI Label
  environment's python, checks every bundle there, writes a small app folder and execs the server in its place.
- ``satgate_monai.label.app`` (imported only inside the MONAI Label environment): the MONAI Label app whose infer task
  works around monai 1.6.1's ``Spacingd`` (it updates every ``image_*`` key, and MONAI Label adds a string
  ``image_path``) and serves ``models/model.pt``, and whose datastores (a studies folder or a DICOMweb PACS) check
  uploads at the door.

``checkpoints`` (which checkpoint file is served) and ``validation`` (what an upload must be) need neither MONAI
Label nor a server.
"""

from __future__ import annotations

__all__: list[str] = []
