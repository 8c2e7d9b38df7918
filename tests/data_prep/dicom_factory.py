"""Write synthetic DICOM series with pydicom for the tests (each fault is one keyword away from a valid series)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["write_series", "write_enhanced", "write_sr", "volume", "CT_STORAGE", "ENHANCED_CT_STORAGE"]

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.22"


def volume(shape: tuple[int, int, int] = (6, 12, 10), seed: int = 0) -> np.ndarray:
    """A (z, y, x) int16 HU volume with distinct values per slice (so slice order errors show)."""
    rng = np.random.default_rng(seed)
    vol = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    vol[:, 0, 0] = np.arange(shape[0]) * 100  # slice signature
    return vol


def _base(sop_class: str, sop_uid: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = "Phantom^Test"
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    return ds


def _set_int16_pixels(ds: FileDataset, stored: np.ndarray) -> None:
    """The image pixel module of signed 16-bit grey pixels: ``stored`` is (rows, columns) or (frames, rows, columns)."""
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = stored.astype(np.int16).tobytes()


def write_series(
    folder: Path,
    vol: np.ndarray,
    spacing: tuple[float, float, float] = (0.7, 0.8, 2.5),
    origin: Sequence[float] = (-50.0, -60.0, 100.0),
    row: Sequence[float] = (1.0, 0.0, 0.0),
    col: Sequence[float] = (0.0, 1.0, 0.0),
    *,
    series_uid: str | None = None,
    series_number: int = 1,
    description: str = "synthetic CT",
    positions: Sequence[Sequence[float]] | None = None,
    slopes: Sequence[float] | None = None,
    intercepts: Sequence[float] | None = None,
    image_types: Sequence[Sequence[str]] | None = None,
    orientations: Sequence[Sequence[float]] | None = None,
    names: Sequence[str] | None = None,
    gantry_tilt: float | None = None,
) -> list[Path]:
    """Write ``vol`` (z, y, x, HU) as one CT file per slice; stored = (HU - intercept) / slope (int16).

    Args:
        spacing: (column spacing along ``row``, row spacing along ``col``, slice step) in mm.
        positions: override ImagePositionPatient per slice (else origin + k * step * normal).
        slopes, intercepts, image_types, orientations: per-slice overrides.
        names: file names (default ``slice_000.dcm``...).
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    row_a, col_a = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row_a, col_a)
    paths = []
    for k in range(vol.shape[0]):
        sop = generate_uid()
        ds = _base(CT_STORAGE, sop)
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
        ds.InstanceNumber = k + 1
        ds.ImageType = list(image_types[k]) if image_types else ["ORIGINAL", "PRIMARY", "AXIAL"]
        pos = positions[k] if positions is not None else np.asarray(origin, float) + k * spacing[2] * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ori = orientations[k] if orientations is not None else list(row_a) + list(col_a)
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in ori]
        ds.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[0]:g}"]
        ds.SliceThickness = f"{spacing[2]:g}"
        if gantry_tilt is not None:
            ds.GantryDetectorTilt = f"{gantry_tilt:g}"
        slope = slopes[k] if slopes is not None else 1.0
        inter = intercepts[k] if intercepts is not None else -1024.0
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{inter:g}"
        stored = np.rint((vol[k].astype(np.float64) - inter) / slope).astype(np.int16)
        _set_int16_pixels(ds, stored)
        name = names[k] if names is not None else f"slice_{k:03d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced(
    path: Path,
    vol: np.ndarray,
    spacing: tuple[float, float, float] = (0.7, 0.8, 2.5),
    origin: Sequence[float] = (-50.0, -60.0, 100.0),
    row: Sequence[float] = (1.0, 0.0, 0.0),
    col: Sequence[float] = (0.0, 1.0, 0.0),
    frame_order: Sequence[int] | None = None,
    slopes: Sequence[float] | None = None,
) -> Path:
    """Write ``vol`` as one Enhanced CT multi-frame file (per-frame positions and rescale, shared orientation)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _base(ENHANCED_CT_STORAGE, generate_uid())
    ds.Modality = "CT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 3
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    order = list(frame_order) if frame_order is not None else list(range(vol.shape[0]))
    ds.NumberOfFrames = len(order)
    row_a, col_a = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row_a, col_a)
    shared = Dataset()
    ori = Dataset()
    ori.ImageOrientationPatient = [f"{v:.8f}" for v in list(row_a) + list(col_a)]
    meas = Dataset()
    meas.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[0]:g}"]
    meas.SliceThickness = f"{spacing[2]:g}"
    shared.PlaneOrientationSequence = Seq([ori])
    shared.PixelMeasuresSequence = Seq([meas])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    per_frame, frames = [], []
    for j, k in enumerate(order):
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [f"{v:.6f}" for v in np.asarray(origin, float) + k * spacing[2] * normal]
        item.PlanePositionSequence = Seq([pos])
        slope = slopes[j] if slopes is not None else 1.0
        pvt = Dataset()
        pvt.RescaleSlope = f"{slope:g}"
        pvt.RescaleIntercept = "-1024"
        pvt.RescaleType = "HU"
        item.PixelValueTransformationSequence = Seq([pvt])
        per_frame.append(item)
        frames.append(np.rint((vol[k].astype(np.float64) + 1024) / slope).astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = Seq(per_frame)
    _set_int16_pixels(ds, np.stack(frames))
    ds.save_as(path, enforce_file_format=True)
    return path


def write_sr(path: Path, series_uid: str | None = None) -> Path:
    """A minimal Structured Report (a non-image object that must be ignored)."""
    ds = _base(SR_STORAGE, generate_uid())
    ds.Modality = "SR"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.ValueType = "CONTAINER"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def read_back(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(str(path))
