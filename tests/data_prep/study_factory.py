"""A generated multi-series study as a PACS sends it: localizer, two reconstructions, an SR and a dose report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from tests.data_prep.dicom_factory import _base, volume, write_series, write_sr

__all__ = ["Study", "write_study", "write_dose_report", "SECONDARY_CAPTURE"]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


@dataclass(frozen=True)
class Study:
    """UIDs of the generated series and the voxel arrays (z, y, x, HU) of the two reconstructions."""

    folder: Path
    localizer: str
    thick: str
    thin: str
    sr: str
    dose: str
    thick_volume: np.ndarray
    thin_volume: np.ndarray


def write_dose_report(path: Path, series_number: int = 999) -> str:
    """A CT dose report as scanners send it: one Secondary Capture image, Modality CT, DERIVED/SECONDARY, no
    patient geometry. Returns its SeriesInstanceUID."""
    ds = _base(SECONDARY_CAPTURE, generate_uid())
    ds.Modality = "CT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "Dose Report"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((16, 16), np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds.SeriesInstanceUID


def write_study(folder: Path, *, thin_description: str = "ABD 2.5mm", thick_description: str = "ABD 5mm",
                thin_slices: int = 32, thick_slices: int = 16, shape: tuple[int, int] = (12, 10)) -> Study:
    """Write one study into ``folder`` (flat, files of all series mixed as a PACS export may be):

    - series 1: a coronal localizer, 2 images, ImageType LOCALIZER;
    - series 2: an axial reconstruction at 5 mm (``thick_slices`` images);
    - series 3: the same range at 2.5 mm (``thin_slices`` images);
    - series 900: a Structured Report; series 999: a Secondary Capture dose report (Modality CT).
    """
    loc = generate_uid()
    write_series(folder, volume((2, 16, 12), seed=9), spacing=(1.0, 1.0, 40.0), origin=(-50, 0, 200),
                 row=(1, 0, 0), col=(0, 0, -1), series_uid=loc, series_number=1, description="Topogram",
                 image_types=[["ORIGINAL", "PRIMARY", "LOCALIZER"]] * 2, names=[f"loc{k}.dcm" for k in range(2)])
    thick, thin = generate_uid(), generate_uid()
    thick_vol = volume((thick_slices, *shape), seed=1)
    thin_vol = volume((thin_slices, *shape), seed=2)
    write_series(folder, thick_vol, spacing=(0.7, 0.8, 5.0), series_uid=thick, series_number=2,
                 description=thick_description, names=[f"r5_{k:03d}.dcm" for k in range(thick_slices)])
    write_series(folder, thin_vol, spacing=(0.7, 0.8, 2.5), series_uid=thin, series_number=3,
                 description=thin_description, names=[f"r2_{k:03d}.dcm" for k in range(thin_slices)])
    sr = generate_uid()
    write_sr(folder / "sr.dcm", series_uid=sr)
    dose = write_dose_report(folder / "dose.dcm")
    return Study(folder, loc, thick, thin, sr, dose, thick_vol, thin_vol)
