"""The MONAI Label server on a real PACS: Orthanc with DICOMweb (``serve --studies http://127.0.0.1:PORT/dicom-web``).

MR phantom series are stored in a private Orthanc (``tests/orthanc.py``); the server lists them (and not a CT series,
the prostate bundle being an MR model), infers on a series, and a submitted label goes back into Orthanc as a
DICOM-SEG that references the source series, found with a DICOMweb query and read back with highdicom.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import REPO_ROOT
from tests.label.client import LabelClient, label_python, offline_run, serving
from tests.label.phantoms import copy_bundle, mr_phantom, write_random_weights

PROSTATE = "prostate_mri_sat"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_series(folder: Path, volume_xyz: np.ndarray, modality: str, patient: str) -> tuple[str, str, list[Path]]:
    """One axial DICOM file per slice of an (X, Y, Z) volume, 0.9 x 0.9 x 3 mm; returns (study, series, files)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    sop_class = MR_STORAGE if modality == "MR" else CT_STORAGE
    files = []
    for k in range(volume_xyz.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.Modality = f"Phantom^{patient}", patient, modality
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 1, k + 1, f"phantom {modality}"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-30.0, -25.0, -18.0 + 3.0 * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [0.9, 0.9], 3.0
        pixels = np.rint(volume_xyz[:, :, k].T).astype(np.int16)  # rows run along y, columns along x
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels.tobytes()
        path = folder / f"{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return study, series, files


@pytest.mark.slow
def test_serve_on_orthanc_lists_infers_and_stores_dicom_seg(orthanc, tmp_path):
    import highdicom as hd
    import nibabel as nib
    import SimpleITK as sitk

    from data_prep.readers import read_image

    python = label_python()
    orthanc.clear()
    series = {}
    for seed, modality in ((1, "MR"), (2, "MR"), (3, "CT")):
        image = mr_phantom(seed)[0]
        study, uid, files = write_series(tmp_path / "dicom" / f"s{seed}", image, modality, f"P{seed}")
        for f in files:
            orthanc.upload(f)
        series[seed] = (study, uid)
    balance = tmp_path / "balance.nii.gz"  # series 1 as a NIfTI, to balance the random weights on
    sitk.WriteImage(read_image(tmp_path / "dicom" / "s1"), str(balance))
    bundle = copy_bundle(REPO_ROOT / "bundles" / PROSTATE, tmp_path / "bundles" / PROSTATE)
    write_random_weights(bundle, balance_on=balance, seed=1)

    with serving(tmp_path, orthanc.dicomweb, [bundle], python) as server:
        client = LabelClient(python, server.url, tmp_path / "client")
        try:
            status, body = server.get("/datastore/")
            assert status == 200 and json.loads(body)["total"] == 2, body  # the two MR series, not the CT one
            picked = client.call("next_sample", "first", {})["id"]
            assert picked in {series[1][1], series[2][1]}
            image_id = series[1][1]

            t = time.perf_counter()
            served = client.call("infer", PROSTATE, image_id, {})
            first_infer = time.perf_counter() - t
            label = nib.load(served["file"])
            assert label.shape == mr_phantom(1)[0].shape
            cached = next((tmp_path / "app" / "dicomweb-cache").rglob(f"{image_id}.nii.gz"))
            proc = offline_run(python, bundle, cached, tmp_path / "offline")
            assert proc.wait(timeout=300) == 0, (tmp_path / "offline" / "offline.log").read_text()[-3000:]
            ref = nib.load(next((tmp_path / "offline").rglob("*_seg.nii.gz")))
            mismatch = int((np.asanyarray(label.dataobj) != np.asanyarray(ref.dataobj)).sum())
            print(f"DICOMweb: first infer {first_infer:.2f} s; {mismatch} of {ref.shape} voxels differ from offline")
            assert mismatch == 0 and np.allclose(label.affine, ref.affine, atol=1e-4)
            assert 0.05 < (np.asanyarray(label.dataobj) > 0).mean() < 0.95, "a one-class label shows no mismatch"
            assert client.error("infer", PROSTATE, generate_uid(), {})[0] == 404

            truth = mr_phantom(1)[1]  # on the series' grid: the NIfTI conversion keeps the (X, Y, Z) order
            submitted = tmp_path / "submitted.nii.gz"
            nib.save(nib.Nifti1Image(truth, nib.load(cached).affine), submitted)
            client.call("save_label", image_id, str(submitted), "final", {"model": PROSTATE})
            assert json.loads(server.get("/datastore/")[1])["completed"] == 1

            # in the PACS: one SEG series in the source study, referencing the source series
            study = series[1][0]
            segs = orthanc.get_json(f"/dicom-web/studies/{study}/series?Modality=SEG")
            assert len(segs) == 1, segs
            seg_uid = segs[0]["0020000E"]["Value"][0]
            instances = orthanc.get_json(f"/dicom-web/studies/{study}/series/{seg_uid}/instances")
            sop = instances[0]["00080018"]["Value"][0]
            found = json.loads(orthanc.request("/tools/lookup", "POST", sop.encode())[1])
            raw = orthanc.request(f"/instances/{found[0]['ID']}/file")[1]
            seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(io.BytesIO(raw)))
            assert seg.StudyInstanceUID == study
            assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image_id
            assert [s.SegmentLabel for s in seg.SegmentSequence] == ["prostate"]
            source = {ds.SOPInstanceUID: k for k, ds in enumerate(
                pydicom.dcmread(f) for f in sorted((tmp_path / "dicom" / "s1").glob("*.dcm")))}
            uids = sorted(source, key=source.get)
            pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1], combine_segments=True)
            stored = np.transpose(np.asarray(pixels), (2, 1, 0))  # (slices, rows, columns) -> (X, Y, Z)
            assert stored.shape == truth.shape and int((stored != truth).sum()) == 0

            # a second labelled series, then a one-epoch training on the PACS's labelled series
            client.call("infer", PROSTATE, series[2][1], {})  # fetches the series, as opening it in Slicer does
            second = next((tmp_path / "app" / "dicomweb-cache").rglob(f"{series[2][1]}.nii.gz"))
            nib.save(nib.Nifti1Image(mr_phantom(2)[1], nib.load(second).affine), tmp_path / "second.nii.gz")
            client.call("save_label", series[2][1], str(tmp_path / "second.nii.gz"), "final", {"model": PROSTATE})
            weights = (bundle / "models" / "model.pt").read_bytes()
            client.call("train_start", PROSTATE, {"max_epochs": 1, "val_split": 0.5, "multi_gpu": False})
            t0 = time.perf_counter()
            while client.call("train_status").get("status") in ("SUBMITTED", "RUNNING"):
                assert time.perf_counter() - t0 < 600, "training on the PACS's labels did not finish"
                time.sleep(1.0)
            status = client.call("train_status")
            assert status["status"] == "DONE", json.dumps(status)[-3000:]
            assert (bundle / "models" / "model.pt").read_bytes() != weights
        finally:
            client.close()
