"""What an input file is: image suffixes, DICOM detection, case names (no reading of pixel data).

Both :mod:`data_prep.readers` and :mod:`data_prep.dicom` use these, so neither imports the other for them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "DICOM_SUFFIXES",
    "PICTURE_SUFFIXES",
    "case_name",
    "folder_has_dicom",
    "is_dicom_file",
    "is_image_file",
]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")  # 2D pictures (dermoscopy)
_NOT_DICOM_SUFFIXES = IMAGE_SUFFIXES + PICTURE_SUFFIXES + (".raw", ".zraw", ".txt", ".json", ".csv", ".md", ".xml",
                                                           ".gz", ".zip", ".py", ".yaml", ".yml", ".pdf")


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
