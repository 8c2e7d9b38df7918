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

During a run (:class:`ReportAppender`) each case's row is appended to the file (one line, flushed and fsynced): the
file is rewritten (atomically) only when a row brings a column the header lacks, or when the last line was cut by a
kill. A case run again appends a newer row; readers take the last row of a case (:func:`read_rows`). At the end of the
run the file is compacted once: one row per case, sorted by case, the same file the former rewrite-per-case gave.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_prep.atomic import atomic_write_text, naming_the_file

__all__ = ["CaseReport", "BASE_COLUMNS", "ReportAppender", "label_volumes_ml", "write_report", "read_rows"]

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


def label_volumes_ml(statistics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Volume in mL of every named label, from its statistics (:func:`satgate_monai.infer.statistics.label_statistics`:
    the label map is counted once for the report and the statistics)."""
    return {name: float(st["volume_ml"]) for name, st in statistics.items()}


def _whole_lines(text: str) -> str:
    """``text`` without a last line cut short by a kill (no final newline)."""
    return text if not text or text.endswith("\n") else text[: text.rfind("\n") + 1]


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of an existing report, one per case (the last one of a case appended several times), in file order
    (missing file: empty). A last line cut short by a kill is left out."""
    p = Path(path)
    if not p.is_file():
        return []
    text = _whole_lines(p.read_text(encoding="utf-8"))
    rows: dict[str, dict[str, str]] = {}
    for r in csv.DictReader(io.StringIO(text, newline="")):
        rows.pop(r.get("case", ""), None)
        rows[r.get("case", "")] = r
    return list(rows.values())


def _table(rows: Mapping[str, Mapping[str, str]], columns: list[str], *, sort: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for case in (sorted(rows) if sort else rows):
        writer.writerow({k: rows[case].get(k, "") for k in columns})
    return buf.getvalue()


def _columns(rows: Iterable[Mapping[str, str]], start: Iterable[str] = BASE_COLUMNS) -> list[str]:
    columns = list(start)
    for r in rows:
        columns += [k for k in r if k not in columns]
    return columns


def write_report(path: str | os.PathLike, reports: Iterable[CaseReport]) -> Path:
    """Write ``reports`` merged with the earlier rows at ``path`` (same case: replaced), atomically, sorted by case."""
    rows = {r["case"]: r for r in _file_rows(path)}
    rows.update({r.case: r.row() for r in reports})
    atomic_write_text(path, _table(rows, _columns(rows.values()), sort=True))
    return Path(path)


def _file_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """Every whole row of the file in order, duplicates included (a dict built from them keeps the first position
    of a case and its last row, as the former merge did)."""
    p = Path(path)
    if not p.is_file():
        return []
    return list(csv.DictReader(io.StringIO(_whole_lines(p.read_text(encoding="utf-8")), newline="")))


def _next_header(header: list[str], cases: set[str], row: Mapping[str, str]) -> list[str]:
    """The columns :func:`write_report` gives when ``row`` is merged into a sorted file of ``cases`` with ``header``.

    That merge lists columns in the order of its rows: the file's rows (each with every header column) in sorted
    order, ``row`` replacing its case's row in place or coming last. So the new row's own column order leads when it
    replaces the first row (or is alone), else the header's order leads and the row's new columns follow.
    """
    case = row["case"]
    others = cases - {case}
    full = dict.fromkeys(header, "")
    if not others:
        return _columns([row])
    if case in cases and case < min(others):
        return _columns([row, full])
    return _columns([full, row])


class ReportAppender:
    """``report.csv`` kept current during a run by appending one row per case (see the module docstring).

    The compacted file at :meth:`close` is byte for byte what :func:`write_report` called after every case gives
    (same rows, same column order).

    Args:
        path: the report file; earlier rows in it are kept.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.columns: list[str] = []  # the file's header (every column any row in the file has)
        self.header: list[str] = []  # the columns of the compacted report
        self.cases: set[str] = set()
        self.rewrites = 0  # whole-file writes (a new column, an untidy file at start, the compaction): for tests
        if not self.path.is_file():
            return
        text = self.path.read_text(encoding="utf-8")
        cases = [r.get("case", "") for r in csv.DictReader(io.StringIO(_whole_lines(text), newline=""))]
        if not text.endswith("\n") or cases != sorted(set(cases)):  # cut by a kill, or a run's rows not compacted
            self.close()
            text = self.path.read_text(encoding="utf-8")
        self.columns = next(csv.reader(io.StringIO(text, newline="")), [])
        self.header = list(self.columns)
        self.cases = set(cases)

    def add(self, report: CaseReport) -> None:
        """Append ``report``'s row (rewrite the file when it brings new columns)."""
        row = report.row()
        self.header = _next_header(self.header, self.cases, row)
        self.cases.add(report.case)
        if not self.columns or any(k not in self.columns for k in row):
            rows = _file_rows(self.path) + [row]
            self.columns = _columns(rows, self.columns or BASE_COLUMNS)
            atomic_write_text(self.path, _table({i: r for i, r in enumerate(rows)}, self.columns, sort=False))
            self.rewrites += 1
            return
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n", restval="").writerow(row)
        with naming_the_file(self.path), open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> Path:
        """Compact the file: one row per case (its last), sorted by case, in the columns :func:`write_report` gives."""
        if not self.path.is_file():
            return self.path
        rows = {r["case"]: r for r in read_rows(self.path)}
        header = self.header or _columns(rows.values())
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", restval="", extrasaction="ignore")
        writer.writeheader()
        for case in sorted(rows):
            writer.writerow(rows[case])
        atomic_write_text(self.path, buf.getvalue())
        self.rewrites += 1
        return self.path
