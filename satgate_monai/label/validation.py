"""What the MONAI Label server accepts from clients: images and labels checked before anything is stored.

An uploaded image must be readable as an image of a type the served models take, finite everywhere; a label must be
readable, hold only the label values the served models know (integers, 0 = background), and lie on its image's grid
(same size, and for 3D volumes the same spacing, origin and direction). Every refusal is an :class:`UploadError`
whose message is one line naming the file and the fault; the server answers it with HTTP 422 and stores nothing.

Files are read with the project's readers (:func:`data_prep.readers.read_image` for volumes, SimpleITK for 2D
pictures), all behind :func:`read_upload`, the one place to change how uploads are read. Runs in both environments
(the project's and the MONAI Label one): numpy and SimpleITK only, no MONAI Label import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.files import IMAGE_SUFFIXES, PICTURE_SUFFIXES

__all__ = [
    "PICTURE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "UploadError",
    "UploadSummary",
    "check_image_upload",
    "check_label_upload",
    "read_upload",
    "upload_suffix",
]

# the project's volume suffixes that stand for one file (not a detached NRRD header), and 3D Slicer's segmentations
VOLUME_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s != ".nhdr") + (".seg.nrrd",)
GRID_ATOL = 1e-3  # mm (origin, spacing) and direction cosines: rounding of NIfTI/NRRD headers written elsewhere


class UploadError(ValueError):
    """An uploaded image or label is refused; the message is one line naming the file and the fault."""


@dataclass(frozen=True)
class UploadSummary:
    """What was read from an accepted file.

    Attributes:
        size: the grid size (x, y[, z]) as SimpleITK orders it.
        spacing, origin: per axis, in mm (pictures: 1 and 0).
        direction: the flattened direction cosine matrix.
        components: values per pixel (3 for an RGB picture).
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    components: int


def upload_suffix(name: str | os.PathLike) -> str:
    """The image suffix of a file name (``.nii.gz``, ``.png``...), or '' when it is not an image type served here."""
    low = Path(name).name.lower()
    for suffix in sorted(VOLUME_SUFFIXES + PICTURE_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return suffix
    return ""


def read_upload(path: str | os.PathLike, name: str | None = None) -> sitk.Image:
    """Read an uploaded file with the project's readers.

    Args:
        path: the file (the server's temporary copy).
        name: the name to report (the client's file name or the image id); default the file name.

    Raises:
        UploadError: not an image type served here, or not readable as one.
    """
    shown = name or Path(path).name
    suffix = upload_suffix(path)
    if not suffix:
        accepted = ", ".join(VOLUME_SUFFIXES + PICTURE_SUFFIXES)
        raise UploadError(f"{shown}: not an image file the served models take (accepted: {accepted})")
    try:
        if suffix in PICTURE_SUFFIXES:
            return sitk.ReadImage(str(path))
        from data_prep.readers import read_image

        # non-finite values are let through here (as 0) and counted by the caller, which words the refusal for a
        # client; every other check of the project's input validation (whole stream, spacing, direction) applies
        return read_image(path, nonfinite="zero")
    except Exception as e:  # any reader failure is the file's fault here
        reason = " ".join(str(e).replace(str(path), "the file").split())[:300] or type(e).__name__
        raise UploadError(f"{shown}: cannot be read as a {suffix} image ({reason})") from None


def _summary(image: sitk.Image) -> UploadSummary:
    return UploadSummary(
        size=tuple(int(v) for v in image.GetSize()),
        spacing=tuple(float(v) for v in image.GetSpacing()),
        origin=tuple(float(v) for v in image.GetOrigin()),
        direction=tuple(float(v) for v in image.GetDirection()),
        components=int(image.GetNumberOfComponentsPerPixel()),
    )


def check_image_upload(path: str | os.PathLike, name: str | None = None) -> UploadSummary:
    """Check an uploaded image: readable, of a served type, non-empty and finite everywhere.

    Raises:
        UploadError: with the one-line reason.
    """
    shown = name or Path(path).name
    image = read_upload(path, shown)
    array = sitk.GetArrayViewFromImage(image)
    if array.size == 0:
        raise UploadError(f"{shown}: the image has no pixels (size {image.GetSize()})")
    bad = _nonfinite(path, array)
    if bad:
        raise UploadError(f"{shown}: {bad} of {array.size} pixel values are not finite (NaN or infinity)")
    return _summary(image)


def _nonfinite(path: str | os.PathLike, array: np.ndarray) -> int:
    """How many values of the file are NaN or infinite (``array``, read by :func:`read_upload`, has them as 0). NIfTI
    files are counted with nibabel: ITK's NIfTI reader turns NaN into 0 when it reads, which would hide them."""
    if upload_suffix(path) in (".nii", ".nii.gz"):
        import nibabel as nib

        array = np.asanyarray(nib.load(str(path)).dataobj)
    elif upload_suffix(path) in VOLUME_SUFFIXES:
        array = sitk.GetArrayViewFromImage(sitk.ReadImage(str(path)))
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    return int(np.count_nonzero(~np.isfinite(array)))


def _grid_fault(label: UploadSummary, image: UploadSummary, picture: bool) -> str:
    if label.size != image.size:
        return f"its size {label.size} differs from the image's {image.size}"
    if picture:
        return ""
    for what, a, b in (
        ("spacing", label.spacing, image.spacing),
        ("origin", label.origin, image.origin),
        ("direction", label.direction, image.direction),
    ):
        if not np.allclose(a, b, rtol=0.0, atol=GRID_ATOL):
            shown_a, shown_b = (tuple(round(v, 4) for v in x) for x in (a, b))
            return f"its {what} {shown_a} differs from the image's {shown_b}"
    return ""


def check_label_upload(
    path: str | os.PathLike,
    image_path: str | os.PathLike,
    allowed: Iterable[int],
    name: str | None = None,
) -> UploadSummary:
    """Check an uploaded label against its image and the served models' label values.

    Args:
        path: the label file.
        image_path: the stored image it labels.
        allowed: label values the served models know (0, background, is always allowed).
        name: the name to report.

    Raises:
        UploadError: unreadable, multi-component, non-finite, non-integer or unknown values, or off the image's grid.
    """
    shown = name or Path(path).name
    label = read_upload(path, shown)
    image = read_upload(image_path, Path(image_path).name)
    summary, image_summary = _summary(label), _summary(image)
    picture = upload_suffix(image_path) in PICTURE_SUFFIXES
    if summary.components != 1:
        raise UploadError(f"{shown}: a label has one value per pixel, this file has {summary.components}")
    if picture and len(summary.size) == 3 and summary.size[2] == 1:  # a 2D label saved as a one-slice volume
        summary = UploadSummary(summary.size[:2], summary.spacing[:2], summary.origin[:2], (), 1)
        image_summary = UploadSummary(image_summary.size[:2], (), (), (), image_summary.components)
    fault = _grid_fault(summary, image_summary, picture)
    if fault:
        raise UploadError(f"{shown}: not on the grid of its image {Path(image_path).name}: {fault}")
    values = sitk.GetArrayViewFromImage(label)
    if _nonfinite(path, values):
        raise UploadError(f"{shown}: the label holds values that are not finite (NaN or infinity)")
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(values == np.round(values)):
            raise UploadError(f"{shown}: the label holds non-integer values; a label is 0 (background) or a label id")
    found = {int(v) for v in np.unique(values)}
    known = {0, *(int(v) for v in allowed)}
    unknown = sorted(found - known)
    if unknown:
        raise UploadError(
            f"{shown}: label values {unknown[:10]} are not labels of the served models (known: {sorted(known)})"
        )
    return summary
