"""NIfTI writing: every gzip level gives the same image, ISA-L and zlib agree, outputs are reproducible."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from data_prep import writers
from data_prep.writers import ISAL_LEVELS, write_nifti


def _image() -> sitk.Image:
    rng = np.random.default_rng(0)
    arr = (rng.normal(0, 200, size=(9, 21, 17)).cumsum(axis=2)).astype(np.int16)  # compressible, not constant
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((2.0, 2.0, 2.0))
    img.SetOrigin((-10.0, 4.5, 33.0))
    img.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    return img


def test_isal_is_installed_with_the_io_extra() -> None:
    # setup.cfg's io extra installs isal; without it levels 1-3 silently fall back to 3-4x slower zlib
    assert writers.igzip is not None


@pytest.mark.parametrize("level", [0, 1, 3, 6])
@pytest.mark.parametrize("use_isal", [True, False])
def test_every_level_and_codec_round_trips(tmp_path: Path, level: int, use_isal: bool) -> None:
    img = _image()
    out = write_nifti(img, tmp_path / "a.nii.gz", level, use_isal=use_isal)
    back = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    assert back.GetSpacing() == img.GetSpacing()
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-6)
    # a standard gzip stream that nibabel reads to the same voxels (x, y, z order)
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), sitk.GetArrayFromImage(img).transpose(2, 1, 0))
    assert [p.name for p in tmp_path.iterdir()] == ["a.nii.gz"]  # no temporaries left


def test_isal_and_zlib_write_the_same_nifti(tmp_path: Path) -> None:
    img = _image()
    for level in ISAL_LEVELS:
        a = write_nifti(img, tmp_path / f"isal{level}.nii.gz", level)
        b = write_nifti(img, tmp_path / f"zlib{level}.nii.gz", level, use_isal=False)
        assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())
        assert a.read_bytes() != b.read_bytes()  # really two different compressors


def test_output_is_reproducible_and_names_no_temporary(tmp_path: Path) -> None:
    img = _image()
    first = write_nifti(img, tmp_path / "one" / "case.nii.gz").read_bytes()
    second = write_nifti(img, tmp_path / "two" / "case.nii.gz").read_bytes()
    assert first == second  # no time stamp, no (temporary, random) file name in the gzip header
    assert first[3] & 0x08 == 0  # FNAME flag clear
    assert first[4:8] == b"\0\0\0\0"  # MTIME 0


def test_bad_level_and_suffix_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression_level"):
        write_nifti(_image(), tmp_path / "a.nii.gz", 10)
    with pytest.raises(ValueError, match=r"\.nii\.gz or \.nii"):
        write_nifti(_image(), tmp_path / "a.nrrd")
    assert list(tmp_path.iterdir()) == []
