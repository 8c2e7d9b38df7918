"""DICOM series in: NIfTI mask and DICOM-SEG on exactly the source geometry (real CT, axial and oblique)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from satgate_monai.infer.cli import main
from tests.infer.conftest import THRESHOLD_HU, THRESHOLD_OVERRIDES
from tests.infer.helpers import centroid_mm, dice, lps_affine_to_ras, read_report, set_args


def _header_affine(folder: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """LPS affine and (X, Y, Z) size of a series computed from its headers alone (independent of any reader)."""
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))
    p0, p1 = (np.asarray(d.ImagePositionPatient, float) for d in dss[:2])
    ps = [float(v) for v in dss[0].PixelSpacing]
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = iop[:3] * ps[1], iop[3:] * ps[0], p1 - p0
    a[:3, 3] = p0
    return a, (int(dss[0].Columns), int(dss[0].Rows), len(dss))


def _run(bundle: Path, series: Path, out: Path, ckpt: Path) -> None:
    rc = main(["--bundle", str(bundle), "--input", str(series), "--out", str(out), "--ckpt", str(ckpt),
               "--format", "nifti,dicomseg", "--device", "cpu", "--no-progress", *set_args(THRESHOLD_OVERRIDES)])
    assert rc == 0, read_report(out)


def _check_case(series: Path, uids: list[str], source: sitk.Image, out: Path) -> None:
    name = series.name
    seg_nii = nib.load(out / f"{name}_seg.nii.gz")
    # 1. exactly the source grid: shape and affine from the DICOM headers themselves
    affine_lps, size = _header_affine(series)
    assert seg_nii.shape == size
    np.testing.assert_allclose(seg_nii.affine, lps_affine_to_ras(affine_lps), atol=1e-4)
    assert np.issubdtype(seg_nii.get_data_dtype(), np.integer)
    mask = np.asarray(seg_nii.dataobj)
    assert set(np.unique(mask)) <= {0, 1}
    # 2. the content is in the right place: the threshold network reproduces thresholding the source voxels
    truth = sitk.GetArrayFromImage(source).transpose(2, 1, 0) > THRESHOLD_HU
    assert dice(mask, truth) > 0.9
    assert np.linalg.norm(centroid_mm(mask, seg_nii.affine) - centroid_mm(truth, seg_nii.affine)) < 1.0
    # 3. the DICOM-SEG references the source series, frame by frame by SOP Instance UID, and gives the same mask
    ds = pydicom.dcmread(out / f"{name}_seg.dcm")
    src0 = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src0.SeriesInstanceUID
    assert ds.FrameOfReferenceUID == src0.FrameOfReferenceUID and ds.PatientID == src0.PatientID
    seg = hd.seg.segread(out / f"{name}_seg.dcm")
    frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    assert len(frames) == len(uids)
    seen = set()
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ref = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = uids.index(ref)  # which source slice this frame was derived from
        seen.add(k)
        np.testing.assert_array_equal(frames[i].astype(bool), mask[:, :, k].T.astype(bool))
        np.testing.assert_allclose(fg.PlanePositionSequence[0].ImagePositionPatient,
                                   (affine_lps @ np.r_[0, 0, k, 1])[:3], atol=1e-3)
    assert seen == set(range(len(uids)))
    row = read_report(out)[name]  # volumes named by the bundle's channel_def, counted on the source grid
    assert row["status"] == "ok"
    voxel_ml = abs(np.linalg.det(affine_lps[:3, :3])) / 1000.0
    assert float(row["volume_ml_liver"]) == pytest.approx(mask.sum() * voxel_ml, rel=1e-3)


@pytest.mark.slow
def test_axial_series_nifti_and_dicomseg(liver_bundle, ct_dicom, lung_crop, threshold_ckpt, tmp_path):
    series, uids = ct_dicom
    _run(liver_bundle, series, tmp_path / "out", threshold_ckpt)
    _check_case(series, uids, lung_crop, tmp_path / "out")


@pytest.mark.slow
def test_oblique_series(liver_bundle, oblique_dicom, oblique_image, threshold_ckpt, tmp_path):
    series, uids = oblique_dicom
    _run(liver_bundle, series, tmp_path / "out", threshold_ckpt)
    _check_case(series, uids, oblique_image, tmp_path / "out")


def test_dicomseg_on_a_grid_that_does_not_match_the_slices(ct_dicom, lung_crop):
    """Irregular case: labels on another grid (shifted half a slice) -> own plane positions, series still referenced."""
    from satgate_monai.infer.dicomseg import build_dicom_seg, collect_source_instances, match_frames

    folder, uids = ct_dicom
    series = collect_source_instances(folder)[0]
    label = sitk.Image(lung_crop.GetSize(), sitk.sitkUInt8)
    label.CopyInformation(lung_crop)
    assert match_frames(series, label) is not None
    origin = np.asarray(lung_crop.GetOrigin()) + 0.5 * lung_crop.GetSpacing()[2] * np.asarray(
        lung_crop.GetDirection()).reshape(3, 3)[:, 2]
    label.SetOrigin(tuple(origin))
    arr = np.zeros(sitk.GetArrayViewFromImage(label).shape, np.uint8)
    arr[5:9, 40:80, 30:70] = 1
    shifted = sitk.GetImageFromArray(arr)
    shifted.CopyInformation(label)
    assert match_frames(series, shifted) is None
    seg, matched = build_dicom_seg(shifted, series, {1: "liver"}, algorithm_name="test", algorithm_version="0")
    assert not matched
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series[0].SeriesInstanceUID
    fgs = seg.PerFrameFunctionalGroupsSequence
    z = sorted(float(fg.PlanePositionSequence[0].ImagePositionPatient[2]) for fg in fgs)
    np.testing.assert_allclose(z[0], origin[2], atol=1e-3)  # the label grid's own positions
    assert int(np.asarray(seg.pixel_array).sum()) == int(arr.sum())
