"""A multi-series CT study built from a real CT image: two reconstructions, a localizer, an SR and a dose report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid

from tests.data_prep.dicom_factory import write_sr
from tests.data_prep.study_factory import write_dose_report
from tests.infer.helpers import write_ct_series

__all__ = ["CtStudy", "write_ct_study"]


@dataclass(frozen=True)
class CtStudy:
    """The study folder, its UIDs and the thin reconstruction's SOP Instance UIDs by slice."""

    folder: Path
    study: str
    thin: str
    thick: str
    localizer: str
    others: tuple[str, ...]  # SR and dose report series
    thin_sops: list[str]
    thin_image: sitk.Image


def write_ct_study(image: sitk.Image, folder: Path, *, patient_id: str = "STUDY1", modality: str = "CT",
                   descriptions: tuple[str, str] = ("ABD 1.0 soft", "ABD 2.0 soft")) -> CtStudy:
    """Write ``image`` (HU) as series 3 "ABD 1.0 soft" and every other slice of it as series 2 "ABD 2.0 soft", with
    a coronal localizer (series 1), an SR and a CT dose report (Secondary Capture) in one study, files mixed in
    ``folder`` as a PACS export may leave them. ``modality`` and ``descriptions`` (thin, thick) relabel the two
    reconstructions and the localizer (e.g. ``"MR"``, ``("t2_tse_tra", "t2_tse_tra_2mm")``)."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}-staging"
    thin_sops = write_ct_series(image, staging / "thin", patient_id=patient_id, series_number=3)
    write_ct_series(image[:, :, ::2], staging / "thick", patient_id=patient_id, series_number=2, seed=1)
    first = pydicom.dcmread(next((staging / "thin").iterdir()), stop_before_pixels=True)
    study, frame = str(first.StudyInstanceUID), str(first.FrameOfReferenceUID)
    uids = {}
    for tag, desc in zip(("thin", "thick"), descriptions):
        for p in sorted((staging / tag).iterdir()):
            ds = pydicom.dcmread(p)
            ds.StudyInstanceUID, ds.FrameOfReferenceUID, ds.SeriesDescription = study, frame, desc
            ds.Modality = modality
            uids[tag] = str(ds.SeriesInstanceUID)
            ds.save_as(folder / f"{tag}_{p.name}.dcm", enforce_file_format=True)
    loc = pydicom.dcmread(next((staging / "thin").iterdir()))
    loc.StudyInstanceUID, loc.FrameOfReferenceUID, loc.Modality = study, frame, modality
    loc.SeriesInstanceUID, loc.SeriesNumber, loc.SeriesDescription = generate_uid(), 1, "Topogram"
    loc.SOPInstanceUID = loc.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    loc.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    loc.Rows, loc.Columns = 32, 48
    loc.PixelData = bytes(32 * 48 * 2)
    loc.save_as(folder / "localizer.dcm", enforce_file_format=True)
    shutil.rmtree(staging)
    others = []
    for path, make in ((folder / "sr.dcm", lambda p: write_sr(p)), (folder / "dose.dcm", write_dose_report)):
        make(path)
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.PatientID, ds.PatientName = study, patient_id, first.PatientName
        ds.save_as(path, enforce_file_format=True)
        others.append(str(ds.SeriesInstanceUID))
    return CtStudy(folder, study, uids["thin"], uids["thick"], str(loc.SeriesInstanceUID), tuple(others), thin_sops,
                   image)
