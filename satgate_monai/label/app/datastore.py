"""The app's datastores: a studies folder or a DICOMweb PACS (e.g. Orthanc), both checking uploads at the door.

- :class:`CheckedLocalDatastore`: MONAI Label's folder datastore; an uploaded image or label is checked
  (:mod:`satgate_monai.label.validation`) before it is stored, and refused with HTTP 422 and a one-line reason; the
  server's temporary copy of a refused upload is removed at once (:func:`discard_on_failure`).
- :class:`PACSDatastore`: MONAI Label's DICOMweb datastore (``--studies http://host:port/dicom-web``): studies and
  series are listed with QIDO-RS, a series is fetched with WADO-RS and converted to NIfTI in a local cache, and a
  submitted label is checked, written as a DICOM-SEG that references the source series (pydicom-seg, no download of
  dcmqi's binaries as the stock datastore does) and stored back with STOW-RS. Only series of the served models'
  modalities are listed (never the SEG series).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from fastapi import HTTPException
from monailabel.datastore.dicom import DICOMWebDatastore
from monailabel.datastore.local import LocalDatastore
from monailabel.datastore.utils.dicom import dicom_web_upload_dcm
from monailabel.interfaces.datastore import DefaultLabelTag

from satgate_monai.label.validation import UploadError, check_image_upload, check_label_upload

__all__ = ["CheckedLocalDatastore", "PACSDatastore", "UploadChecks", "discard_on_failure", "write_dicom_seg"]

logger = logging.getLogger(__name__)

DERIVED_MODALITIES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "RWV"}
LIST_TTL = 30.0  # seconds a DICOMweb series listing is reused


@contextlib.contextmanager
def discard_on_failure(upload: str) -> Iterator[None]:
    """Remove the server's temporary copy of an upload when storing it fails (refused, or any error): MONAI Label
    removes it only after a successful answer."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(upload)
        raise


class UploadChecks:
    """Checks shared by both datastores (a mixin placed before the MONAI Label datastore class).

    ``label_values`` is set by the app: a callable returning the label values the served models know.
    """

    label_values: Callable[[], Iterable[int]] = staticmethod(lambda: ())

    def _refuse(self, e: UploadError) -> HTTPException:
        logger.warning("refused: %s", e)
        return HTTPException(status_code=422, detail=str(e))

    def require_image(self, image_id: str) -> str:
        """The stored image's local file; HTTP 404 when the datastore has no image of that id."""
        if image_id not in self.list_images():
            raise HTTPException(
                status_code=404,
                detail=f"image {image_id!r} is not in the datastore (GET /datastore/?output=all lists the images)",
            )
        return self.get_image_uri(image_id)

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        with discard_on_failure(image_filename):
            name = f"uploaded image {image_id or os.path.basename(image_filename)!r}"
            try:
                check_image_upload(image_filename, name=name)
            except UploadError as e:
                raise self._refuse(e) from None
            return super().add_image(image_id, image_filename, image_info)

    def check_label(self, image_id: str, label_filename: str) -> None:
        """Refuse (HTTP 404/422) a label for an unknown image, or one the checks reject."""
        image_uri = self.require_image(image_id)
        try:
            check_label_upload(label_filename, image_uri, self.label_values(), name=f"label for image {image_id!r}")
        except UploadError as e:
            raise self._refuse(e) from None


class CheckedLocalDatastore(UploadChecks, LocalDatastore):
    """MONAI Label's studies-folder datastore with uploads checked before they are stored."""

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        with discard_on_failure(label_filename):
            self.check_label(image_id, label_filename)
            return super().save_label(image_id, label_filename, label_tag, label_info)


def _seg_template(values: list[int], names: dict[int, str], description: str):
    """pydicom-seg's template (dcmqi meta-information) for segments ``values`` named by ``names``."""
    import pydicom_seg

    segments = [
        {
            "labelID": v,
            "SegmentLabel": names.get(v, f"label {v}"),
            "SegmentDescription": names.get(v, f"label {v}"),
            "SegmentAlgorithmType": "SEMIAUTOMATIC",
            "SegmentAlgorithmName": "satgate-monai",
            "SegmentedPropertyCategoryCodeSequence": {
                "CodeValue": "123037004",
                "CodingSchemeDesignator": "SCT",
                "CodeMeaning": "Anatomical Structure",
            },
            "SegmentedPropertyTypeCodeSequence": {
                "CodeValue": "91772007",
                "CodingSchemeDesignator": "SCT",
                "CodeMeaning": "Organ",
            },
            "recommendedDisplayRGBValue": [255, 0, 0],
        }
        for v in values
    ]
    template = pydicom_seg.template.from_dcmqi_metainfo(
        {
            "ContentCreatorName": "satgate-monai",
            "SeriesDescription": description,
            "SeriesNumber": "300",
            "InstanceNumber": "1",
            "segmentAttributes": [segments],
            "ContentLabel": "SEGMENTATION",
            "ContentDescription": description[:64],
            "ClinicalTrialCoordinatingCenterName": "",
            "BodyPartExamined": "",
        }
    )
    return template


def write_dicom_seg(series_dir: str, label_file: str, names: dict[int, str], description: str) -> str:
    """Write a label volume as a DICOM-SEG referencing the DICOM series in ``series_dir``; return its path.

    Args:
        series_dir: the source series' files (as fetched from the PACS).
        label_file: the label on the series' grid (NIfTI from the datastore's conversion, or as submitted).
        names: label value -> segment name (values without a name are called ``label <value>``).
        description: the SEG's SeriesDescription.

    Raises:
        ValueError: the label holds no segment (an empty label is not stored as a DICOM-SEG).
    """
    import pydicom
    import pydicom_seg
    import SimpleITK as sitk

    mask = sitk.Cast(sitk.ReadImage(label_file), sitk.sitkUInt16)
    values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(mask)) if v != 0]
    if not values:
        raise ValueError(f"{label_file}: the label is empty (no segment to store)")
    template = _seg_template(values, names, description)
    writer = pydicom_seg.MultiClassWriter(
        template=template, inplane_cropping=False, skip_empty_slices=False, skip_missing_segment=False
    )
    files = sorted(os.listdir(series_dir))
    sources = [pydicom.dcmread(os.path.join(series_dir, f), stop_before_pixels=True) for f in files]
    seg = writer.write(mask, sources)
    for frame in seg.get("PerFrameFunctionalGroupsSequence", []):  # the label lies on the series' own grid
        for derivation in frame.get("DerivationImageSequence", []):
            for source in derivation.get("SourceImageSequence", []):
                source.SpatialLocationsPreserved = "YES"
    fd, out = tempfile.mkstemp(suffix=".dcm")
    os.close(fd)
    seg.save_as(out)
    return out


class PACSDatastore(UploadChecks, DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore for a PACS, listing only image series of the served modalities.

    Args:
        client: the DICOMweb client (MONAI Label's).
        modalities: DICOM modalities of the series to annotate (e.g. ``["MR"]``); empty: every non-derived series.
        cache_path: where fetched series and their NIfTI conversions are kept.
        label_names: callable giving label value -> name, for the DICOM-SEG's segments.
    """

    def __init__(
        self,
        client: Any,
        modalities: Iterable[str],
        cache_path: str,
        label_names: Callable[[], dict[int, str]] = dict,
    ) -> None:
        self.modalities = [m.strip().upper() for m in modalities if m.strip()]
        self.label_names = label_names
        self._listing: tuple[float, list[str]] = (0.0, [])
        super().__init__(client, search_filter={}, cache_path=cache_path, fetch_by_frame=False, convert_to_nifti=True)

    def list_images(self) -> list[str]:
        """SeriesInstanceUIDs of the PACS's image series of the served modalities (re-queried every 30 s)."""
        stamp, series = self._listing
        if time.monotonic() - stamp < LIST_TTL:
            return list(series)
        found: list[str] = []
        for modality in self.modalities or [None]:
            filters = {"Modality": modality} if modality else {}
            for ds in self._client.search_for_series(search_filters=filters):
                uid = ds.get("0020000E", {}).get("Value", [None])[0]
                mod = (ds.get("00080060", {}).get("Value") or [""])[0]
                if uid and mod.upper() not in DERIVED_MODALITIES and uid not in found:
                    found.append(uid)
        self._listing = (time.monotonic(), found)
        return list(found)

    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        """Image series that a DICOM-SEG in the PACS references (queried each time: labels change while serving)."""
        return DICOMWebDatastore.get_labeled_images.__wrapped__(self, label_tag, labels)

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any], label_id: str = ""
    ) -> str:
        """Check the label; a final label is stored in the PACS as a DICOM-SEG referencing the series, and cached."""
        with discard_on_failure(label_filename):
            return self._save_label(image_id, label_filename, label_tag, label_info)

    def _save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        self.check_label(image_id, label_filename)
        if label_tag == DefaultLabelTag.FINAL:
            series_dir = os.path.realpath(os.path.join(self._datastore.image_path(), image_id))
            model = (label_info or {}).get("model") or "manual"
            try:
                seg_file = write_dicom_seg(series_dir, label_filename, self.label_names(), f"{model} label")
            except ValueError as e:
                raise HTTPException(status_code=422, detail=f"label for image {image_id!r}: {e}") from None
            try:
                seg_series = dicom_web_upload_dcm(seg_file, self._client)
            finally:
                os.unlink(seg_file)
            if not seg_series:
                raise HTTPException(status_code=502, detail="the PACS did not confirm the DICOM-SEG (STOW-RS)")
            image_info = self.get_image_info(image_id)
            label_info = dict(label_info or {})
            label_info.update(
                {
                    "SeriesInstanceUID": seg_series,
                    "Modality": "SEG",
                    "PatientID": image_info.get("PatientID"),
                    "StudyInstanceUID": image_info.get("StudyInstanceUID"),
                }
            )
            logger.info("stored the label of series %s as DICOM-SEG series %s", image_id, seg_series)
        return LocalDatastore.save_label(self, image_id, label_filename, label_tag, label_info)
