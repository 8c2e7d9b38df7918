"""DICOM files of a folder: which files are images, how they group into series, and which series is read.

Each file is parsed once (:func:`read_dataset`: one ``pydicom.dcmread`` with the large values, the pixel data among
them, deferred): :func:`scan_series` groups image files by SeriesInstanceUID (non-image objects such as SR, SEG,
RTDOSE, KO, PR are set aside, localizer-only series marked), :func:`choose_in` applies
:mod:`data_prep.series_selection`'s rules to them, :func:`list_series` and :func:`choose_series` are the public views.
:mod:`data_prep.dicom` validates and stacks the chosen series from the same datasets: only the chosen series' pixel
data are then fetched (pydicom reads the deferred element from its recorded offset; the file is not parsed again).
A caller that already holds parsed datasets (the MONAI Deploy SDK's loader, a case named from its first header) passes
them as ``parsed`` and those files are not read at all.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.files import is_dicom_file
from data_prep.series_selection import Candidate, SeriesChoice, SeriesSelectionError, select_series

__all__ = [
    "DEFER_SIZE",
    "DicomSeriesError",
    "NON_IMAGE_MODALITIES",
    "NON_IMAGE_SOP_CLASS_PREFIXES",
    "SeriesInfo",
    "choose_in",
    "choose_series",
    "dicom_files",
    "is_localizer",
    "list_series",
    "read_dataset",
    "scan_series",
]

logger = logging.getLogger(__name__)

#: values larger than this (bytes) are left in the file until used: the pixel data of a series that is not chosen are
#: never loaded, those of the chosen one are fetched once when stacked
DEFER_SIZE = 64 * 1024

NON_IMAGE_MODALITIES = frozenset(
    {"SR", "SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "RTIMAGE", "KO", "PR", "DOC", "REG", "FID", "RWV",
     "PLAN", "AU", "ECG", "HD", "RESP"}
)
NON_IMAGE_SOP_CLASS_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, fiducials, segmentation (66.4)
    "1.2.840.10008.5.1.4.1.1.481.",  # radiotherapy objects
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.9.",  # waveforms
)


class DicomSeriesError(ValueError):
    """A DICOM folder that cannot be read safely: the message names the folder (or file) and the fault."""


@dataclass
class SeriesInfo:
    """One series found in a folder."""

    uid: str
    number: str
    description: str
    modality: str
    files: list[Path] = field(default_factory=list)
    localizer_only: bool = False
    header: object = None  # first non-localizer header (all localizers: the first one)
    n_images: int = 0  # images (frames) that are not localizers
    image: bool = True  # False: a non-image object (SR, SEG, RTDOSE...), listed only as skipped

    def candidate(self) -> Candidate:
        """This series as :mod:`data_prep.series_selection` sees it."""
        return Candidate(self.uid, self.number, self.description, self.modality, self.n_images, len(self.files),
                         self.header, self.localizer_only, self.image)

    def describe(self) -> str:
        loc = ", localizer only" if self.localizer_only else ""
        return (f"SeriesInstanceUID={self.uid} (series {self.number or '?'}, '{self.description}', "
                f"{self.modality or '?'}, {len(self.files)} file(s){loc})")


def read_dataset(path: str | os.PathLike):
    """The one parse of a DICOM file: its :class:`pydicom.Dataset`, values over :data:`DEFER_SIZE` bytes deferred.

    Raises:
        pydicom's and the OS's errors for an unreadable file (:func:`scan_series` names the file).
    """
    import pydicom

    return pydicom.dcmread(str(path), force=True, defer_size=DEFER_SIZE)


def _is_image(ds) -> tuple[bool, str]:
    modality = str(getattr(ds, "Modality", "") or "").upper()
    sop = str(getattr(ds, "SOPClassUID", "") or "")
    if modality in NON_IMAGE_MODALITIES:
        return False, modality
    if sop.startswith(NON_IMAGE_SOP_CLASS_PREFIXES):
        return False, f"SOP class {sop}"
    if "Rows" not in ds or "Columns" not in ds:
        return False, f"{modality or 'object'} without pixel data"
    return True, ""


def is_localizer(image_type: Sequence[str]) -> bool:
    return any(str(t).upper() in ("LOCALIZER", "SCOUT") for t in image_type)


def scan_series(files: Sequence[Path], where: str, non_image: dict[str, SeriesInfo] | None = None,
                parsed: Mapping[Path, object] | None = None) -> tuple[dict[str, SeriesInfo], dict[Path, object]]:
    """Parse every file once (:func:`read_dataset`); group image files by series. Non-DICOM and non-image files are
    skipped with a log line (and grouped by series into ``non_image`` when given).

    Args:
        files: the files to scan.
        where: the folder or study named in errors and log lines.
        non_image: filled with the non-image objects by series, when given.
        parsed: datasets the caller already holds, by path: used as they are, those files are not read.

    Returns:
        ``(series by SeriesInstanceUID, dataset by image file)``.
    """
    import pydicom

    series: dict[str, SeriesInfo] = {}
    headers: dict[Path, object] = {}
    ignored: Counter = Counter()
    parsed = {os.path.abspath(k): v for k, v in (parsed or {}).items()}
    for f in files:
        try:
            ds = parsed.get(os.path.abspath(f))
            ds = read_dataset(f) if ds is None else ds
        except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as e:
            raise DicomSeriesError(f"DICOM folder {where}: unreadable or truncated file {f}: {e}") from None
        if "SOPClassUID" not in ds and "Modality" not in ds and "Rows" not in ds:
            raise DicomSeriesError(f"DICOM folder {where}: file {f} is not a valid DICOM object (no SOPClassUID, "
                                   "Modality or Rows): corrupt or truncated")
        ok, why = _is_image(ds)
        if not ok:
            ignored[why] += 1
            if non_image is not None:
                uid = str(getattr(ds, "SeriesInstanceUID", "") or "")
                non_image.setdefault(uid, SeriesInfo(uid, str(getattr(ds, "SeriesNumber", "") or ""),
                                                     str(getattr(ds, "SeriesDescription", "") or ""),
                                                     str(getattr(ds, "Modality", "") or ""), image=False)
                                     ).files.append(f)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "")
        if not uid:
            raise DicomSeriesError(f"DICOM folder {where}: file {f} has no SeriesInstanceUID")
        info = series.get(uid)
        if info is None:
            info = series[uid] = SeriesInfo(uid, str(getattr(ds, "SeriesNumber", "") or ""),
                                            str(getattr(ds, "SeriesDescription", "") or ""),
                                            str(getattr(ds, "Modality", "") or ""), [], True)
        info.files.append(f)
        localizer = is_localizer(getattr(ds, "ImageType", ()) or ())
        info.localizer_only = info.localizer_only and localizer
        if not localizer:
            info.n_images += int(getattr(ds, "NumberOfFrames", 1) or 1)
            if info.header is None or is_localizer(getattr(info.header, "ImageType", ()) or ()):
                info.header = ds
        elif info.header is None:
            info.header = ds
        headers[f] = ds
    if ignored:
        logger.info("%s: ignored %s", where, ", ".join(f"{n} {k} file(s)" for k, n in sorted(ignored.items())))
    return series, headers


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_dicom_file(p))


def list_series(folder: str | os.PathLike) -> list[SeriesInfo]:
    """The image series in ``folder`` (recursively), largest first; non-image objects are left out."""
    folder = Path(folder)
    series, _ = scan_series(dicom_files(folder), str(folder))
    return sorted(series.values(), key=lambda s: (-len(s.files), s.uid))


def choose_in(series: dict[str, SeriesInfo], series_uid: str | None, where: str, rules: dict | None = None,
                   non_image: dict[str, SeriesInfo] | None = None) -> tuple[SeriesInfo, SeriesChoice]:
    if not series:
        raise DicomSeriesError(f"DICOM folder {where}: no image series found (only non-image objects or no DICOM)")
    candidates = [s.candidate() for s in series.values()] + [s.candidate() for s in (non_image or {}).values()]
    try:
        choice = select_series(candidates, rules, series_uid, where=f"DICOM folder {where}")
    except SeriesSelectionError as e:
        raise DicomSeriesError(str(e)) from None
    for c, why in choice.skipped:
        logger.info("%s: skipped series %s: %s", where, c.describe(), why)
    if len(candidates) > 1:
        logger.info("%s: chose series %s: %s", where, choice.chosen.describe(), choice.reason)
    return series[choice.chosen.uid], choice


def choose_series(files: Sequence[str | os.PathLike], where: str, series_uid: str | None = None,
                  rules: dict | None = None, parsed: Mapping[Path, object] | None = None) -> SeriesChoice:
    """The series :func:`read_dicom_study` would read among ``files`` (no pixel data loaded).

    Args:
        parsed: datasets the caller already holds, by path (:func:`scan_series`): those files are not read.

    Raises:
        DicomSeriesError: unreadable files, no image series, or a selection refused (naming ``where``).
    """
    non_image: dict[str, SeriesInfo] = {}
    series, _ = scan_series([Path(f) for f in files], where, non_image, parsed)
    return choose_in(series, series_uid, where, rules, non_image)[1]
