"""DICOM series validation: one test per fault, plus the real series pydicom ships."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from data_prep.dicom import DicomSeriesError, list_series, read_dicom_series
from data_prep.readers import discover_cases, read_image
from tests.conftest import skip_or_fail
from tests.data_prep.dicom_factory import volume, write_enhanced, write_series, write_sr

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DATA_STORE = Path(pydicom.__file__).parents[1] / "data_store" / "data"


def _arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _expect_error(folder: Path, *fragments: str, **kw) -> str:
    with pytest.raises(DicomSeriesError) as ei:
        read_dicom_series(folder, **kw)
    msg = str(ei.value)
    assert str(folder) in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_valid_series_any_file_order(tmp_path: Path) -> None:
    vol = volume()
    names = [f"{n}.dcm" for n in ("q", "c", "x", "a", "m", "b")]  # alphabetical order != slice order
    write_series(tmp_path / "s", vol, spacing=(0.7, 0.8, 2.5), origin=(-50, -60, 100), names=names)
    img = read_dicom_series(tmp_path / "s")
    assert img.GetSize() == (10, 12, 6)
    np.testing.assert_allclose(img.GetSpacing(), (0.7, 0.8, 2.5))
    np.testing.assert_allclose(img.GetOrigin(), (-50, -60, 100))
    np.testing.assert_allclose(img.GetDirection(), np.eye(3).ravel())
    out = _arr(img)
    assert out.dtype == np.int16  # one integer rescale for the series: an integer type
    np.testing.assert_array_equal(out, vol)


def test_oblique_series_geometry(tmp_path: Path) -> None:
    vol = volume()
    a = np.radians(20)
    row = (np.cos(a), np.sin(a), 0.0)
    col = (0.0, np.cos(0.3), -np.sin(0.3))
    col = tuple(np.array(col) - np.dot(col, row) * np.array(row))
    col = tuple(np.array(col) / np.linalg.norm(col))
    write_series(tmp_path / "s", vol, row=row, col=col)
    img = read_dicom_series(tmp_path / "s")
    d = np.array(img.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(d[:, 0], row, atol=1e-6)
    np.testing.assert_allclose(d[:, 1], col, atol=1e-6)
    np.testing.assert_allclose(d[:, 2], np.cross(row, col), atol=1e-6)
    # the world position of voxel (i, j, k) is origin + D diag(spacing) (i, j, k)
    p = img.TransformIndexToPhysicalPoint((3, 4, 5))
    expected = np.array((-50.0, -60.0, 100.0)) + 3 * 0.7 * np.array(row) + 4 * 0.8 * np.array(col) + 5 * 2.5 * d[:, 2]
    np.testing.assert_allclose(p, expected, atol=1e-4)
    np.testing.assert_array_equal(_arr(img), vol)


def test_several_series_listed_and_pickable(tmp_path: Path) -> None:
    vol = volume()
    write_series(tmp_path / "s", vol, series_uid="1.2.3.4", series_number=2, description="AX 2.5",
                 names=[f"a{k}.dcm" for k in range(6)])
    write_series(tmp_path / "s", vol[:4] + 7, series_uid="1.2.3.5", series_number=3, description="AX bone",
                 names=[f"b{k}.dcm" for k in range(4)])
    msg = _expect_error(tmp_path / "s", "2 image series", "1.2.3.4", "1.2.3.5", "AX bone", "--series")
    assert "6 file(s)" in msg and "4 file(s)" in msg
    picked = read_dicom_series(tmp_path / "s", series_uid="1.2.3.5")
    np.testing.assert_array_equal(_arr(picked), vol[:4] + 7)
    assert {s.uid for s in list_series(tmp_path / "s")} == {"1.2.3.4", "1.2.3.5"}
    _expect_error(tmp_path / "s", "1.9.9 is not in it", series_uid="1.9.9")


def test_missing_slice_refused(tmp_path: Path) -> None:
    files = write_series(tmp_path / "s", volume())
    files[3].unlink()
    _expect_error(tmp_path / "s", "missing slice", "gap of 5.000 mm")


def test_duplicated_position_refused(tmp_path: Path) -> None:
    vol = volume()
    pos = [(-50.0, -60.0, 100.0 + 2.5 * k) for k in range(6)]
    pos[4] = pos[3]
    write_series(tmp_path / "s", vol, positions=pos)
    _expect_error(tmp_path / "s", "duplicated slice position", "slice_003.dcm", "slice_004.dcm")


def test_non_uniform_spacing_refused(tmp_path: Path) -> None:
    z = [0.0, 2.5, 5.0, 8.0, 10.5, 13.0]
    write_series(tmp_path / "s", volume(), positions=[(-50.0, -60.0, 100.0 + v) for v in z])
    _expect_error(tmp_path / "s", "non-uniform slice spacing")


def test_gantry_tilt_refused(tmp_path: Path) -> None:
    # axial slices whose origin moves in y as z advances: a sheared (tilted) stack
    t = np.tan(np.radians(15))
    pos = [(-50.0, -60.0 + 2.5 * k * t, 100.0 + 2.5 * k) for k in range(6)]
    write_series(tmp_path / "s", volume(), positions=pos, gantry_tilt=15)
    _expect_error(tmp_path / "s", "gantry tilt", "GantryDetectorTilt=15", "15.0 deg")


def test_tilted_orientation_without_shear_is_fine(tmp_path: Path) -> None:
    # a scanner that writes the tilt into ImageOrientationPatient gives a rectilinear oblique stack: accepted
    a = np.radians(15)
    col = (0.0, np.cos(a), -np.sin(a))
    write_series(tmp_path / "s", volume(), col=col, gantry_tilt=15)
    img = read_dicom_series(tmp_path / "s")
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3)[:, 1], col, atol=1e-6)


def test_localizer_image_type_excluded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vol = volume((7, 12, 10))
    types = [["ORIGINAL", "PRIMARY", "AXIAL"]] * 6 + [["ORIGINAL", "PRIMARY", "LOCALIZER"]]
    pos = [(-50.0, -60.0, 100.0 + 2.5 * k) for k in range(6)] + [(-50.0, -60.0, 0.0)]
    write_series(tmp_path / "s", vol, positions=pos, image_types=types)
    with caplog.at_level(logging.WARNING, logger="data_prep.dicom"):
        img = read_dicom_series(tmp_path / "s")
    assert img.GetSize()[2] == 6
    np.testing.assert_array_equal(_arr(img), vol[:6])
    assert any("localizer" in r.message and "slice_006.dcm" in r.message for r in caplog.records)


def test_scout_with_other_orientation_excluded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vol = volume((7, 12, 10))
    axial = [1, 0, 0, 0, 1, 0]
    sagittal = [0, 1, 0, 0, 0, -1]
    write_series(tmp_path / "s", vol, orientations=[axial] * 6 + [sagittal],
                 positions=[(-50.0, -60.0, 100.0 + 2.5 * k) for k in range(6)] + [(0.0, -60.0, 120.0)])
    with caplog.at_level(logging.WARNING, logger="data_prep.dicom"):
        img = read_dicom_series(tmp_path / "s")
    np.testing.assert_array_equal(_arr(img), vol[:6])
    assert any("orientation differs" in r.message for r in caplog.records)


def test_mixed_orientations_refused(tmp_path: Path) -> None:
    vol = volume((8, 12, 10))
    axial, coronal = [1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1]
    write_series(tmp_path / "s", vol, orientations=[axial] * 4 + [coronal] * 4)
    _expect_error(tmp_path / "s", "mixed slice orientations")


def test_truncated_file_named(tmp_path: Path) -> None:
    files = write_series(tmp_path / "s", volume())
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 100])
    _expect_error(tmp_path / "s", "truncated", files[2].name)


def test_corrupt_file_named(tmp_path: Path) -> None:
    files = write_series(tmp_path / "s", volume())
    files[1].write_bytes(b"\x00" * 128 + b"DICM" + b"\xff\x13garbage" * 10)
    _expect_error(tmp_path / "s", files[1].name)


def test_non_image_objects_ignored(tmp_path: Path) -> None:
    vol = volume()
    write_series(tmp_path / "s", vol)
    write_sr(tmp_path / "s" / "report_sr.dcm")
    seg = DATA_STORE / "liver.dcm"  # a real DICOM-SEG (pydicom-data)
    if seg.is_file():
        shutil.copy(seg, tmp_path / "s" / "seg.dcm")
    (tmp_path / "s" / "notes.txt").write_text("not dicom")
    np.testing.assert_array_equal(_arr(read_dicom_series(tmp_path / "s")), vol)


def test_per_slice_rescale_applied(tmp_path: Path) -> None:
    vol = volume()
    slopes = [1.0, 0.5, 2.0, 1.0, 0.25, 1.5]
    inters = [-1024.0, -1000.0, -1024.0, -2000.0, -1024.0, -1030.0]
    write_series(tmp_path / "s", vol, slopes=slopes, intercepts=inters)
    out = _arr(read_dicom_series(tmp_path / "s"))
    assert out.dtype == np.float32
    for k in range(6):  # stored values were rounded: HU exact to half a stored unit
        np.testing.assert_allclose(out[k], vol[k], atol=slopes[k] / 2 + 1e-3)
    # applying only the first slice's rescale would be off by far more
    assert np.abs(out[2] - vol[2]).max() < 1.5


def test_enhanced_multiframe_frames_out_of_order(tmp_path: Path) -> None:
    vol = volume()
    write_enhanced(tmp_path / "e" / "enh.dcm", vol, frame_order=[3, 0, 5, 1, 4, 2],
                   slopes=[1, 1, 0.5, 1, 1, 1])
    img = read_dicom_series(tmp_path / "e")
    np.testing.assert_allclose(img.GetOrigin(), (-50, -60, 100))
    np.testing.assert_allclose(img.GetSpacing(), (0.7, 0.8, 2.5))
    np.testing.assert_allclose(_arr(img), vol, atol=0.5 + 1e-3)


def test_real_enhanced_ct_matches_gdcm(tmp_path: Path) -> None:
    src = DATA_STORE / "eCT_Supplemental.dcm"
    if not src.is_file():
        skip_or_fail(f"{src} (pydicom-data) is missing")
    shutil.copy(src, tmp_path / "ect.dcm")
    ours = read_image(tmp_path / "ect.dcm")
    ref = sitk.ReadImage(str(src))  # GDCM reads this enhanced CT correctly: compare in world space
    on_ref = sitk.Resample(ours, ref, sitk.Transform(), sitk.sitkNearestNeighbor, -9999, sitk.sitkInt32)
    np.testing.assert_array_equal(_arr(on_ref), _arr(ref).astype(np.int32))


def test_multiframe_without_functional_groups_refused(tmp_path: Path) -> None:
    src = DATA_STORE / "emri_small.dcm"
    if not src.is_file():
        skip_or_fail(f"{src} (pydicom-data) is missing")
    shutil.copy(src, tmp_path / "emri.dcm")
    with pytest.raises(DicomSeriesError, match="without per-frame functional groups"):
        read_image(tmp_path / "emri.dcm")


def test_real_ct5n_sorted_geometry() -> None:
    folder = PYDICOM_FILES / "dicomdirtests" / "98892001" / "CT5N"
    files = sorted(folder.iterdir())
    z_by_name = [float(pydicom.dcmread(str(f), stop_before_pixels=True).ImagePositionPatient[2]) for f in files]
    assert z_by_name != sorted(z_by_name), "the test needs file names out of slice order"
    img = read_dicom_series(folder)
    assert img.GetSize() == (16, 16, 5)
    # slice k holds the file whose position is the k-th along the normal
    by_z = sorted(zip(z_by_name, files))
    for k, (z, f) in enumerate(by_z):
        assert img.TransformIndexToPhysicalPoint((0, 0, k))[2] == pytest.approx(z, abs=1e-4)
        np.testing.assert_array_equal(_arr(img)[k], pydicom.dcmread(str(f)).pixel_array.astype(np.int64) +
                                      int(pydicom.dcmread(str(f)).RescaleIntercept))
    # and GDCM's sorted reading agrees
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(folder)))
    ref = r.Execute()
    np.testing.assert_allclose(ref.GetOrigin(), img.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ref.GetSpacing(), img.GetSpacing(), atol=1e-4)
    np.testing.assert_array_equal(_arr(ref), _arr(img))


def test_real_ct2_gap_refused() -> None:
    folder = PYDICOM_FILES / "dicomdirtests" / "77654033" / "CT2"
    _expect_error(folder, "missing slice")


def test_discovery_of_dicom_cases(tmp_path: Path) -> None:
    write_series(tmp_path / "cases" / "patA" / "study" / "series", volume())
    write_series(tmp_path / "cases" / "patB", volume(seed=1))
    (tmp_path / "cases" / "empty").mkdir()
    cases = discover_cases(tmp_path / "cases")
    assert sorted(cases) == ["patA", "patB"]
    assert discover_cases(tmp_path / "cases" / "patB") == {"patB": tmp_path / "cases" / "patB"}
    np.testing.assert_array_equal(_arr(read_image(cases["patA"])), volume())
