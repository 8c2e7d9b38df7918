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

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_NOT_DICOM_SUFFIXES = IMAGE_SUFFIXES + (".raw", ".zraw", ".txt", ".json", ".csv", ".md", ".xml", ".png", ".jpg",
                                        ".jpeg", ".gz", ".zip", ".py", ".yaml", ".yml", ".pdf")


def _lower_name(path: str | os.PathLike) -> str:
    return Path(path).name.lower()


def is_image_file(path: str | os.PathLike) -> bool:
    """True if ``path`` has one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return _lower_name(path).endswith(IMAGE_SUFFIXES)


def case_name(path: str | os.PathLike) -> str:
    """The case name of an input: file name without its image suffix, or the folder name."""
    p = Path(path)
    name = p.name
    low = name.lower()
    for suf in IMAGE_SUFFIXES + DICOM_SUFFIXES:
        if low.endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return name


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is a file that looks like DICOM: the ``DICM`` magic at byte 128, or a ``.dcm``-like suffix,
    or (no preamble) a file pydicom can parse whose first element is a group 0x0008 tag."""
    p = Path(path)
    if not p.is_file() or p.name.startswith(".") or p.name.upper() == "DICOMDIR":
        return False
    low = p.name.lower()
    if low.endswith(DICOM_SUFFIXES):
        return True
    if low.endswith(_NOT_DICOM_SUFFIXES):
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    # raw (no preamble) implicit/explicit little endian data set starting in group 0x0008
    return len(head) >= 8 and head[0:2] == b"\x08\x00" and head[2:4] in (b"\x05\x00", b"\x08\x00", b"\x12\x00",
                                                                         b"\x16\x00", b"\x18\x00", b"\x00\x00")


def folder_has_dicom(folder: str | os.PathLike, recursive: bool = True) -> bool:
    """True if ``folder`` contains at least one DICOM-looking file (top level only unless ``recursive``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    it = folder.rglob("*") if recursive else folder.iterdir()
    return any(is_dicom_file(p) for p in it)


def read_image(path: str | os.PathLike, *, series_uid: str | None = None, rules: dict | None = None) -> sitk.Image:
    """Read an image file or a DICOM series folder.

    Args:
        path: NIfTI/NRRD/MHA/MHD file, a DICOM file, or a folder holding one DICOM series (searched recursively).
        series_uid: SeriesInstanceUID to pick when a DICOM folder holds several series.
        rules: series selection rules for a DICOM folder holding several series (:mod:`data_prep.series_selection`;
            None: its default rules).

    Returns:
        The image (SimpleITK, LPS). DICOM gives int16/uint16 stored values when the rescale is the identity or integer
        and the same for every slice, otherwise float32 (rescaled per slice).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file or invalid DICOM series, naming the path and the fault.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    from data_prep import dicom  # lazy: pydicom is only needed for DICOM inputs

    if p.is_dir():
        return dicom.read_dicom_series(p, series_uid=series_uid, rules=rules)
    if is_image_file(p):
        try:
            return sitk.ReadImage(str(p))
        except RuntimeError as e:
            msg = str(e).strip().splitlines()
            detail = next((m for m in msg if "ERROR" in m or "rror" in m), msg[-1] if msg else "")
            raise ValueError(f"cannot read image file {p}: {detail.strip()}") from None
    if is_dicom_file(p):
        return dicom.read_dicom_files([p], source=p, series_uid=series_uid, rules=rules)
    raise ValueError(
        f"unsupported input {p}: expected one of {', '.join(IMAGE_SUFFIXES)}, a DICOM file or a DICOM series folder"
    )


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
        if entry.is_dir() and not folder_has_dicom(entry):
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
