"""One reader facade for image files and DICOM series folders, and discovery of cases in a folder.

:func:`read_image` returns a ``SimpleITK.Image`` in LPS physical space (SimpleITK's convention) for

- NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``): read by SimpleITK;
- a DICOM series folder (or a single ``.dcm`` file): validated strictly and stacked by :mod:`data_prep.dicom`.

:func:`discover_cases` maps case names to inputs: an image file is one case named by its stem (``ct_01.nii.gz`` ->
``ct_01``); a folder holding DICOM files at its top level is one case named after the folder; any other folder is a
folder of cases whose entries are image files and sub-folders (each sub-folder one DICOM case, its files searched
recursively, named after the sub-folder). Hidden entries and unrelated files (``.txt``, ``.json``...) are ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import SimpleITK as sitk

from data_prep import dicom
from data_prep.file_checks import check_file
from data_prep.files import (
    IMAGE_SUFFIXES,
    case_name,
    folder_has_dicom,
    is_dicom_file,
    is_image_file,
)
from data_prep.validation import InputError, check_image

__all__ = [
    "IMAGE_SUFFIXES",
    "read_image",
    "case_name",
    "discover_cases",
    "is_dicom_file",
    "is_image_file",
    "folder_has_dicom",
]

logger = logging.getLogger(__name__)


def read_image(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    rules: dict | None = None,
    nonfinite: str = "refuse",
    what: str = "image",
    notes: list[str] | None = None,
    spatial_dims: int | None = None,
    channels: int | None = None,
    headers: list | None = None,
) -> sitk.Image:
    """Read an image file or a DICOM series folder, validated (see :mod:`data_prep.validation`).

    Args:
        path: NIfTI/NRRD/MHA/MHD file, a DICOM file, or a folder holding one DICOM series (searched recursively).
        series_uid: SeriesInstanceUID to pick when a DICOM folder holds several series.
        nonfinite: NaN/Inf voxels: ``"refuse"`` (default) or ``"zero"`` (replace them by 0; a note is added).
        what: ``"image"`` or ``"label"`` (a label with NaN/Inf is always refused).
        notes: a list that receives what was changed (e.g. replaced non-finite voxels), for the report.
        rules: series selection rules for a DICOM folder holding several series (:mod:`data_prep.series_selection`;
            None: its default rules).
        spatial_dims, channels: required dimensionality and channel count (None: any), checked with the voxels.
        headers: a list that receives the headers of the DICOM series read (pydicom datasets, pixel data released),
            so that a caller recording its SeriesInstanceUID need not parse a file again; left empty for other files.

    Returns:
        The image (SimpleITK, LPS). DICOM gives int16/uint16 stored values when the rescale is the identity or integer
        and the same for every slice, otherwise float32 (rescaled per slice).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable, truncated or corrupt file, invalid spacing or direction, non-finite voxels, or an
            invalid DICOM series, naming the path and the fault (:class:`~data_prep.validation.InputError`).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    if p.is_dir() and is_image_file(p) and not folder_has_dicom(p):
        raise InputError(f"{p}: is a folder, not an image file")
    if p.is_dir() or (not is_image_file(p) and is_dicom_file(p)):
        image, _, read = dicom.read_dicom_source(p, series_uid=series_uid, rules=rules)
        if headers is not None:
            headers.extend(read)
    elif is_image_file(p):
        image = _read_image_file(p, nonfinite, what, notes)
    else:
        raise ValueError(
            f"unsupported input {p}: expected one of {', '.join(IMAGE_SUFFIXES)}, a DICOM file or a DICOM series "
            "folder"
        )
    image, found = check_image(image, p, nonfinite=nonfinite, what=what, spatial_dims=spatial_dims, channels=channels)
    if notes is not None:
        notes.extend(found)
    return image


def _read_image_file(p: Path, nonfinite: str, what: str, notes: list[str] | None) -> sitk.Image:
    """An image file (NIfTI, NRRD, MHA...) read in full first (:func:`~data_prep.file_checks.check_file`), then by
    SimpleITK; its faults as one :class:`~data_prep.validation.InputError` naming the file."""
    found = check_file(p, nonfinite=nonfinite, what=what)
    if notes is not None:
        notes.extend(found)
    try:
        return sitk.ReadImage(str(p))
    except RuntimeError as e:
        msg = str(e).strip().splitlines()
        detail = next((m for m in msg if "ERROR" in m or "rror" in m), msg[-1] if msg else "")
        raise InputError(f"cannot read image file {p}: {detail.strip()}") from None


def discover_cases(path: str | os.PathLike) -> dict[str, Path]:
    """Map case name -> input path for an image file, a DICOM series folder or a folder of cases.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: two inputs with the same case name (e.g. ``a.nii`` and ``a.nii.gz``), or nothing usable found.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    if p.is_file():
        return {case_name(p): p}
    if folder_has_dicom(p, recursive=False):
        return {p.name: p}
    cases: dict[str, Path] = {}
    for entry in sorted(p.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and not is_image_file(entry):
            if not (is_dicom_file(entry) or entry.name.lower().endswith(".raw")):
                logger.debug("ignoring %s (not an image)", entry)
            continue
        if entry.is_file() and entry.name.lower().endswith(".raw"):
            continue
        if entry.is_dir() and not folder_has_dicom(entry) and not is_image_file(entry):  # case.nii.gz/: refused later
            logger.info("ignoring folder %s: no DICOM files in it", entry)
            continue
        name = case_name(entry)
        if name in cases:
            raise ValueError(f"two inputs give the case name {name!r}: {cases[name]} and {entry}")
        cases[name] = entry
    if not cases:
        raise ValueError(
            f"no cases found in {p}: expected image files ({', '.join(IMAGE_SUFFIXES)}), DICOM files, "
            "or sub-folders holding DICOM series"
        )
    return cases
