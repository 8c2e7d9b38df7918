"""DICOM series reading with strict validation of the headers before stacking, and our own stacking.

ITK-family readers return wrong geometry without a word on broken series (a gantry tilt read as a straight stack, a
duplicated slice position averaged into the spacing, one series picked out of two). This module reads the headers
with pydicom, checks the series, and stacks the slices itself with geometry computed from the headers:

- origin = ImagePositionPatient of the first slice along the slice normal ``n = row x col`` (ImageOrientationPatient);
- direction columns = (row cosine, column cosine, ``n``); spacing = (PixelSpacing[1], PixelSpacing[0], slice step);
- slices are sorted by their position along ``n`` (file names and InstanceNumber are not trusted).

Handled: slices in any file order; localizer/scout images (ImageType ``LOCALIZER``, or a few slices whose orientation
differs from the stack's) excluded with a log line; a series made only of localizers is not counted as a series;
non-image objects (SR, SEG, RTSTRUCT, RTPLAN, RTDOSE, KO, PR, ...) and non-DICOM files ignored; per-slice
RescaleSlope/RescaleIntercept applied per slice (float32 output when they are not one integer shift for the whole
series, otherwise an integer type that holds the values); enhanced multi-frame CT/MR read frame by frame through the
per-frame and shared functional groups (position, orientation, pixel spacing, rescale).

Headers are scanned and grouped into series by :mod:`data_prep.dicom_series`. A folder holding several series (a
study) is read by :mod:`data_prep.series_selection`'s rule: ``series_uid`` if
given, else the selection rules (a bundle's defaults, or original images first); :func:`read_dicom_study` also
returns the choice and why the other series were skipped.

Refused with :class:`DicomSeriesError` (a ``ValueError`` naming the folder and the fault): several image series that
the rules cannot tell apart, or none that satisfies them (listed with SeriesInstanceUID, number, description,
modality and file count; choose with ``series_uid``), a missing slice (a step that is a multiple of the usual one), a
duplicated slice position, non-uniform spacing, gantry tilt or any sheared stack (slice positions that move in-plane:
resampling a sheared stack is not done here), mixed orientations beyond a few scout slices, mixed matrix sizes or
pixel spacings, several frames of reference, a truncated or unreadable file (named), colour images, classic (non-
enhanced) multi-frame files.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.dicom_series import (
    NON_IMAGE_MODALITIES,
    DicomSeriesError,
    SeriesInfo,
    choose_in,
    choose_series,
    dicom_files,
    is_localizer,
    list_series,
    scan_series,
)
from data_prep.series_selection import SeriesChoice

__all__ = [
    "DicomSeriesError",
    "SeriesInfo",
    "read_dicom_series",
    "read_dicom_study",
    "choose_series",
    "read_dicom_files",
    "read_dicom_source",
    "list_series",
    "NON_IMAGE_MODALITIES",
]

logger = logging.getLogger(__name__)

# uncompressed transfer syntaxes: pixel data length can be checked against the header
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}

ORIENTATION_TOL = 1e-4  # direction cosines
POSITION_TOL_MM = 0.01  # absolute part of position tolerances
SPACING_RTOL = 0.01  # relative tolerance on slice steps


@dataclass
class _Frame:
    file: Path
    frame: int | None
    ipp: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    slope: float
    intercept: float
    image_type: tuple[str, ...]
    for_uid: str
    d: float = 0.0


def _float_list(value, n: int, what: str, where: str) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise DicomSeriesError(f"{where}: invalid {what} {value!r}") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise DicomSeriesError(f"{where}: invalid {what} {value!r} (expected {n} numbers)")
    return arr


def _enhanced_frames(path: Path, ds, nframes: int, rows: int, cols: int, image_type: tuple[str, ...],
                     for_uid: str) -> list[_Frame]:
    """The frames of an enhanced multi-frame file, from its per-frame and shared functional groups."""
    where = f"file {path}"
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != nframes:
        raise DicomSeriesError(f"{where}: {len(per_frame)} per-frame functional groups for {nframes} frames")

    def group(item, name):
        for src in (item, shared):
            if src is not None and name in src and len(src[name].value):
                return src[name].value[0]
        return None

    frames = []
    for k, item in enumerate(per_frame):
        pos, ori, meas = (group(item, "PlanePositionSequence"), group(item, "PlaneOrientationSequence"),
                          group(item, "PixelMeasuresSequence"))
        if pos is None or ori is None or meas is None:
            raise DicomSeriesError(f"{where}: frame {k + 1} lacks plane position, orientation or pixel measures "
                                   "in its functional groups")
        rescale = group(item, "PixelValueTransformationSequence")
        ftype = group(item, "CTImageFrameTypeSequence") or group(item, "MRImageFrameTypeSequence")
        ftype_v = tuple(str(t) for t in (getattr(ftype, "FrameType", ()) or ())) if ftype is not None else ()
        frames.append(_Frame(
            path, k,
            _float_list(pos.ImagePositionPatient, 3, "ImagePositionPatient", f"{where} frame {k + 1}"),
            _float_list(ori.ImageOrientationPatient, 6, "ImageOrientationPatient", f"{where} frame {k + 1}"),
            tuple(_float_list(meas.PixelSpacing, 2, "PixelSpacing", f"{where} frame {k + 1}")),
            rows, cols,
            float(getattr(rescale, "RescaleSlope", 1.0) or 1.0) if rescale is not None else 1.0,
            float(getattr(rescale, "RescaleIntercept", 0.0) or 0.0) if rescale is not None else 0.0,
            ftype_v or image_type, for_uid,
        ))
    return frames


def _frames_of(path: Path, ds) -> list[_Frame]:
    """Per-frame geometry and rescale of one file (classic single-frame or enhanced multi-frame)."""
    where = f"file {path}"
    nframes = int(getattr(ds, "NumberOfFrames", 1) or 1)
    image_type = tuple(str(t) for t in (getattr(ds, "ImageType", ()) or ()))
    for_uid = str(getattr(ds, "FrameOfReferenceUID", "") or "")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise DicomSeriesError(f"{where}: colour image (SamplesPerPixel={ds.SamplesPerPixel}, "
                               f"{getattr(ds, 'PhotometricInterpretation', '?')}): only greyscale CT/MR is supported")
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_frames(path, ds, nframes, rows, cols, image_type, for_uid)
    if nframes > 1:
        raise DicomSeriesError(f"{where}: multi-frame image ({nframes} frames) without per-frame functional groups "
                               "(classic multi-frame, e.g. NM/US/XA cine, or a stripped enhanced image): no position "
                               "per frame, not supported")
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if tag not in ds or ds[tag].value in (None, ""):
            raise DicomSeriesError(f"{where}: no {tag}: not a cross-sectional slice with patient geometry")
    return [_Frame(
        path, None,
        _float_list(ds.ImagePositionPatient, 3, "ImagePositionPatient", where),
        _float_list(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", where),
        tuple(_float_list(ds.PixelSpacing, 2, "PixelSpacing", where)),
        rows, cols,
        float(getattr(ds, "RescaleSlope", 1.0) if getattr(ds, "RescaleSlope", None) not in (None, "") else 1.0),
        float(getattr(ds, "RescaleIntercept", 0.0) if getattr(ds, "RescaleIntercept", None) not in (None, "") else 0.0),
        image_type, for_uid,
    )]


def _frame_name(f: _Frame) -> str:
    return f.file.name if f.frame is None else f"{f.file.name}[frame {f.frame + 1}]"


def _one_orientation(frames: list[_Frame], where: str) -> list[_Frame]:
    """The frames without localizers and without a few scout slices of another orientation; mixed orientations
    beyond that are refused."""
    loc = [f for f in frames if is_localizer(f.image_type)]
    if loc and len(loc) < len(frames):
        logger.warning("%s: excluding %d localizer/scout image(s) (ImageType LOCALIZER): %s", where, len(loc),
                       ", ".join(_frame_name(f) for f in loc[:5]))
        frames = [f for f in frames if not is_localizer(f.image_type)]
    # orientation groups
    groups: list[list[_Frame]] = []
    for f in frames:
        g = next((g for g in groups if np.max(np.abs(g[0].iop - f.iop)) <= 10 * ORIENTATION_TOL), None)
        if g is None:
            groups.append([f])
        else:
            g.append(f)
    if len(groups) > 1:
        ordered = sorted(groups, key=len, reverse=True)
        main, others = ordered[0], [f for g in ordered[1:] for f in g]
        if len(others) <= max(3, len(frames) // 10) and len(main) >= 2:
            logger.warning("%s: excluding %d slice(s) whose orientation differs from the stack's (scout/localizer): "
                           "%s", where, len(others), ", ".join(_frame_name(f) for f in others[:5]))
            frames = main
        else:
            desc = "; ".join(f"{len(g)} slice(s) with ImageOrientationPatient {np.round(g[0].iop, 4).tolist()}"
                             for g in ordered)
            raise DicomSeriesError(f"DICOM folder {where}: mixed slice orientations ({desc}): not one volume")
    return frames


def _single_slice_step(frame: _Frame, where: str, headers: Mapping[Path, object]) -> float:
    """The slice step of a one-slice series: SpacingBetweenSlices or SliceThickness, else 1 mm (logged)."""
    ds = headers.get(frame.file)
    step = 0.0
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        v = getattr(ds, tag, None) if ds is not None else None
        if v not in (None, "") and float(v) > 0:
            step = float(v)
            break
    logger.warning("%s: a single slice; slice spacing taken as %s mm", where, step or 1.0)
    return step or 1.0


def _check_no_shear(frames: list[_Frame], d: np.ndarray, normal: np.ndarray, where: str,
                    headers: Mapping[Path, object]) -> None:
    """Refuse a gantry tilt or sheared stack: slice origins must move along the normal only (``d``: positions
    along it)."""
    disp = np.array([f.ipp - frames[0].ipp for f in frames])
    inplane = disp - np.outer(d - d[0], normal)
    drift = np.linalg.norm(inplane, axis=1)
    if drift.max() > POSITION_TOL_MM + 1e-4 * float(d[-1] - d[0]):
        k = int(np.argmax(drift))
        tilt = None
        for f in frames:
            ds = headers.get(f.file)
            if ds is not None and getattr(ds, "GantryDetectorTilt", None) not in (None, ""):
                tilt = float(ds.GantryDetectorTilt)
                break
        angle = float(np.degrees(np.arctan2(drift[k], d[k] - d[0]))) if d[k] != d[0] else 90.0
        tilt_txt = f"GantryDetectorTilt={tilt:g} deg; " if tilt else ""
        raise DicomSeriesError(
            f"DICOM folder {where}: gantry tilt / sheared stack ({tilt_txt}slice origins move {drift[k]:.2f} mm "
            f"in-plane over {d[k] - d[0]:.2f} mm along the slice normal, {angle:.1f} deg): the slices are not a "
            "rectilinear grid and stacking them would misplace anatomy; refused (reconstruct without tilt, or "
            "resample the series in your PACS/scanner)")


def _validate(frames: list[_Frame], where: str, headers: dict[Path, object]) -> tuple[list[_Frame], np.ndarray, float]:
    """Check a series' frames; return them sorted along the normal, the direction matrix and the slice step."""
    frames = _one_orientation(frames, where)
    for name, get in (("matrix size (Rows x Columns)", lambda f: (f.rows, f.cols)),
                      ("PixelSpacing", lambda f: tuple(np.round(f.pixel_spacing, 4))),
                      ("FrameOfReferenceUID", lambda f: f.for_uid)):
        values = Counter(get(f) for f in frames)
        if len(values) > 1:
            raise DicomSeriesError(f"DICOM folder {where}: slices differ in {name}: "
                                   + ", ".join(f"{v} ({n} slices)" for v, n in values.most_common()))
    iop = np.mean([f.iop for f in frames], axis=0)
    row, col = iop[:3], iop[3:]
    if (abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3):
        raise DicomSeriesError(f"DICOM folder {where}: ImageOrientationPatient {iop.round(5).tolist()} is not two "
                               "orthonormal direction cosines")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    col = col - (col @ row) * row
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    for f in frames:
        f.d = float(f.ipp @ normal)
    frames.sort(key=lambda f: f.d)
    direction = np.column_stack([row, col, normal])
    if len(frames) == 1:
        return frames, direction, _single_slice_step(frames[0], where, headers)
    d = np.array([f.d for f in frames])
    steps = np.diff(d)
    nominal_candidates = steps[steps > POSITION_TOL_MM]
    if nominal_candidates.size == 0:
        raise DicomSeriesError(f"DICOM folder {where}: all {len(frames)} slices share one position along the slice "
                               f"normal (z={d[0]:.3f} mm): duplicated slices (several echoes/phases/stacks?)")
    nominal = float(np.median(nominal_candidates))
    tol = POSITION_TOL_MM + SPACING_RTOL * nominal
    dups = np.nonzero(steps < 0.1 * nominal)[0]
    if dups.size:
        i = int(dups[0])
        raise DicomSeriesError(
            f"DICOM folder {where}: duplicated slice position z={d[i]:.3f} mm along the slice normal in "
            f"{_frame_name(frames[i])} and {_frame_name(frames[i + 1])} ({dups.size} duplicated position(s)): "
            "two acquisitions or a copied file in one series?")
    _check_no_shear(frames, d, normal, where, headers)
    bad = np.nonzero(np.abs(steps - nominal) > tol)[0]
    if bad.size:
        i = int(bad[0])
        if steps[i] > 1.5 * nominal:
            n_missing = int(round(steps[i] / nominal)) - 1
            raise DicomSeriesError(
                f"DICOM folder {where}: missing slice(s): a gap of {steps[i]:.3f} mm between z={d[i]:.3f} mm "
                f"({_frame_name(frames[i])}) and z={d[i + 1]:.3f} mm ({_frame_name(frames[i + 1])}) where the "
                f"series steps {nominal:.3f} mm (about {max(n_missing, 1)} slice(s) missing; {bad.size} irregular "
                "step(s) in all)")
        distinct = sorted({round(float(s), 3) for s in steps})
        raise DicomSeriesError(
            f"DICOM folder {where}: non-uniform slice spacing: steps along the normal of {distinct[:8]} mm "
            f"(first irregular step {steps[i]:.3f} mm between {_frame_name(frames[i])} and "
            f"{_frame_name(frames[i + 1])}; usual step {nominal:.3f} mm)")
    return frames, direction, float((d[-1] - d[0]) / (len(d) - 1))


def _decode(path: Path, ds, where: str) -> tuple[np.ndarray, bool]:
    """The stored frames of one file, ``(frames, rows, columns)``, and whether they are already rescaled (decoded by
    SimpleITK/GDCM when pydicom cannot)."""
    try:
        data = ds.PixelData if "PixelData" in ds else None  # a deferred value is fetched here
    except Exception as e:
        raise DicomSeriesError(f"DICOM folder {where}: unreadable or truncated file {path}: {e}") from None
    if data is None:
        raise DicomSeriesError(f"DICOM folder {where}: file {path} has no pixel data (truncated?)")
    nframes = int(getattr(ds, "NumberOfFrames", 1) or 1)
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    if ts in _UNCOMPRESSED:
        bits = int(getattr(ds, "BitsAllocated", 16) or 16)
        expected = int(ds.Rows) * int(ds.Columns) * nframes * max(bits, 8) // 8
        if len(data) < expected:
            raise DicomSeriesError(f"DICOM folder {where}: truncated file {path}: pixel data has "
                                   f"{len(data)} bytes, {expected} expected")
    rescaled = False
    try:
        arr = ds.pixel_array
    except Exception as e:
        try:
            img = sitk.ReadImage(str(path))  # GDCM: decodes more compressions, applies the rescale itself
            arr = sitk.GetArrayFromImage(img)
            rescaled = True
            logger.info("%s: decoded %s with SimpleITK/GDCM (%s)", where, path.name, e)
        except RuntimeError:
            raise DicomSeriesError(f"DICOM folder {where}: cannot decode pixel data of {path}: {e}") from None
    if nframes == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != nframes:
        raise DicomSeriesError(f"DICOM folder {where}: unexpected pixel array shape {arr.shape} in {path}")
    return arr, rescaled


def _pixels(frames: list[_Frame], where: str, headers: Mapping[Path, object], keep: set[Path]) -> np.ndarray:
    """Stack the frames' stored values from the datasets of the one parse, applying RescaleSlope/Intercept per frame.

    Args:
        frames: the validated frames, in stacking order.
        where: the folder named in errors.
        headers: the parsed dataset of every file (:func:`data_prep.dicom_series.scan_series`).
        keep: the files whose datasets are the caller's (left as they are); the pixel data of those parsed here are
            released once decoded (their headers travel on).
    """
    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        by_file[f.file].append(i)
    slopes = np.array([f.slope for f in frames])
    inters = np.array([f.intercept for f in frames])
    integer = bool(np.all(slopes == 1.0) and np.all(inters == np.round(inters)) and np.all(inters == inters[0]))
    raw: list[np.ndarray | None] = [None] * len(frames)
    already_rescaled = np.zeros(len(frames), bool)
    for path, idx in by_file.items():
        ds = headers[path]
        arr, rescaled = _decode(path, ds, where)
        if rescaled:
            already_rescaled[idx] = True
        for i in idx:
            k = frames[i].frame or 0
            raw[i] = arr[k]
        if path not in keep:
            _release_pixels(ds)
    if already_rescaled.any():
        integer = False
    if integer:
        shift = int(inters[0])
        lo = min(int(r.min()) for r in raw) + shift
        hi = max(int(r.max()) for r in raw) + shift
        dtype = next(t for t in (np.int16, np.uint16, np.int32, np.int64)
                     if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)
        vol = np.empty((len(frames),) + raw[0].shape, dtype)
        for i, r in enumerate(raw):
            vol[i] = r.astype(np.int64) + shift if shift else r
        return vol
    vol = np.empty((len(frames),) + raw[0].shape, np.float32)
    for i, r in enumerate(raw):
        vol[i] = r if already_rescaled[i] else r.astype(np.float64) * slopes[i] + inters[i]
    if not np.all(slopes == slopes[0]) or not np.all(inters == inters[0]):
        logger.info("%s: rescale slope/intercept vary per slice: applied per slice (float32)", where)
    return vol


def _release_pixels(ds) -> None:
    """Drop a dataset's pixel data and decoded array (the headers stay for the DICOM-SEG writer)."""
    if "PixelData" in ds:
        del ds.PixelData
    if getattr(ds, "_pixel_array", None) is not None:
        ds._pixel_array = None


def _read(files: Sequence[Path], where: str, series_uid: str | None, rules: dict | None = None,
          parsed: Mapping[Path, object] | None = None) -> tuple[sitk.Image, SeriesChoice, list]:
    non_image: dict[str, SeriesInfo] = {}
    series, headers = scan_series(files, where, non_image, parsed)
    chosen, choice = choose_in(series, series_uid, where, rules, non_image)
    frames: list[_Frame] = []
    for f in chosen.files:
        try:
            frames.extend(_frames_of(f, headers[f]))
        except DicomSeriesError as e:
            raise DicomSeriesError(f"DICOM folder {where}: {e}") from None
    frames, direction, step = _validate(frames, where, headers)
    given = {os.path.abspath(k) for k in parsed or ()}
    vol = _pixels(frames, where, headers, {f for f in chosen.files if os.path.abspath(f) in given})
    image = sitk.GetImageFromArray(vol)
    image.SetOrigin(tuple(float(v) for v in frames[0].ipp))
    ps = frames[0].pixel_spacing
    image.SetSpacing((float(ps[1]), float(ps[0]), float(step)))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    logger.debug("%s: read %d slices of series %s", where, len(frames), chosen.uid)
    return image, choice, [headers[f] for f in chosen.files]


def read_dicom_study(folder: str | os.PathLike, series_uid: str | None = None,
                     rules: dict | None = None) -> tuple[sitk.Image, SeriesChoice]:
    """Read one series of the DICOM study in ``folder`` (searched recursively) after strict validation.

    Args:
        folder: a folder holding one or several series (and, possibly, non-image objects).
        series_uid: the SeriesInstanceUID to read, whatever the rules say.
        rules: series selection rules (:mod:`data_prep.series_selection`; None: its default rules).

    Returns:
        ``(image, choice)``: a 3D SimpleITK image in LPS, (x, y, z) = (columns, rows, slices sorted along the
        normal), and the :class:`~data_prep.series_selection.SeriesChoice` (chosen series, why others were skipped).

    Raises:
        DicomSeriesError: see the module docstring for the faults refused.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomSeriesError(f"DICOM folder {folder}: not a folder")
    files = dicom_files(folder)
    if not files:
        raise DicomSeriesError(f"DICOM folder {folder}: no DICOM files found")
    return _read(files, str(folder), series_uid, rules)[:2]


def read_dicom_series(folder: str | os.PathLike, series_uid: str | None = None,
                      rules: dict | None = None) -> sitk.Image:
    """The image of :func:`read_dicom_study` (same arguments and faults)."""
    return read_dicom_study(folder, series_uid, rules)[0]


def read_dicom_files(
    files: Sequence[str | os.PathLike], source: str | os.PathLike | None = None, series_uid: str | None = None,
    rules: dict | None = None,
) -> sitk.Image:
    """Like :func:`read_dicom_series` for an explicit list of files (e.g. a single file); ``source`` names them."""
    paths = [Path(f) for f in files]
    where = str(source) if source is not None else (str(paths[0].parent) if paths else "?")
    if not paths:
        raise DicomSeriesError(f"DICOM input {where}: no files")
    return _read(paths, where, series_uid, rules)[0]


def read_dicom_source(path: str | os.PathLike, series_uid: str | None = None, rules: dict | None = None,
                      parsed: Mapping[Path, object] | None = None) -> tuple[sitk.Image, SeriesChoice, list]:
    """:func:`read_dicom_study` for a folder, :func:`read_dicom_files` for one DICOM file, also returning the
    headers of the series read, so that a writer referencing that series (a DICOM-SEG) need not read them again.

    Each file is parsed once, headers and pixels from the same parse (:mod:`data_prep.dicom_series`).

    Args:
        path: a DICOM folder (searched recursively) or one DICOM file.
        series_uid: the SeriesInstanceUID to read, whatever the rules say.
        rules: series selection rules (None: :mod:`data_prep.series_selection`'s default rules).
        parsed: datasets the caller already parsed, by path (e.g. the MONAI Deploy SDK's, the header a case was
            named from): used as they are, never read again; with every file given, nothing is read from disk.

    Returns:
        ``(image, choice, headers)``: ``headers`` are the chosen series' pydicom datasets (their pixel data released
        when parsed here, localizers included, in file-name order).

    Raises:
        DicomSeriesError: as :func:`read_dicom_study`.
    """
    p = Path(path)
    if p.is_dir():
        files = dicom_files(p)
        if not files:
            raise DicomSeriesError(f"DICOM folder {p}: no DICOM files found")
    elif p.is_file():
        files = [p]
    else:
        raise DicomSeriesError(f"DICOM input {p}: not a folder or a file")
    return _read(files, str(p), series_uid, rules, parsed)
