"""``report.csv`` of the inference CLI: one row per case, merged with the rows of earlier runs.

Columns: ``case, input, status, seconds, error, outputs, warning`` then ``volume_ml_<label>`` for every label the
bundle names, then any further columns a case carries: the per-label statistics of
:mod:`~satgate_monai.infer.statistics` (``voxels_<label>``, ``mean_<label>``, ...), ``series`` and
``series_selection`` for DICOM folders (the series read and why the others were skipped), ``retrieve_seconds``,
``store_seconds`` and ``stored_seg`` for DICOMweb input. ``status`` is ``ok`` (written in this run), ``skipped``
(complete outputs exist and ``--overwrite`` was not given) or ``failed`` (``error`` says why, in one line of at most
300 characters; nothing was written for that case, except when only its DICOM-SEG failed: then ``outputs`` lists the
NIfTI mask that was written, or when only the DICOMweb store failed: then the local outputs stay). ``warning`` says
what was changed to make the case run (non-finite input voxels replaced by 0 with ``--nonfinite zero``). Volumes are
counted on the source grid (voxel count x voxel volume / 1000). Rows of cases not processed in this run are kept from
the previous report.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.atomic import atomic_write_text

__all__ = ["CaseReport", "BASE_COLUMNS", "label_volumes_ml", "write_report", "read_rows"]

BASE_COLUMNS = ("case", "input", "status", "seconds", "error", "outputs", "warning")
STATUSES = ("ok", "skipped", "failed")


@dataclass
class CaseReport:
    """One case's outcome."""

    case: str
    input: str
    status: str
    seconds: float = 0.0
    error: str = ""
    warning: str = ""
    outputs: list[str] = field(default_factory=list)
    volumes_ml: dict[str, float] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # further columns (series chosen, DICOMweb store...)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def row(self) -> dict[str, str]:
        """The CSV row (strings)."""
        d = {"case": self.case, "input": self.input, "status": self.status, "seconds": f"{self.seconds:.3f}",
             "error": " ".join(self.error.split()), "outputs": ";".join(self.outputs),
             "warning": " ".join(self.warning.split())}
        d.update({f"volume_ml_{k}": f"{v:.3f}" for k, v in self.volumes_ml.items()})
        d.update({k: " ".join(str(v).split()) for k, v in self.extra.items()})
        return d


def label_volumes_ml(label: sitk.Image, labels: Mapping[int, str]) -> dict[str, float]:
    """Volume in mL of every named label in ``label`` (0 for absent labels)."""
    arr = sitk.GetArrayViewFromImage(label)
    counts = np.bincount(arr.ravel().astype(np.int64), minlength=max(labels, default=0) + 1)
    voxel_ml = float(np.prod(label.GetSpacing())) / 1000.0
    return {name: float(counts[k]) * voxel_ml for k, name in sorted(labels.items())}


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of an existing report (missing file: empty)."""
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_report(path: str | os.PathLike, reports: Iterable[CaseReport]) -> Path:
    """Write ``reports`` merged with the earlier rows at ``path`` (same case: replaced), atomically, sorted by case."""
    rows = {r["case"]: r for r in read_rows(path)}
    rows.update({r.case: r.row() for r in reports})
    columns = list(BASE_COLUMNS)
    for r in rows.values():
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for case in sorted(rows):
        writer.writerow({k: rows[case].get(k, "") for k in columns})
    atomic_write_text(path, buf.getvalue())
    return Path(path)
