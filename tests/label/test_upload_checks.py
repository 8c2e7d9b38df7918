"""What the MONAI Label server accepts as an uploaded image or label (satgate_monai.label.validation)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from satgate_monai.label.validation import UploadError, check_image_upload, check_label_upload, upload_suffix
from tests.label.phantoms import MR_AFFINE, mr_phantom


def _nifti(path, array, affine=MR_AFFINE):
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, affine), path)
    return path


@pytest.fixture
def volume(tmp_path):
    image, label = mr_phantom(0)
    return _nifti(tmp_path / "mr.nii.gz", image), label


def test_suffixes():
    assert upload_suffix("a/b/case.NII.GZ") == ".nii.gz"
    assert upload_suffix("seg.seg.nrrd") == ".seg.nrrd"
    assert upload_suffix("x.png") == ".png"
    assert upload_suffix("notes.txt") == "" and upload_suffix("archive.gz") == ""


def test_a_good_image_is_accepted_and_summarised(volume):
    summary = check_image_upload(volume[0])
    assert summary.size == (56, 48, 14) and summary.components == 1
    assert np.allclose(summary.spacing, (0.9, 0.9, 3.0), atol=1e-5)


def test_unreadable_images_are_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(UploadError, match=r"^upload 'notes': not an image file the served models take"):
        check_image_upload(text, name="upload 'notes'")
    fake = tmp_path / "fake.nii.gz"
    fake.write_text("not an image\n")
    with pytest.raises(UploadError, match=r"fake.nii.gz: cannot be read as a .nii.gz image") as err:
        check_image_upload(fake)
    assert "\n" not in str(err.value) and str(fake) not in str(err.value)


def test_nan_in_a_nifti_is_found_although_itk_reads_it_as_zero(tmp_path):
    image = mr_phantom(0)[0]
    image[1, 2, 3] = np.nan
    image[4, 5, 6] = np.inf
    path = _nifti(tmp_path / "nan.nii.gz", image)
    assert not np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).any()  # why nibabel counts them
    with pytest.raises(UploadError, match=r"2 of 37632 pixel values are not finite"):
        check_image_upload(path)
    nrrd = tmp_path / "nan.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(image), str(nrrd))
    with pytest.raises(UploadError, match=r"2 of 37632 pixel values are not finite"):
        check_image_upload(nrrd)


def test_labels_must_hold_known_integer_values(tmp_path, volume):
    image, label = volume
    ok = _nifti(tmp_path / "ok.nii.gz", label)
    assert check_label_upload(ok, image, {1}).size == (56, 48, 14)
    with pytest.raises(UploadError, match=r"label values \[2\] are not labels of the served models \(known: \[0, 1\]"):
        check_label_upload(_nifti(tmp_path / "two.nii.gz", label * 2), image, {1})
    assert check_label_upload(tmp_path / "two.nii.gz", image, {1, 2})
    with pytest.raises(UploadError, match="non-integer values"):
        check_label_upload(_nifti(tmp_path / "half.nii.gz", label * 0.5), image, {1})
    nan_label = label.astype(np.float32)
    nan_label[0, 0, 0] = np.nan
    with pytest.raises(UploadError, match="not finite"):
        check_label_upload(_nifti(tmp_path / "nan.nii.gz", nan_label), image, {1})


def _shifted(affine):
    affine[:3, 3] += (2.0, 0.0, 0.0)
    return affine


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        (lambda a, m: (a[:, :-1], m), "its size (56, 47, 14) differs"),
        (lambda a, m: (a, m @ np.diag([1.0, 1.0, 2.0, 1.0])), "its spacing"),
        (lambda a, m: (a, _shifted(m)), "its origin"),
    ],
    ids=["size", "spacing", "origin"],
)
def test_labels_must_lie_on_the_image_grid(tmp_path, volume, change, fault):
    image, label = volume
    array, affine = change(label, MR_AFFINE.copy())
    path = _nifti(tmp_path / "off.nii.gz", array, affine)
    with pytest.raises(UploadError, match="not on the grid of its image mr.nii.gz") as err:
        check_label_upload(path, image, {1})
    assert fault in str(err.value)


def test_direction_is_part_of_the_grid(tmp_path, volume):
    image, label = volume
    flipped = MR_AFFINE.copy()
    flipped[:, 1] *= -1  # same origin, the y axis reversed
    with pytest.raises(UploadError, match="its direction"):
        check_label_upload(_nifti(tmp_path / "flip.nii.gz", label, flipped), image, {1})


def test_picture_labels(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "skin.png")
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 1
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert check_label_upload(tmp_path / "mask.png", tmp_path / "skin.png", {1}).size == (30, 20)
    Image.fromarray(mask[:, :-1]).save(tmp_path / "narrow.png")
    with pytest.raises(UploadError, match=r"its size \(29, 20\) differs from the image's \(30, 20\)"):
        check_label_upload(tmp_path / "narrow.png", tmp_path / "skin.png", {1})
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "rgb_mask.png")
    with pytest.raises(UploadError, match="a label has one value per pixel, this file has 3"):
        check_label_upload(tmp_path / "rgb_mask.png", tmp_path / "skin.png", {1})
