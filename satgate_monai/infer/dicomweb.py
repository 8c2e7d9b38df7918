"""DICOMweb in and out: a study from a PACS by WADO-RS, the same pipeline, the DICOM-SEG back by STOW-RS.

``--input dicomweb://HOST:PORT/PATH?study=UID`` (``dicomwebs://`` for HTTPS; ``&series=UID`` retrieves only that
series) names a study on a DICOMweb server (``http://HOST:PORT/PATH`` is its DICOMweb root, e.g. Orthanc's
``/dicom-web``). The study's instances are retrieved with WADO-RS (``dicomweb-client``) into a private scratch
folder (:func:`data_prep.scratch.private_folder`: 0700, removed on every exit, swept after a kill), one file per
instance, and that folder runs through :func:`~satgate_monai.infer.pipeline.run_inference` as one case named after
the StudyInstanceUID: the same validated reader, series selection, bundle and return to the source grid as for a
folder. With ``store`` the case's DICOM-SEG is sent back with STOW-RS (same study, a new
series); the report gains ``stored_seg`` (its SOP Instance UID) and the seconds spent retrieving and storing.

The whole study is retrieved (non-image objects included, so the report can say why each series was skipped), which
for studies with many large series costs more transfer than fetching the chosen series alone; ``&series=`` avoids it.
Connection faults and HTTP errors become one :class:`DicomwebError` line naming the server and the study.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from data_prep.scratch import private_folder
from satgate_monai.bundle.provenance import algorithm_identity
from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cases import sanitize_name
from satgate_monai.infer.pipeline import InferenceOptions, run_inference
from satgate_monai.infer.report import CaseReport, write_report

__all__ = ["SCHEMES", "DicomwebError", "DicomwebSource", "find_stored_seg", "is_dicomweb", "parse_dicomweb",
           "retrieve_study", "store_file", "run_dicomweb"]

logger = logging.getLogger(__name__)

SCHEMES = {"dicomweb": "http", "dicomwebs": "https"}
TIMEOUT_S = 120.0  # per HTTP request
RETRY_ATTEMPTS = 3
RETRY_WAIT_MS = 250  # exponential back-off: 0.5 s, then 1 s


class DicomwebError(OSError):
    """A DICOMweb exchange that failed (no answer, HTTP error, nothing to retrieve); one line naming server and UID."""


@dataclass(frozen=True)
class DicomwebSource:
    """A parsed ``dicomweb://`` address.

    Attributes:
        url: the DICOMweb root (``http://HOST:PORT/dicom-web``).
        study: StudyInstanceUID.
        series: SeriesInstanceUID to retrieve alone, or None for the whole study.
    """

    url: str
    study: str
    series: str | None = None


def is_dicomweb(address: str) -> bool:
    """True for a ``dicomweb://`` or ``dicomwebs://`` address."""
    return str(address).split("://", 1)[0].lower() in SCHEMES and "://" in str(address)


def parse_dicomweb(address: str) -> DicomwebSource:
    """``dicomweb://127.0.0.1:8042/dicom-web?study=1.2.3`` -> ``DicomwebSource("http://127.0.0.1:8042/dicom-web",
    "1.2.3")``.

    Raises:
        ValueError: another scheme, no host, no ``study=``, or an unknown query key, naming the address.
    """
    parts = urlsplit(address)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"DICOMweb address {address!r}: expected dicomweb://HOST:PORT/PATH?study=UID")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"study", "series"})
    if unknown:
        raise ValueError(f"DICOMweb address {address!r}: unknown parameter(s) {unknown} (study=UID, series=UID)")
    study = (query.get("study") or [""])[-1].strip()
    if not study:
        raise ValueError(f"DICOMweb address {address!r}: no study=UID")
    series = (query.get("series") or [""])[-1].strip() or None
    return DicomwebSource(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}", study, series)


def _client(url: str):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=url, timeout=TIMEOUT_S)
    # retry busy answers (429, 503...) and refused connections a few times, within seconds rather than a minute
    client.set_http_retry_params(max_attempts=RETRY_ATTEMPTS, wait_exponential_multiplier=RETRY_WAIT_MS)
    return client


def _fail(what: str, source: DicomwebSource, e: Exception) -> DicomwebError:
    import requests

    if isinstance(e, requests.HTTPError) and e.response is not None:
        detail = f"HTTP {e.response.status_code} {e.response.reason}"
    elif isinstance(e, requests.ConnectionError):
        detail = "no answer (server down, wrong host or port?)"
    else:
        detail = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    return DicomwebError(f"DICOMweb {source.url}: {what} of study {source.study} failed: {detail}")


def retrieve_study(source: DicomwebSource, folder: str | os.PathLike) -> int:
    """Retrieve the study (or its one series) with WADO-RS into ``folder``, one ``<SOPInstanceUID>.dcm`` per instance.

    Returns:
        The number of instances written.

    Raises:
        DicomwebError: the server did not answer, answered an error, or holds no instance of the study.
    """
    import requests

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    client = _client(source.url)
    n = 0
    try:
        it = (client.iter_series(source.study, source.series) if source.series else client.iter_study(source.study))
        for ds in it:
            uid = str(ds.SOPInstanceUID)
            ds.save_as(out / f"{sanitize_name(uid, 'instance')}.dcm", enforce_file_format=True)
            n += 1
    except (requests.RequestException, ValueError) as e:
        raise _fail("WADO-RS retrieval", source, e) from None
    if n == 0:
        raise DicomwebError(f"DICOMweb {source.url}: study {source.study} has no instances to retrieve")
    return n


def _first(meta: dict, tag: str):
    """The first value of ``tag`` (8 hex digits) in a DICOM JSON object, or None."""
    return (meta.get(tag, {}).get("Value") or [None])[0]


def find_stored_seg(source: DicomwebSource, series_uid: str, algorithm: tuple[str, str]) -> str | None:
    """The SeriesInstanceUID of a DICOM-SEG already in the study that this algorithm made for ``series_uid``, or None.

    QIDO-RS lists the study's SEG series; WADO-RS metadata of each tells who made it: ManufacturerModelName (the
    bundle), SoftwareVersions (bundle, package and weights versions: :func:`~satgate_monai.bundle.provenance.
    algorithm_identity`) and the ReferencedSeriesSequence (the source series), all set by the project's SEG writer.

    Raises:
        DicomwebError: the server did not answer or answered an error.
    """
    import requests

    name, version = algorithm
    client = _client(source.url)
    try:
        for series in client.search_for_series(source.study, search_filters={"Modality": "SEG"}):
            seg_uid = _first(series, "0020000E")
            for meta in client.retrieve_series_metadata(source.study, seg_uid)[:1]:
                refs = [_first(r, "0020000E") for r in (meta.get("00081115", {}).get("Value") or [])]
                versions = meta.get("00181020", {}).get("Value") or []
                if _first(meta, "00081090") == name and version in versions and series_uid in refs:
                    return seg_uid
    except (requests.RequestException, ValueError) as e:
        raise _fail("QIDO-RS look-up of stored DICOM-SEGs", source, e) from None
    return None


def store_file(source: DicomwebSource, path: str | os.PathLike) -> str:
    """Send the DICOM file at ``path`` to the server with STOW-RS; return its SOP Instance UID.

    Raises:
        DicomwebError: the server did not answer, refused the instance, or reported it as failed.
    """
    import pydicom
    import requests

    ds = pydicom.dcmread(path)
    try:
        answer = _client(source.url).store_instances([ds], study_instance_uid=str(ds.StudyInstanceUID))
    except (requests.RequestException, ValueError) as e:
        raise _fail("STOW-RS store", source, e) from None
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        reason = failed[0].get("FailureReason", "?")
        raise DicomwebError(f"DICOMweb {source.url}: the server refused {Path(path).name} (failure reason {reason})")
    return str(ds.SOPInstanceUID)


def run_dicomweb(runner: BundleRunner, address: str, out_dir: str | os.PathLike, opts: InferenceOptions | None = None,
                 *, store: bool = False, store_again: bool = False, progress: bool = True,
                 command: Sequence[str] | None = None) -> list[CaseReport]:
    """Retrieve the study at ``address``, run the pipeline on it, write outputs to ``out_dir`` and, with ``store``,
    send the DICOM-SEG back, unless the study already holds a SEG of the same algorithm and weights for the same
    source series (:func:`find_stored_seg`): then the store is skipped with a notice (``warning`` in the report,
    ``stored_seg`` names the SEG series found), except with ``store_again``.

    Returns:
        The case's report (one; ``report.csv`` in ``out_dir`` is updated).

    Raises:
        ValueError: a bad address, or ``store`` without ``dicomseg`` among the formats.
        DicomwebError: retrieval failed (a failed store is recorded in the case's report instead).
    """
    opts = opts or InferenceOptions()
    source = parse_dicomweb(address)
    if store and "dicomseg" not in opts.formats:
        raise ValueError("--store sends the DICOM-SEG back: add dicomseg to --format")
    out = Path(out_dir)
    with private_folder("dicomweb") as td:
        study_dir = Path(td) / sanitize_name(source.study, "study")
        t0 = time.perf_counter()
        n = retrieve_study(source, study_dir)
        t_get = time.perf_counter() - t0
        logger.info("retrieved %d instance(s) of study %s from %s in %.2f s", n, source.study, source.url, t_get)
        reports = run_inference(runner, study_dir, out, opts, progress=progress, command=command)
    where = f"DICOMweb {source.url} study {source.study}"  # never the scratch folder, gone by now
    for r in reports:
        r.input = address
        r.error = r.error.replace(f"DICOM folder {study_dir}", where).replace(str(study_dir), where)
        r.extra["retrieve_seconds"] = f"{t_get:.3f}"
        if store and r.status == "ok":
            seg = next((o for o in r.outputs if o.endswith("_seg.dcm")), None)
            t1 = time.perf_counter()
            try:
                if seg is None:
                    raise DicomwebError("no DICOM-SEG was written for this case")
                found = None if store_again else find_stored_seg(source, r.extra.get("series", ""),
                                                                 algorithm_identity(runner))
                if found:
                    note = (f"not stored: study {source.study} on {source.url} already holds DICOM-SEG series {found} "
                            f"of the same algorithm and weights for series {r.extra.get('series')} "
                            "(--store-again stores another)")
                    logger.warning("%s", note)
                    r.warning = "; ".join(filter(None, [r.warning, note]))
                    r.extra["stored_seg"] = f"already stored: series {found}"
                else:
                    r.extra["stored_seg"] = store_file(source, out / seg)
            except DicomwebError as e:
                r.status, r.error = "failed", f"{type(e).__name__}: {e}"
            r.extra["store_seconds"] = f"{time.perf_counter() - t1:.3f}"
        write_report(out / "report.csv", [r])
    return reports
