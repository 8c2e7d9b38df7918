"""Per-case ``report.csv``: what was read, what was written, how long it took, and why a case failed.

Columns: ``case, status, source_spacing, source_size, source_orientation, output_size, seconds, error, warning`` where
status is ``ok`` (written in this run), ``skipped`` (complete outputs from an earlier run were kept) or ``failed``
(``error`` says why; nothing was written for that case). ``warning`` flags a case that was written but deserves a
look: an all-background training label, a label whose foreground vanished on the output grid, non-finite voxels
replaced by 0 (only with ``--nonfinite zero``). Sizes and spacings are ``x`` separated in (x, y, z) order, spacing in
mm; orientation is the DICOM-style code of the direction cosines (e.g. ``LPS``), with ``oblique`` appended when the
axes are not aligned with the patient axes.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from data_prep.atomic import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["CaseResult", "REPORT_COLUMNS", "write_report", "read_report", "format_tuple", "finish_run"]

STATUSES = ("ok", "failed", "skipped")


@dataclass
class CaseResult:
    """One row of ``report.csv`` (all strings are already formatted; ``seconds`` is wall time for the case)."""

    case: str
    status: str
    source_spacing: str = ""
    source_size: str = ""
    source_orientation: str = ""
    output_size: str = ""
    seconds: float = 0.0
    error: str = ""
    warning: str = ""
    # not written to the csv: relative output paths for the datalist
    image: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


REPORT_COLUMNS = ("case", "status", "source_spacing", "source_size", "source_orientation", "output_size", "seconds",
                  "error", "warning")


def format_tuple(values: Iterable[float | int], digits: int = 4) -> str:
    """(0.703125, 0.703125, 5.0) -> ``"0.7031x0.7031x5"``."""
    out = []
    for v in values:
        if isinstance(v, int) or float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(f"{float(v):.{digits}f}".rstrip("0").rstrip("."))
    return "x".join(out)


def write_report(path: str | os.PathLike, rows: Iterable[CaseResult]) -> Path:
    """Write ``rows`` (sorted by case) to ``path`` as CSV, atomically; return the path."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in sorted(rows, key=lambda r: r.case):
        d = asdict(r)
        d["seconds"] = f"{r.seconds:.3f}"
        d["error"] = " ".join(r.error.split())  # one line per case
        d["warning"] = " ".join(r.warning.split())
        writer.writerow({k: d[k] for k in REPORT_COLUMNS})
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def read_report(path: str | os.PathLike) -> list[CaseResult]:
    """Read a ``report.csv`` written by :func:`write_report` (missing file: empty list)."""
    p = Path(path)
    if not p.is_file():
        return []
    names = {f.name for f in fields(CaseResult)}
    rows = []
    with open(p, newline="", encoding="utf-8") as f:
        for d in csv.DictReader(f):
            kw = {k: v for k, v in d.items() if k in names}
            kw["seconds"] = float(kw.get("seconds") or 0.0)
            rows.append(CaseResult(**kw))
    return rows


def finish_run(out_dir: str | os.PathLike, rows: Iterable[CaseResult], what: str) -> int:
    """End a run: write ``out_dir/report.csv``, log the counts and return the exit code (1 if any case failed).

    Args:
        out_dir: the run's output folder.
        rows: one row per case.
        what: the verb for the log line, e.g. ``"prepared"``.
    """
    rows = list(rows)
    write_report(Path(out_dir) / "report.csv", rows)
    n_failed = sum(r.status == "failed" for r in rows)
    n_skipped = sum(r.status == "skipped" for r in rows)
    for r in rows:
        if r.warning and r.status != "failed":
            logger.warning("case %s: %s", r.case, r.warning)
    logger.info("%s %d case(s) in %s: %d ok, %d skipped, %d failed", what, len(rows), out_dir,
                len(rows) - n_failed - n_skipped, n_skipped, n_failed)
    return 1 if n_failed else 0
