"""Counts ``pydicom.dcmread`` calls per file in any Python process started with this folder first on PYTHONPATH.

Python imports ``sitecustomize`` at start-up, before any other module, so every later ``from pydicom import dcmread``
(the project's, MONAI's, MONAI Label's, the MONAI Deploy SDK's) gets the counting wrapper. Each call appends the
file's real path as one line to ``$SATGATE_DCMREAD_LOG`` (appending a short line is atomic, so several processes may
share the file). Without that variable nothing is patched. Used by ``tests/infer/test_reads_once.py``.
"""

import os

_LOG = os.environ.get("SATGATE_DCMREAD_LOG")

if _LOG:
    import pydicom
    import pydicom.filereader

    _real_dcmread = pydicom.filereader.dcmread

    def _counting_dcmread(fp, *args, **kwargs):
        name = fp if isinstance(fp, (str, os.PathLike)) else getattr(fp, "name", None)
        if isinstance(name, (str, os.PathLike)):
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(os.path.realpath(name) + "\n")
        return _real_dcmread(fp, *args, **kwargs)

    pydicom.dcmread = pydicom.filereader.dcmread = _counting_dcmread
