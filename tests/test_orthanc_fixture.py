"""The shared Orthanc fixture: a real PACS answering DICOMweb on 127.0.0.1, private to the test session."""

from __future__ import annotations

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def _tiny_dicom(path):
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "FIXTURE1", "Fixture^Test", "OT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(range(16))
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_orthanc_fixture_stores_and_answers_dicomweb(orthanc, tmp_path):
    assert orthanc.url.startswith("http://127.0.0.1:") and orthanc.process.poll() is None
    ds = _tiny_dicom(tmp_path / "one.dcm")
    orthanc.upload(tmp_path / "one.dcm")
    studies = orthanc.get_json("/dicom-web/studies")
    uids = [s["0020000D"]["Value"][0] for s in studies]
    assert ds.StudyInstanceUID in uids
    series = orthanc.get_json(f"/dicom-web/studies/{ds.StudyInstanceUID}/series")
    assert [s["0020000E"]["Value"][0] for s in series] == [ds.SeriesInstanceUID]
    assert str(orthanc.storage) in orthanc.log.parent.joinpath("orthanc.json").read_text()
    orthanc.clear()
    assert orthanc.get_json("/dicom-web/studies") in (None, [])
