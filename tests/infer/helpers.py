"""Test helpers for the inference CLI: a DICOM series writer, a threshold "network", geometry utilities.

``ThresholdNet`` is a stand-in for a trained network whose answer is known: two logits ``(-d, d)`` with
``d = x - level``, so after the bundle's argmax the mask is ``scaled intensity > level``, i.e. a known HU threshold.
Running it through the bundle's real preprocessing and the CLI's return to the source grid, the mask must reproduce
thresholding the source image on the source grid, which checks geometry (a flip, shift or transposition would not
reproduce it), not only shapes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

__all__ = ["ThresholdNet", "write_ct_series", "rotation", "dice", "lps_affine_to_ras", "centroid_mm", "set_args",
           "read_report"]


class ThresholdNet(nn.Module):
    """``(N, C, *S) -> (N, 2, *S)`` logits ``(-(x0 - level), x0 - level) * 50``; ``level`` is its only parameter."""

    def __init__(self, level: float = 0.5, **_ignored) -> None:
        super().__init__()
        self.level = nn.Parameter(torch.tensor(float(level)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = (x[:, :1] - self.level) * 50.0
        return torch.cat([-d, d], dim=1)


def rotation(z_deg: float, x_deg: float = 0.0) -> np.ndarray:
    """A 3x3 rotation: ``x_deg`` about x, then ``z_deg`` about z (direction cosines as columns)."""
    a, b = math.radians(z_deg), math.radians(x_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rz @ rx


def write_ct_series(image: sitk.Image, folder: Path, *, patient_id: str = "LUNG1", series_number: int = 3,
                    seed: int = 0, corrupt_slice: int | None = None) -> list[str]:
    """Write a 3D HU image as a CT DICOM series (one file per slice, shuffled file names); return SOP UIDs by z.

    Geometry comes from the image: ImageOrientationPatient = direction columns x and y, ImagePositionPatient of
    slice ``k`` = origin + k * spacing_z * direction column z. Pixels are stored as uint16 with RescaleIntercept
    -1024. ``corrupt_slice`` truncates that slice's file (a broken series).
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = sitk.GetArrayFromImage(image).astype(np.int32)  # (z, y, x)
    d = np.asarray(image.GetDirection()).reshape(3, 3)
    sp = image.GetSpacing()
    origin = np.asarray(image.GetOrigin())
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    order = rng.permutation(arr.shape[0])
    uids = []
    for k in range(arr.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Lung", patient_id, "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", "A1"
        ds.ReferringPhysicianName, ds.Modality, ds.Manufacturer = "", "CT", "test"
        ds.SeriesNumber, ds.InstanceNumber = series_number, int(order[k]) + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*d[:, 0], *d[:, 1])]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + k * sp[2] * d[:, 2]]
        ds.PixelSpacing = [f"{sp[1]:.8f}", f"{sp[0]:.8f}"]
        ds.SliceThickness = f"{sp[2]:.6f}"
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = np.clip(arr[k] + 1024, 0, 65535).astype(np.uint16).tobytes()
        path = folder / f"IM{int(order[k]):04d}"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        if corrupt_slice == k:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        uids.append(ds.SOPInstanceUID)
    return uids


def lps_affine_to_ras(a: np.ndarray) -> np.ndarray:
    """An LPS index -> world affine as RAS (what nibabel reports)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ a


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def centroid_mm(mask_xyz: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World centroid of a mask ``(X, Y, Z)`` under an index -> world affine."""
    idx = np.argwhere(mask_xyz).mean(axis=0)
    return (affine @ np.r_[idx, 1.0])[:3]


def set_args(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [a for o in overrides for a in ("--set", o)]


def read_report(out: Path) -> dict[str, dict[str, str]]:
    """``report.csv`` rows by case."""
    import csv

    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        return {r["case"]: r for r in csv.DictReader(f)}


def add_localizer(folder: Path) -> str:
    """Add a coronal LOCALIZER image of the same series to ``folder`` (as scanners do); return its SOP UID."""
    import pydicom
    from pydicom.uid import generate_uid

    src = pydicom.dcmread(next(p for p in sorted(folder.iterdir()) if p.is_file()))
    ds = src.copy()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.Rows, ds.Columns = 32, 48
    ds.InstanceNumber = 999
    ds.PixelData = np.zeros((32, 48), np.uint16).tobytes()
    pydicom.dcmwrite(folder / "LOCALIZER", ds, enforce_file_format=True)
    return ds.SOPInstanceUID
