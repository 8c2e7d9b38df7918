"""DICOM-SEG writer (highdicom) for a label map on the source series' grid.

The SEG references the source series. Frames are matched to source instances explicitly: each source instance's
Image Position (Patient) is mapped into the label map's grid, and it must fall on a slice centre with the same row and
column axes; frame ``i`` of the pixel array is then the label slice of ``source_images[i]``, so highdicom records
that instance's SOP Instance UID in the frame's derivation (Source Image Sequence). That works for axial, oblique
(rotated) and reversed-order series, single-frame or one multi-frame (enhanced) image.

When the label grid does not coincide with the source slices (e.g. a gantry-tilted series that the reader resampled
onto a regular grid, or irregular slice positions), the label map is handed to highdicom as a
:class:`highdicom.Volume` with its own geometry: the SEG then has its own plane positions and highdicom infers
frame-level references where it can (series-level references always). This is "as far as highdicom allows".
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.readers import is_dicom_file
from satgate_monai.infer.geometry import sitk_affine

__all__ = ["TYPE2_SOURCE_ATTRIBUTES", "with_type2_attributes", "collect_source_instances",
           "match_frames", "segment_descriptions", "build_dicom_seg", "write_dicom_seg"]

logger = logging.getLogger(__name__)

#: type 2 attributes (present, may be empty) that the SEG copies from its source; anonymisation often removes them
TYPE2_SOURCE_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                           "StudyDate", "StudyTime", "ReferringPhysicianName")
_LESION_WORDS = ("lesion", "tumour", "tumor", "neoplasm", "nodule", "metasta", "cancer", "mass")
_POS_TOL = 0.05  # voxels


def with_type2_attributes(datasets: Sequence) -> list:
    """The source headers with absent type 2 patient/study attributes added empty (copies; the files are untouched).

    DICOM lets type 2 attributes be empty, and anonymised series often lack them altogether; the SEG must still carry
    them, so an absent one is written empty rather than failing the SEG.
    """
    import copy

    out = []
    missing: set[str] = set()
    for ds in datasets:
        absent = [a for a in TYPE2_SOURCE_ATTRIBUTES if a not in ds]
        if absent:
            ds = copy.copy(ds)
            for a in absent:
                setattr(ds, a, "")
            missing.update(absent)
        out.append(ds)
    if missing:
        logger.info("source series lacks %s: written empty in the DICOM-SEG", ", ".join(sorted(missing)))
    return out


def collect_source_instances(path: str | os.PathLike) -> list:
    """Headers (no pixel data) of the image instances of the DICOM series at ``path`` (folder, searched
    recursively, or one file), grouped by SeriesInstanceUID, largest series first; non-image objects (SEG, SR,
    RTSTRUCT, presentation states) are skipped.

    Returns:
        A list of series, each a list of :class:`pydicom.Dataset`.
    """
    import pydicom

    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if is_dicom_file(f))
    series: dict[str, list] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # unreadable files were already judged by the reader
            continue
        if _is_image_instance(ds):
            series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    return sorted(series.values(), key=len, reverse=True)


def _is_image_instance(ds) -> bool:
    """An image instance a SEG can reference: pixel rows, a SOP Instance UID, a plane position; not SEG/SR/RTSTRUCT."""
    if "Rows" not in ds or "SOPInstanceUID" not in ds or ds.get("Modality", "") in ("SEG", "SR", "RTSTRUCT"):
        return False
    return "ImagePositionPatient" in ds or "PerFrameFunctionalGroupsSequence" in ds


def _frame_geometry(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ImagePositionPatient, ImageOrientationPatient) of every frame of ``ds`` (one for single-frame images)."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n == 1 and "ImagePositionPatient" in ds:
        return [(np.asarray(ds.ImagePositionPatient, float), np.asarray(ds.ImageOrientationPatient, float))]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    out = []
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pos = fg.PlanePositionSequence[0].ImagePositionPatient
        ori_src = fg if "PlaneOrientationSequence" in fg else shared
        if ori_src is None or "PlaneOrientationSequence" not in ori_src:
            raise ValueError(f"frame {i} of {ds.SOPInstanceUID} has no plane orientation")
        ori = ori_src.PlaneOrientationSequence[0].ImageOrientationPatient
        out.append((np.asarray(pos, float), np.asarray(ori, float)))
    return out


def _is_localizer(ds) -> bool:
    return any(str(v).upper() in ("LOCALIZER", "SCOUT") for v in (ds.get("ImageType", None) or []))


def match_frames(datasets: Sequence, reference: sitk.Image) -> tuple[list, list[int]] | None:
    """Match source frames to the slices of the reference grid.

    Instances that cannot belong to the stack (ImageType ``LOCALIZER``, another orientation or matrix size: scouts
    that the reader excluded) are left out. Every remaining frame must have row/column direction cosines equal to
    the grid's x/y axes (1e-3) and a position mapping to continuous index ``(0, 0, k)`` within 0.05 voxel, and every
    slice ``k`` must be matched exactly once. Several single-frame instances, or exactly one multi-frame instance.

    Returns:
        ``(instances, ks)``: the matched instances and the slice index of each of their frames (in order), or None
        when the frames do not coincide with the grid one-to-one.
    """
    size = reference.GetSize()
    direction = np.asarray(reference.GetDirection(), float).reshape(3, 3)
    inv = np.linalg.inv(sitk_affine(reference))
    kept, ks = [], []
    for ds in datasets:
        if _is_localizer(ds) or int(ds.Rows) != size[1] or int(ds.Columns) != size[0]:
            continue
        geometry = _frame_geometry(ds)
        if not all(np.allclose(o[:3], direction[:, 0], atol=1e-3) and np.allclose(o[3:], direction[:, 1], atol=1e-3)
                   for _, o in geometry):
            continue
        for pos, _ in geometry:
            idx = inv @ np.r_[pos, 1.0]
            k = int(round(idx[2]))
            if abs(idx[0]) > _POS_TOL or abs(idx[1]) > _POS_TOL or abs(idx[2] - k) > _POS_TOL or not 0 <= k < size[2]:
                return None
            ks.append(k)
        kept.append(ds)
    if not kept or (len(kept) > 1 and any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in kept)):
        return None
    if sorted(ks) != list(range(size[2])):
        return None
    return kept, ks


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", name) if w)


def segment_descriptions(labels: Mapping[int, str], *, algorithm_name: str, algorithm_version: str) -> list:
    """highdicom segment descriptions for labels ``1..max(labels)`` (names from the bundle's ``channel_def``).

    Names that are SNOMED CT concepts in pydicom's code dictionary (``liver``, ``prostate``...) get that code; lesion
    words get the "Morphologically abnormal structure" category; anything else "Tissue".
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.cid7162.ArtificialIntelligence, version=algorithm_version
    )
    descs = []
    for k in range(1, max(labels) + 1):
        name = labels.get(k, f"label_{k}")
        lesion = any(w in name.lower() for w in _LESION_WORDS)
        try:
            prop = getattr(codes.SCT, _camel(name))
        except AttributeError:
            prop = codes.SCT.Lesion if lesion else codes.SCT.Tissue
        category = codes.SCT.MorphologicallyAbnormalStructure if lesion else (
            codes.SCT.Tissue if prop == codes.SCT.Tissue else codes.SCT.AnatomicalStructure)
        descs.append(hd.seg.SegmentDescription(
            segment_number=k, segment_label=name[:64], segmented_property_category=category,
            segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        ))
    return descs


def build_dicom_seg(label: sitk.Image, series: Sequence, labels: Mapping[int, str], *, algorithm_name: str,
                    algorithm_version: str, series_description: str = "SAT segmentation"):
    """A :class:`highdicom.seg.Segmentation` of ``label`` (on the source grid) referencing ``series``.

    Args:
        label: integer label map on the source image's grid (SimpleITK, LPS).
        series: the source instances (pydicom datasets, pixel data not needed).
        labels: label value -> name (background 0 excluded); every value in ``label`` must be described.
        algorithm_name, algorithm_version: recorded in the segment descriptions and as software version.
        series_description: the SEG series' description.

    Returns:
        ``(segmentation, matched)``: the SEG data set, and whether frames were matched per source instance.

    Raises:
        ValueError: a label value that ``labels`` does not name.
    """
    import highdicom as hd

    arr = sitk.GetArrayFromImage(label)  # (z, y, x) = (slice, row, column)
    max_label = int(arr.max()) if arr.size else 0
    labels = dict(labels) or {1: "foreground"}
    if max_label > max(labels):
        raise ValueError(f"label value {max_label} present but the bundle names only {sorted(labels)}")
    arr = arr.astype(np.uint8 if max(labels) < 256 else np.uint16)
    descs = segment_descriptions(labels, algorithm_name=algorithm_name, algorithm_version=algorithm_version)
    match = match_frames(series, label)
    if match is not None:
        series, ks = match
        pixel_array = arr[ks]  # frame i <-> source frame i (its SOP Instance UID)
        matched = True
    else:
        logger.warning("source instances do not coincide with the image grid one-to-one (tilted or irregular "
                       "series): the DICOM-SEG gets its own plane positions")
        a = sitk_affine(label)
        affine = np.eye(4)
        affine[:3, :3] = a[:3, [2, 1, 0]]  # highdicom indexes (slice, row, column)
        affine[:3, 3] = a[:3, 3]
        pixel_array = hd.Volume(arr, affine, "PATIENT",
                                frame_of_reference_uid=str(series[0].get("FrameOfReferenceUID", "")) or None)
        matched = False
    first = series[0]
    try:
        number = int(first.get("SeriesNumber", 0) or 0) + 1000
    except (TypeError, ValueError):
        number = 1000
    seg = hd.seg.Segmentation(
        source_images=with_type2_attributes(series), pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=number, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="satgate-monai", manufacturer_model_name=algorithm_name[:64],
        software_versions=algorithm_version, device_serial_number="0", series_description=series_description,
        omit_empty_frames=False,
    )
    return seg, matched


def write_dicom_seg(label: sitk.Image, source: str | os.PathLike, path: str | os.PathLike,
                    labels: Mapping[int, str], *, algorithm_name: str, algorithm_version: str,
                    series_uid: str | None = None, datasets: Sequence | None = None) -> bool:
    """Write a DICOM-SEG of ``label`` referencing the DICOM series at ``source`` to ``path``.

    The caller makes the write atomic (the CLI writes every output of a case to temporary files first).

    Args:
        label: the label map on the source series' grid.
        source: the DICOM folder or file (messages; read only when ``datasets`` is not given).
        path: the output file.
        labels: label value -> name.
        algorithm_name, algorithm_version: recorded in the SEG.
        series_uid: without ``datasets``: the series to reference (the one the reader chose in a study); otherwise
            the series whose instances coincide with ``label``'s grid (a folder may hold several).
        datasets: the headers of the series the image was read from (as the reader returned them,
            :func:`data_prep.dicom.read_dicom_source`): referenced as they are, nothing is read from ``source``.

    Returns:
        True when frames were matched one-to-one to source instances (False: own plane positions).

    Raises:
        ValueError: no DICOM image instances at ``source``.
    """
    if datasets is not None:
        series = [ds for ds in datasets if _is_image_instance(ds)]
        if not series:
            raise ValueError(f"no DICOM image instances found in {source} for the DICOM-SEG")
    else:
        all_series = collect_source_instances(source)
        if series_uid is not None:
            all_series = [s for s in all_series if str(s[0].get("SeriesInstanceUID", "")) == series_uid]
        if not all_series:
            raise ValueError(f"no DICOM image instances found in {source} for the DICOM-SEG")
        series = next((s for s in all_series if match_frames(s, label) is not None), all_series[0])
    seg, matched = build_dicom_seg(label, series, labels, algorithm_name=algorithm_name,
                                   algorithm_version=algorithm_version)
    seg.save_as(path)
    return matched
