"""Builders of bad inputs for the fault catalogue: each writes one synthetic faulty file into a folder.

Everything is made here, in a temporary folder: a small CT-like volume (int16 HU, a bright blob in soft tissue) and
its label, then the fault: a truncated gzip stream, NaN/Inf voxels, zero or negative header spacing, a sheared
direction, undeclared label values... Only public file formats and libraries are used (nibabel, SimpleITK), so the
same tests run against any version of the readers.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

__all__ = ["ct_image", "label_image", "write_nifti_raw", "truncate", "snapshot", "one_error_line", "FILE_FAULTS",
           "MAX_LINE"]

MAX_LINE = 300  # the longest error line a user may be shown


def ct_image(size: tuple[int, int, int] = (24, 24, 12), seed: int = 0) -> sitk.Image:
    """A CT-like int16 volume (HU): soft tissue around -50 with a +120 HU ellipsoid; spacing 1.5 x 1.5 x 3 mm."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]]
    c = [s / 2 for s in size]
    blob = ((x - c[0]) / (size[0] / 4)) ** 2 + ((y - c[1]) / (size[1] / 4)) ** 2 + ((z - c[2]) / (size[2] / 3)) ** 2 < 1
    arr = rng.normal(-50, 10, (size[2], size[1], size[0]))
    arr[blob] = rng.normal(120, 10, int(blob.sum()))
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing((1.5, 1.5, 3.0))
    img.SetOrigin((-20.0, 10.0, 5.0))
    return img


def label_image(image: sitk.Image, value: int = 1) -> sitk.Image:
    """The blob of :func:`ct_image` as a uint8 label holding ``value``."""
    arr = (sitk.GetArrayViewFromImage(image) > 50).astype(np.uint8) * value
    lab = sitk.GetImageFromArray(arr)
    lab.CopyInformation(image)
    return lab


def write_nifti_raw(path: Path, array_zyx: np.ndarray, pixdim=(1.5, 1.5, 3.0), sform: np.ndarray | None = None) -> Path:
    """A NIfTI written by nibabel with exactly the given ``pixdim`` (no qform; sform only when given)."""
    data = np.ascontiguousarray(np.transpose(array_zyx, (2, 1, 0)))
    img = nib.Nifti1Image(data, None)
    img.header.set_qform(None, code=0)
    img.header.set_sform(sform, code=2 if sform is not None else 0)
    img.header["pixdim"][1:4] = pixdim
    nib.save(img, str(path))
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut ``path`` to ``fraction`` of its bytes (a copy interrupted half way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (to check that inputs are never modified)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a command's stderr; fails on a traceback, none or several error lines."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert len(lines[0]) <= MAX_LINE, f"{len(lines[0])} characters: {lines[0][:400]}"
    return lines[0]


# ------------------------------------------------------------------------------------------ faulty image files
# each: (folder, case name) -> (file written, regex the one-line error must match besides the file name)


def _truncated_nii_gz(folder: Path, name: str):
    p = folder / f"{name}.nii.gz"
    sitk.WriteImage(ct_image(), str(p))
    return truncate(p), r"truncated"


def _nan_nifti(folder: Path, name: str):
    arr = sitk.GetArrayFromImage(ct_image()).astype(np.float32)
    arr[3, 5:9, 5:9] = np.nan
    return write_nifti_raw(folder / f"{name}.nii.gz", arr), r"non-finite|NaN"


def _inf_mha(folder: Path, name: str):
    img = sitk.Cast(ct_image(), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img)
    arr[2, 2, 2] = np.inf
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    p = folder / f"{name}.mha"
    sitk.WriteImage(out, str(p))
    return p, r"non-finite|infinite"


def _zero_spacing(folder: Path, name: str):
    arr = sitk.GetArrayFromImage(ct_image())
    return write_nifti_raw(folder / f"{name}.nii.gz", arr, pixdim=(1.5, 0.0, 3.0)), r"spacing"


def _negative_spacing(folder: Path, name: str):
    arr = sitk.GetArrayFromImage(ct_image())
    return write_nifti_raw(folder / f"{name}.nii.gz", arr, pixdim=(-1.5, 1.5, 3.0)), r"spacing"


def _sheared_mha(folder: Path, name: str):
    p = folder / f"{name}.mha"
    sitk.WriteImage(ct_image(), str(p))
    text = p.read_bytes()
    sheared = re.sub(rb"TransformMatrix = [^\n]*", b"TransformMatrix = 1 0 0 0.3 1 0 0 0 1", text, count=1)
    assert sheared != text
    p.write_bytes(sheared)
    return p, r"orthonormal"


def _sheared_nifti_sform(folder: Path, name: str):
    arr = sitk.GetArrayFromImage(ct_image())
    sform = np.array([[1.5, 0.5, 0, 0], [0, 1.5, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]])
    return write_nifti_raw(folder / f"{name}.nii.gz", arr, sform=sform), r"orthonormal"


def _truncated_mha_compressed(folder: Path, name: str):
    p = folder / f"{name}.mha"
    sitk.WriteImage(ct_image(), str(p), useCompression=True)
    return truncate(p, 0.7), r"truncated"


def _truncated_nrrd(folder: Path, name: str):
    p = folder / f"{name}.nrrd"
    sitk.WriteImage(ct_image(), str(p), useCompression=True)
    return truncate(p, 0.7), r"truncated"


def _truncated_nii(folder: Path, name: str):
    p = folder / f"{name}.nii"
    sitk.WriteImage(ct_image(), str(p))
    return truncate(p, 0.6), r"truncated"


def _empty_file(folder: Path, name: str):
    p = folder / f"{name}.nii.gz"
    p.write_bytes(b"")
    return p, r"empty|cannot read|unreadable"


FILE_FAULTS = {
    "truncated_nii_gz": _truncated_nii_gz,
    "truncated_nii": _truncated_nii,
    "truncated_mha_zlib": _truncated_mha_compressed,
    "truncated_nrrd_gzip": _truncated_nrrd,
    "nan_voxels_nifti": _nan_nifti,
    "inf_voxels_mha": _inf_mha,
    "zero_spacing_nifti": _zero_spacing,
    "negative_spacing_nifti": _negative_spacing,
    "sheared_direction_mha": _sheared_mha,
    "sheared_sform_nifti": _sheared_nifti_sform,
    "empty_file": _empty_file,
}
