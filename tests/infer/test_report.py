"""``report.csv`` is appended one row per case and compacted once: the same file as a rewrite after every case."""

from __future__ import annotations

import csv
import os
import shutil

from satgate_monai.infer.report import CaseReport, ReportAppender, read_rows, write_report


def _reports() -> list[CaseReport]:
    """A run's reports whose columns grow: a failure (no volumes), ok cases with statistics, a DICOM series, a case
    run twice (a resumed run reports it again)."""
    vols = {"liver": 1.5, "tumour": 0.0}
    return [
        CaseReport("c", "in/c.nii", "failed", 0.2, error="in/c.nii: truncated"),
        CaseReport("a", "in/a.nii", "ok", 1.0, volumes_ml=vols, extra={"voxels_liver": "10", "mean_liver": "3.5"}),
        CaseReport("b", "in/b.nii", "ok", 1.1, volumes_ml=vols, extra={"voxels_liver": "11", "mean_liver": "2.5"}),
        CaseReport("d", "in/d", "ok", 2.0, volumes_ml=vols,
                   extra={"voxels_liver": "12", "mean_liver": "1.0", "series": "1.2.3"}),
        CaseReport("e", "in/e.nii", "skipped", 0.0, error="outputs exist", outputs=["e_seg.nii.gz"]),
        CaseReport("c", "in/c.nii", "ok", 0.9, volumes_ml=vols, extra={"voxels_liver": "9", "mean_liver": "4.0"}),
    ]


def _earlier_run(path) -> None:
    write_report(path, [CaseReport("z", "in/z.nii", "ok", 3.0, volumes_ml={"liver": 2.0, "tumour": 1.0}),
                        CaseReport("a", "in/a.nii", "failed", 0.1, error="earlier fault", extra={"old_col": "x"})])


def test_appended_report_equals_the_rewritten_one(tmp_path):
    for earlier in (False, True):
        old, new = tmp_path / f"old{earlier}.csv", tmp_path / f"new{earlier}.csv"
        if earlier:
            _earlier_run(old)
            shutil.copy(old, new)
        appender = ReportAppender(new)
        for r in _reports():
            write_report(old, [r])  # the former behaviour: the whole file rewritten after each case
            appender.add(r)
            with open(new, newline="", encoding="utf-8") as f:  # a valid CSV after every case
                rows = list(csv.DictReader(f))
            assert all(None not in row for row in rows)
            assert {r["case"]: r for r in read_rows(new)}[r.case]["status"] == r.status
        appender.close()
        assert new.read_bytes() == old.read_bytes()


def test_rows_are_appended_not_rewritten(tmp_path):
    path = tmp_path / "report.csv"
    appender = ReportAppender(path)
    vols = {"liver": 1.0}
    appender.add(CaseReport("a", "in/a", "ok", 1.0, volumes_ml=vols))
    inode, size = os.stat(path).st_ino, path.stat().st_size
    for case in "bcdef":
        appender.add(CaseReport(case, f"in/{case}", "ok", 1.0, volumes_ml=vols))
        assert os.stat(path).st_ino == inode and path.stat().st_size > size  # the same file, grown
        size = path.stat().st_size
    assert appender.rewrites == 1  # the header, once
    appender.add(CaseReport("g", "in/g", "ok", 1.0, volumes_ml=vols, extra={"series": "1.2"}))  # a new column
    assert appender.rewrites == 2
    assert [r["case"] for r in read_rows(path)] == list("abcdefg")


def test_a_line_cut_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "report.csv"
    write_report(path, [CaseReport("a", "in/a", "ok", 1.0)])
    with open(path, "a", encoding="utf-8") as f:
        f.write("b,in/b,o")  # killed while appending
    assert [r["case"] for r in read_rows(path)] == ["a"]
    appender = ReportAppender(path)
    appender.add(CaseReport("c", "in/c", "ok", 1.0))
    appender.close()
    assert [r["case"] for r in read_rows(path)] == ["a", "c"]
    assert path.read_text().count("\n") == 3


def test_any_order_of_cases_and_columns_gives_the_rewritten_file(tmp_path):
    """Random runs (cases again, columns appearing and vanishing, earlier reports): byte-identical to rewriting."""
    import random

    rng = random.Random(0)
    extras = ["series", "voxels_liver", "mean_liver", "retrieve_seconds", "series_selection"]
    for trial in range(60):
        old, new = tmp_path / f"old{trial}.csv", tmp_path / f"new{trial}.csv"

        def report() -> CaseReport:
            case = rng.choice("abcdef")
            extra = {k: str(rng.randint(0, 9)) for k in rng.sample(extras, rng.randint(0, 3))}
            vols = {"liver": 1.0} if rng.random() < 0.6 else {}
            return CaseReport(case, f"in/{case}", rng.choice(["ok", "failed", "skipped"]), rng.random(),
                              volumes_ml=vols, extra=extra)

        for _ in range(rng.randint(0, 3)):  # earlier runs
            write_report(old, [report() for _ in range(rng.randint(1, 3))])
        if old.exists():
            shutil.copy(old, new)
        appender = ReportAppender(new)
        for _ in range(rng.randint(1, 8)):
            r = report()
            write_report(old, [r])
            appender.add(r)
        appender.close()
        assert new.read_bytes() == old.read_bytes(), trial
