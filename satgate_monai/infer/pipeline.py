"""The batch loop: every case read with data_prep's reader, run through the bundle, written on the source grid.

One case = three stages: read (validated) and the case engine's preprocessing (:meth:`BundleRunner.preprocess`)
-> the network (:meth:`BundleRunner.infer`) -> the engine's return to the source grid (probabilities linearly, then
argmax, then the bundle's label steps), NIfTI (+ attention maps, probabilities, statistics) written together: all of
these go to temporary files first, each is read back in full (:func:`data_prep.file_checks.check_file`) and renamed only
when every one is complete, so a full disk or a killed process never leaves a mask under its final name. The DICOM-SEG
is written after them, on its own, from the series headers the reader returned: its failure is reported but never costs
the case its NIfTI mask. A failing case is reported and the loop goes on. Complete existing outputs are kept (status
``skipped``) unless ``overwrite``; an output that is missing, cut or unreadable is never taken as done: the case runs
again.

With several cases (``prefetch``, the default) the stages overlap as nnU-Net overlaps them: while the network runs
case i, one background thread reads and preprocesses case i+1 and another postprocesses and writes case i-1, so at
most three cases are in memory. Outputs, reports and their order are those of running the cases one after the other."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from data_prep.atomic import atomic_path, check_output_not_inside_input, remove_stale_temporaries
from data_prep.dicom import read_dicom_source
from data_prep.errors import describe, one_line
from data_prep.file_checks import check_file
from data_prep.readers import read_image
from data_prep.validation import check_image
from satgate_monai.bundle.provenance import RunLog, algorithm_identity, case_record, run_record
from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cases import Case, find_cases, safe_output_path, sanitize_name
from satgate_monai.infer.dicomseg import write_dicom_seg
from satgate_monai.infer.geometry import resample_to_source
from satgate_monai.infer.nifti import write_nifti
from satgate_monai.infer.probabilities import write_probabilities
from satgate_monai.infer.report import CaseReport, ReportAppender, label_volumes_ml
from satgate_monai.infer.statistics import label_statistics, report_columns, write_stats_json

__all__ = ["FORMATS", "InferenceOptions", "run_case", "run_inference", "REPORT_NAME", "STATS_FORMATS"]

logger = logging.getLogger(__name__)

FORMATS = ("nifti", "dicomseg")
STATS_FORMATS = ("json",)
REPORT_NAME = "report.csv"


@dataclass(frozen=True)
class InferenceOptions:
    """What to write and how.

    Attributes:
        formats: subset of :data:`FORMATS`; ``dicomseg`` applies to DICOM inputs only.
        save_attention: write every ``sat``/``at`` gate's attention map (float32 NIfTI on the source grid).
        overwrite: replace existing outputs (otherwise such a case is ``skipped``).
        name_from: ``"path"`` or ``"patient"`` (see :func:`~satgate_monai.infer.cases.find_cases`).
        nonfinite: NaN/Inf input voxels: ``"refuse"`` the case (default) or ``"zero"`` (replaced by 0; the report's
            ``warning`` says how many).
        save_probabilities: write ``<case>_probabilities.npz`` (float16, source grid); the label map is then their
            argmax (see :mod:`~satgate_monai.infer.probabilities`).
        stats: ``"json"``: also write ``<case>_stats.json`` (:mod:`~satgate_monai.infer.statistics`); ``None``: the
            statistics go to ``report.csv`` only.
        series_uid: the series to read in DICOM folders that hold several (``--series``), whatever the rules say.
        series_rules: series selection rules for such folders (:mod:`data_prep.series_selection`; the CLI passes
            the bundle's ``series_selection`` metadata); None: that module's default rules.
        prefetch: with several cases, read and preprocess the next case and write the previous one in background
            threads while the network runs (same outputs and report; up to three cases in memory); False: one case
            after the other.
    """

    formats: tuple[str, ...] = ("nifti", "dicomseg")
    save_attention: bool = False
    overwrite: bool = False
    name_from: str = "path"
    nonfinite: str = "refuse"
    save_probabilities: bool = False
    stats: str | None = None
    series_uid: str | None = None
    series_rules: dict | None = None
    prefetch: bool = True

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ValueError(f"unknown output format(s) {bad or self.formats}: choose from {', '.join(FORMATS)}")
        if self.stats is not None and self.stats not in STATS_FORMATS:
            raise ValueError(f"unknown statistics format {self.stats!r}: choose from {', '.join(STATS_FORMATS)}")


def _verify_output(path: Path) -> None:
    """Raise unless ``path`` is a whole, readable output: a NIfTI read to its end, a DICOM file parsed to its end,
    an ``.npz`` whose arrays all load, a JSON document that parses."""
    name = path.name.lower()
    if name.endswith(".dcm"):
        import pydicom

        pydicom.dcmread(path)
    elif name.endswith(".npz"):
        with np.load(path) as archive:
            for key in archive.files:
                archive[key]
    elif name.endswith(".json"):
        json.loads(path.read_text(encoding="utf-8"))
    else:
        check_file(path)


def _complete(path: Path) -> bool:
    """Is ``path`` a whole, readable output (see :func:`_verify_output`)?"""
    try:
        _verify_output(path)
    except Exception as e:  # any failure means: not done
        logger.warning("%s is not a complete output (%s): the case runs again", path, one_line(str(e), 150))
        return False
    return True


def _existing_outputs(case: Case, out_dir: Path, opts: InferenceOptions) -> tuple[list[Path], bool]:
    """The outputs of ``case`` already in ``out_dir``, and whether every expected one is there and complete."""
    names = [f"{case.name}_seg.nii.gz"] if "nifti" in opts.formats else []
    if "dicomseg" in opts.formats and case.is_dicom:
        names.append(f"{case.name}_seg.dcm")
    found = [out_dir / n for n in names if (out_dir / n).exists()]
    complete = len(found) == len(names) and bool(names)
    if opts.save_attention:
        maps = sorted(out_dir.glob(f"{case.name}_attention_*.nii.gz"))
        found += maps
        complete = complete and bool(maps)
    extras = []
    if opts.save_probabilities:
        extras.append(out_dir / f"{case.name}_probabilities.npz")
    if opts.stats == "json":
        extras.append(out_dir / f"{case.name}_stats.json")
    for path in extras:
        if path.exists():
            found.append(path)
        else:
            complete = False
    return found, complete and all(_complete(p) for p in found)


@dataclass
class _Case:
    """One case on its way through the three stages (read + preprocess, network, postprocess + write)."""

    case: Case
    report: CaseReport
    done: bool = False  # the report is final (skipped, or failed in an earlier stage)
    image: sitk.Image | None = None
    headers: list | None = None  # DICOM: the chosen series' headers
    notes: list[str] = field(default_factory=list)
    data: Any = None  # preprocessed, then the network's output
    seconds: dict[str, float] = field(default_factory=dict)


def _fail(state: _Case, e: Exception) -> _Case:
    """Record ``e`` as the case's one-line error (nothing is written for it)."""
    case, report = state.case, state.report
    report.status = "failed"
    if isinstance(e, _SegFailed):
        report.error = one_line(str(e))
    else:
        logger.debug("case %s failed", case.name, exc_info=(type(e), e, e.__traceback__))
        report.error = one_line(describe(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}")
        if str(case.path) not in report.error and case.name not in report.error:
            report.error = one_line(f"{case.path}: {report.error}")
        report.volumes_ml = {}
        report.extra = {k: v for k, v in report.extra.items() if k == "series"}
    state.done = True
    state.data = state.image = state.headers = None
    return state


def _prepare(runner: BundleRunner, case: Case, out: Path, opts: InferenceOptions) -> _Case:
    """Stage 1: the output check, then read, validate and preprocess (in memory). Never raises."""
    t0 = time.perf_counter()
    state = _Case(case, CaseReport(case=case.name, input=str(case.path), status="ok"))
    report = state.report
    existing, complete = _existing_outputs(case, out, opts)
    if complete and not opts.overwrite:
        report.status = "skipped"
        report.error = f"outputs exist ({', '.join(p.name for p in existing)}): pass --overwrite to replace them"
        report.outputs = [p.name for p in existing]
        state.done = True
        return state
    if "nifti" not in opts.formats and not case.is_dicom and not opts.save_attention:
        report.status = "skipped"
        report.error = "nothing to write: --format dicomseg applies to DICOM input only (add nifti)"
        state.done = True
        return state
    try:
        if case.is_dicom:  # a study: one series chosen by the rules, named in the report
            image, choice, state.headers = read_dicom_source(case.path, opts.series_uid, opts.series_rules,
                                                             parsed=case.parsed)
            image, found = check_image(image, case.path, nonfinite=opts.nonfinite, spatial_dims=3, channels=1)
            state.notes.extend(found)
            if case.path.is_dir():
                report.extra["series"] = choice.chosen.uid
                if choice.skipped:
                    report.extra["series_selection"] = choice.summary()
        else:  # validated with what the 3D bundles take: one scan of the voxels
            image = read_image(case.path, series_uid=opts.series_uid, rules=opts.series_rules,
                               nonfinite=opts.nonfinite, notes=state.notes, spatial_dims=3, channels=1)
        state.image = image
        t_read = time.perf_counter()
        state.seconds["read"] = t_read - t0
        state.data = runner.preprocess(image, source=case.path, headers=state.headers)
        state.seconds["preprocess"] = time.perf_counter() - t_read
    except Exception as e:  # a bad case is reported, the others go on
        _fail(state, e)
    state.seconds.setdefault("read", time.perf_counter() - t0)
    return state


def _network(runner: BundleRunner, state: _Case, opts: InferenceOptions) -> _Case:
    """Stage 2: the network (sliding window, ensemble) on the preprocessed image. Never raises."""
    if state.done:
        return state
    t0 = time.perf_counter()
    try:
        state.data = runner.infer(state.data, save_attention=opts.save_attention)
    except Exception as e:
        _fail(state, e)
    state.seconds["network"] = time.perf_counter() - t0
    return state


def _write(runner: BundleRunner, state: _Case, out: Path, opts: InferenceOptions) -> CaseReport:
    """Stage 3: postprocessing, return to the source grid, statistics and every output written. Never raises."""
    case, report = state.case, state.report
    t0 = time.perf_counter()
    if state.done:
        report.seconds = sum(state.seconds.values())
        return report
    image = state.image
    try:
        net_out = runner.finish(state.data, save_probabilities=opts.save_probabilities)
        state.data = None
        label, probs = net_out.label, net_out.probabilities
        attention = {name: resample_to_source(sitk.Cast(m, sitk.sitkFloat32), image, interpolation="linear")
                     for name, m in net_out.attention.items()}
        t_back = time.perf_counter()
        stats = label_statistics(label, image, runner.labels)
        report.volumes_ml = label_volumes_ml(stats)
        report.extra.update(report_columns(stats))
        writes: list[tuple[Path, Callable[[Path], object]]] = []
        ident = algorithm_identity(runner)
        if "nifti" in opts.formats:
            writes.append((safe_output_path(out, f"{case.name}_seg.nii.gz"), lambda p: write_nifti(label, p)))
        if probs is not None:
            writes.append((safe_output_path(out, f"{case.name}_probabilities.npz"),
                           lambda p: write_probabilities(probs, image, runner.labels, p)))
        if opts.stats == "json":
            writes.append((safe_output_path(out, f"{case.name}_stats.json"),
                           lambda p: write_stats_json(stats, p, case=case.name, image=image)))
        for gate, amap in attention.items():
            writes.append((safe_output_path(out, f"{case.name}_attention_{sanitize_name(gate, 'gate')}.nii.gz"),
                           lambda p, amap=amap: write_nifti(amap, p)))
        with contextlib.ExitStack() as stack:  # all temporaries complete (read back in full) before any rename
            for final, write in writes:
                write(stack.enter_context(atomic_path(final, verify=_verifier(final))))
        report.outputs = [p.name for p, _ in writes]
        report.warning = "; ".join(state.notes)
        if "dicomseg" in opts.formats and case.is_dicom:
            seg_path = safe_output_path(out, f"{case.name}_seg.dcm")
            try:
                with atomic_path(seg_path) as tmp:
                    write_dicom_seg(label, case.path, tmp, runner.labels, algorithm_name=ident[0],
                                    algorithm_version=ident[1], datasets=state.headers)
            except Exception as e:  # the NIfTI mask above stays: a SEG problem never costs the case its mask
                logger.debug("case %s: DICOM-SEG failed", case.name, exc_info=True)
                kept = f"; the NIfTI mask {report.outputs[0]} was written" if report.outputs else ""
                raise _SegFailed(f"{case.path}: DICOM-SEG not written: {type(e).__name__}: {e}{kept}") from None
            report.outputs.append(seg_path.name)
        logger.debug("case %s: read %.2f s, preprocessing %.2f s, network %.2f s (network grid %s), "
                     "postprocessing and back to source grid %.2f s, write %.2f s", case.name,
                     state.seconds["read"], state.seconds["preprocess"], state.seconds["network"],
                     "x".join(map(str, net_out.network_shape)), t_back - t0, time.perf_counter() - t_back)
    except Exception as e:  # a bad case is reported, the others go on
        _fail(state, e)
    state.image = state.headers = None
    state.seconds["write"] = time.perf_counter() - t0
    report.seconds = sum(state.seconds.values())
    return report


def run_case(runner: BundleRunner, case: Case, out_dir: str | os.PathLike, opts: InferenceOptions) -> CaseReport:
    """Run one case; never raises for a bad case (the error goes into the returned report).

    Returns:
        The case's :class:`~satgate_monai.infer.report.CaseReport` (``seconds``: the time its stages took).
    """
    out = Path(out_dir)
    return _write(runner, _network(runner, _prepare(runner, case, out, opts), opts), out, opts)


def _verifier(final: Path) -> Callable[[Path], None]:
    """Read a written temporary back in full; refuse it naming the final output (a writer may ignore a full disk)."""

    def verify(tmp: Path) -> None:
        try:
            _verify_output(tmp)
        except Exception as e:
            fault = str(e).split(": ", 1)[-1]
            raise OSError(f"{final} was not written completely ({fault}): is the disk full?") from None

    return verify


class _SegFailed(Exception):
    """The DICOM-SEG of a case could not be written (its NIfTI mask was)."""


def run_inference(runner: BundleRunner, input_path: str | os.PathLike, out_dir: str | os.PathLike,
                  opts: InferenceOptions | None = None, *, progress: bool = True,
                  command: Sequence[str] | None = None) -> list[CaseReport]:
    """Run every case under ``input_path`` and write outputs, ``report.csv`` and ``run.json`` into ``out_dir``.

    Args:
        runner: the loaded bundle.
        input_path: an image file, a DICOM series folder or a folder of cases.
        out_dir: output folder (created); must not lie inside the input.
        opts: formats, attention, overwrite, naming.
        progress: show a tqdm progress bar over cases (stderr).
        command: the command line recorded in ``run.json`` (default ``sys.argv``).

    Returns:
        One report per case (``report.csv`` gets each case's row as it finishes, and is compacted at the end).

    Raises:
        FileNotFoundError, ValueError: no input, nothing to run, or an output folder inside the input.
    """
    opts = opts or InferenceOptions()
    out = Path(out_dir)
    check_output_not_inside_input(out, [input_path])
    cases: Sequence[Case] = find_cases(input_path, name_from=opts.name_from)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    options = {"formats": list(opts.formats), "save_attention": opts.save_attention, "overwrite": opts.overwrite,
               "name_from": opts.name_from, "save_probabilities": opts.save_probabilities, "stats": opts.stats,
               "overlap": getattr(runner.inferer, "overlap", None), "input": str(input_path), "out": str(out)}
    runlog = RunLog(out, run_record(runner, command=command, options=options))
    reports: list[CaseReport] = []
    bar = tqdm(total=len(cases), desc=f"{runner.name}", unit="case", disable=not progress, dynamic_ncols=True)
    report_file = ReportAppender(out / REPORT_NAME)

    def record(case: Case, r: CaseReport) -> None:
        if r.status == "failed":
            logger.info("case %s failed: %s", case.name, r.error)  # the command line prints it once, at the end
        reports.append(r)
        report_file.add(r)
        if r.status != "skipped" or case.name not in runlog.cases:
            try:
                info = case_record(case.path, case.is_dicom, series_uid=r.extra.get("series"))
            except OSError as e:
                info = {"input": str(case.path), "digest_error": f"{type(e).__name__}: {e}"}
            runlog.add(case.name, {**info, "status": r.status, "outputs": r.outputs, "error": r.error})
        bar.update(1)

    try:
        if opts.prefetch and len(cases) > 1:
            _overlapped(runner, cases, out, opts, record, bar)
        else:
            for case in cases:
                bar.set_postfix_str(case.name)
                record(case, run_case(runner, case, out, opts))
    finally:
        bar.close()
        report_file.close()
    return reports


def _overlapped(runner: BundleRunner, cases: Sequence[Case], out: Path, opts: InferenceOptions,
                record: Callable[[Case, CaseReport], None], bar) -> None:
    """Run the cases with case i+1 read and preprocessed, and case i-1 postprocessed and written, in two background
    threads while the network runs case i; at most three cases are in memory. Reports are recorded in case order."""
    from concurrent.futures import Future, ThreadPoolExecutor

    reader = ThreadPoolExecutor(1, thread_name_prefix="satgate-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="satgate-write")
    try:
        upcoming: Future = reader.submit(_prepare, runner, cases[0], out, opts)
        pending: tuple[Case, Future] | None = None
        for i, case in enumerate(cases):
            state = upcoming.result()
            if i + 1 < len(cases):
                upcoming = reader.submit(_prepare, runner, cases[i + 1], out, opts)
            bar.set_postfix_str(case.name)
            state = _network(runner, state, opts)
            written = writer.submit(_write, runner, state, out, opts)
            del state
            if pending is not None:
                record(pending[0], pending[1].result())
            pending = (case, written)
        if pending is not None:
            record(pending[0], pending[1].result())
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
