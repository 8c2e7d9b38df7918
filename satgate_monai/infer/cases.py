"""Case discovery and safe output names.

Inputs are found by data_prep's :func:`~data_prep.readers.discover_cases` (an image file, a DICOM series folder, or
a folder of cases). Every output name goes through :func:`sanitize_name`: only ``[A-Za-z0-9._-]``, no leading dot, no
path separator, so neither a file name nor a DICOM tag (``--name-from patient`` uses PatientID, e.g. ``../../x``)
can place a file outside the output folder. Names that collide after sanitising get ``_2``, ``_3``...
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.dicom_series import read_dataset
from data_prep.readers import discover_cases, folder_has_dicom, is_dicom_file

__all__ = ["Case", "NAME_SOURCES", "sanitize_name", "find_cases", "dicom_patient_name", "safe_output_path"]

logger = logging.getLogger(__name__)

NAME_SOURCES = ("path", "patient")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LEN = 100


@dataclass(frozen=True)
class Case:
    """One input case.

    Attributes:
        name: sanitised, unique output name (``<name>_seg.nii.gz``...).
        path: the input file or DICOM series folder.
        is_dicom: True for DICOM input (a DICOM-SEG can be written).
        source_name: the name before sanitising (for the report).
        parsed: DICOM datasets already parsed for this case, by file (the header a name was taken from; the MONAI
            Deploy SDK's datasets): the reader uses them instead of reading those files again.
    """

    name: str
    path: Path
    is_dicom: bool
    source_name: str
    parsed: dict = field(default_factory=dict, repr=False, compare=False)


def sanitize_name(name: str, fallback: str = "case") -> str:
    """A file-name-safe version of ``name``: ``[A-Za-z0-9._-]`` only, no leading/trailing ``.``/``_``/``-``.

    ``"../../x"`` -> ``"x"``, ``"Doe^John 01"`` -> ``"Doe_John_01"``, ``""`` or ``".."`` -> ``fallback``.
    """
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    s = _UNSAFE.sub("_", s)
    s = re.sub(r"_+", "_", s).strip("._-")
    s = s[:_MAX_LEN].rstrip("._-")
    return s or fallback


def _is_dicom_input(path: Path) -> bool:
    return (path.is_dir() and folder_has_dicom(path)) or (path.is_file() and is_dicom_file(path))


def dicom_patient_name(path: str | os.PathLike, parsed: dict | None = None) -> str | None:
    """``<PatientID>_<SeriesNumber>`` from the first readable DICOM file of a series folder (or a DICOM file).

    Args:
        path: the series folder or file.
        parsed: filled with the datasets parsed here, by file, so that the case's reader does not parse them again.
    """
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if is_dicom_file(f))
    for f in files[:20]:
        try:
            ds = read_dataset(f)
        except Exception:  # unreadable file: try the next one (the reader names it)
            continue
        if parsed is not None:
            parsed[f] = ds
        pid = str(ds.get("PatientID", "") or "").strip()
        if pid:
            series = ds.get("SeriesNumber", None)
            return f"{pid}_{series}" if series not in (None, "") else pid
    return None


def find_cases(path: str | os.PathLike, *, name_from: str = "path") -> list[Case]:
    """Cases under ``path`` with sanitised, unique output names, in sorted order of the input names.

    Args:
        path: an image file, a DICOM series folder, or a folder of cases.
        name_from: ``"path"`` (file stem / folder name) or ``"patient"`` (DICOM PatientID and SeriesNumber; image
            files keep their file name).

    Raises:
        FileNotFoundError, ValueError: from data_prep's discovery (missing input, nothing usable, duplicate names).
    """
    if name_from not in NAME_SOURCES:
        raise ValueError(f"name_from must be one of {NAME_SOURCES}, got {name_from!r}")
    found = discover_cases(path)
    cases: list[Case] = []
    used: set[str] = set()
    for source_name, p in found.items():
        is_dicom = _is_dicom_input(Path(p))
        raw = source_name
        parsed: dict = {}
        if name_from == "patient" and is_dicom:
            raw = dicom_patient_name(p, parsed) or source_name
        base = sanitize_name(raw)
        name, k = base, 2
        while name.lower() in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name.lower())
        if name != raw:
            logger.info("case %r is written as %r", raw, name)
        cases.append(Case(name=name, path=Path(p), is_dicom=is_dicom, source_name=raw, parsed=parsed))
    return cases


def safe_output_path(out_dir: str | os.PathLike, file_name: str) -> Path:
    """``out_dir / file_name``, refusing any name that would resolve outside ``out_dir``.

    Raises:
        ValueError: naming the offending file name.
    """
    out = Path(out_dir).resolve()
    if file_name != Path(file_name).name or file_name in ("", ".", ".."):
        raise ValueError(f"unsafe output file name {file_name!r}")
    p = (out / file_name).resolve()
    if p.parent != out:
        raise ValueError(f"output file name {file_name!r} escapes the output folder {out}")
    return p
