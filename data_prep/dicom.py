"""DICOM series reading with strict validation (work in progress: see issue 4)."""

from __future__ import annotations

__all__ = ["read_dicom_series", "read_dicom_files"]


def read_dicom_series(folder, series_uid=None):
    raise NotImplementedError("DICOM reading is being written")


def read_dicom_files(files, source=None, series_uid=None):
    raise NotImplementedError("DICOM reading is being written")
