"""Prepare a set of cases: read, validate, resample to isotropic voxels, write NIfTI, datalist and report.

This is the API the ``prepare`` command and the dataset importers share::

    from data_prep.pipeline import CaseSpec, prepare_cases
    cases = [CaseSpec("liver_3", Path("imagesTr/liver_3.nii.gz"), Path("labelsTr/liver_3.nii.gz"), label_map={2: 1})]
    exit_code = prepare_cases(cases, Path("prepared"), spacing=2.0, workers=2, labels={"0": "background", "1": "liver"},
                              modality={"0": "CT"}, name="liver")

It writes ``OUT/images/<case>.nii.gz``, ``OUT/labels/<case>.nii.gz`` (for cases with a label), ``OUT/datalist.json``
(:mod:`data_prep.datalist`) and ``OUT/report.csv`` (:mod:`data_prep.report`). Behaviour:

- each case runs in a worker process (``workers > 1``) or in-process; a failing case is recorded in the report with
  its error while the others go on; the return value is 1 if any case failed, else 0;
- every file is written atomically; a re-run skips a case whose outputs exist at the requested spacing, unless
  ``overwrite``; temporaries left by a killed run are removed at start;
- an output folder inside an input folder, or inputs inside ``OUT/images`` / ``OUT/labels``, are refused;
- every input goes through :mod:`data_prep.validation` (whole compressed stream, positive spacing, orthonormal
  direction, finite voxels: NaN/Inf refused unless ``nonfinite="zero"``, which the report's ``warning`` states);
- a label must lie in its image's physical space (size, spacing, origin, direction), hold integer values >= 0 among
  the case's declared ``label_values`` (when given), and is resampled by nearest neighbour onto exactly the image's
  output grid; an all-background label (or one whose foreground vanishes on the output grid) is written with a
  ``warning`` in the report.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.atomic import check_output_not_inside_input, remove_stale_temporaries
from data_prep.datalist import write_datalist
from data_prep.errors import describe, one_line
from data_prep.file_checks import check_file
from data_prep.folds import check_folds
from data_prep.progress import case_progress
from data_prep.readers import read_image
from data_prep.report import CaseResult, finish_run, format_tuple, read_report
from data_prep.resample import (
    INTERPOLATIONS,
    check_same_physical_space,
    default_threads,
    isotropic_grid,
    resample_image,
    resample_label,
)
from data_prep.tasks import TARGET_SPACING
from data_prep.validation import NONFINITE_POLICIES, check_label_values
from data_prep.writers import DEFAULT_COMPRESSION_LEVEL, write_nifti

__all__ = [
    "CaseSpec",
    "PrepareOptions",
    "prepare_cases",
    "process_case",
    "orientation_code",
    "DEFAULT_SPACING",
    "DEFAULT_COMPRESSION_LEVEL",
]

logger = logging.getLogger(__name__)

DEFAULT_SPACING = TARGET_SPACING
_BAD_NAME_CHARS = set('/\\:*?"<>|\0')


@dataclass(frozen=True)
class CaseSpec:
    """One case to prepare (picklable: sent to worker processes).

    Attributes:
        name: case name; outputs are ``images/<name>.nii.gz`` and ``labels/<name>.nii.gz``.
        image: image file or DICOM series folder.
        label: label file (same physical space as the image), or None for an unlabelled case.
        image_channel: pick this channel of a 4D or multi-component image (e.g. MSD prostate T2 = 0); None keeps all
            channels (written as a 4D NIfTI, channel last, like the MSD).
        label_map: remap label values before resampling, e.g. ``{2: 1}`` merges liver tumour into liver; values not
            in the map are kept.
        series_uid: SeriesInstanceUID to pick in a DICOM folder holding several series.
        label_values: the label values the task declares (e.g. ``(0, 1, 2)`` from an MSD ``dataset.json``), checked
            before ``label_map``; a label holding any other value fails the case. None: any integer >= 0.
        series_rules: series selection rules for such a folder (:mod:`data_prep.series_selection`; None: its
            default rules).
    """

    name: str
    image: Path
    label: Path | None = None
    image_channel: int | None = None
    label_map: dict[int, int] | None = None
    series_uid: str | None = None
    label_values: tuple[int, ...] | None = None
    series_rules: dict | None = None


@dataclass(frozen=True)
class PrepareOptions:
    """Options shared by all cases of a run (see :func:`prepare_cases`)."""

    spacing: float = DEFAULT_SPACING
    interpolation: str = "linear"
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    overwrite: bool = False
    threads: int = 1
    nonfinite: str = "refuse"


def orientation_code(image: sitk.Image) -> str:
    """DICOM-style orientation code of the first three axes (e.g. ``LPS``), ``+oblique`` if not axis-aligned."""
    dim = image.GetDimension()
    d = np.array(image.GetDirection()).reshape(dim, dim)[:3, :3] if dim >= 3 else None
    if d is None:
        d2 = np.array(image.GetDirection()).reshape(dim, dim)
        oblique = not np.allclose(np.abs(d2), np.round(np.abs(d2)), atol=1e-4)
        return "2D" + ("+oblique" if oblique else "")
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(d.ravel().tolist())
    oblique = not np.allclose(np.abs(d), np.round(np.abs(d)), atol=1e-4)
    return code + ("+oblique" if oblique else "")


def _spatial(image: sitk.Image) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Spatial size and spacing (a 4D image's last axis is channels)."""
    size, spacing = image.GetSize(), image.GetSpacing()
    if image.GetDimension() == 4:
        return size[:3], spacing[:3]
    return size, spacing


def _split_channels(image: sitk.Image, channel: int | None, what: str) -> list[sitk.Image]:
    """A 4D (x, y, z, c) or multi-component image -> list of scalar 3D images (one if ``channel`` is given)."""
    ncomp = image.GetNumberOfComponentsPerPixel()
    if ncomp > 1:
        n = ncomp
        def pick(c):
            return (sitk.VectorIndexSelectionCast(image, c))
    elif image.GetDimension() == 4:
        n = image.GetSize()[3]
        size = list(image.GetSize()[:3]) + [0]
        def pick(c):
            return (sitk.Extract(image, size, [0, 0, 0, c], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX))
    else:
        n = 1
        def pick(c):
            return (image)
    if image.GetDimension() > 4:
        raise ValueError(f"{what}: {image.GetDimension()}D images are not supported")
    if channel is not None:
        if not 0 <= channel < n:
            raise ValueError(f"{what}: image_channel={channel} but the image has {n} channel(s)")
        return [pick(channel)]
    return [pick(c) for c in range(n)]


def _check_label(label: sitk.Image, what: str) -> None:
    """A label must be one scalar channel (its values: :func:`~data_prep.validation.check_label_values`)."""
    if label.GetNumberOfComponentsPerPixel() != 1 or label.GetDimension() == 4:
        raise ValueError(f"label {what} must be a single-channel image, got {label.GetDimension()}D with "
                         f"{label.GetNumberOfComponentsPerPixel()} component(s)")


def _finish_label(label: sitk.Image, label_map: Mapping[int, int] | None) -> sitk.Image:
    """Apply ``label_map`` and cast to the smallest unsigned type (done after nearest-neighbour resampling, which
    commutes with any value mapping, so it runs on the small output)."""
    arr = sitk.GetArrayFromImage(label)
    out = arr.astype(np.int64)
    if label_map:
        for src, dst in label_map.items():
            if int(src) < 0 or int(dst) < 0:
                raise ValueError(f"label_map values must be >= 0, got {src}->{dst}")
        lut_max = int(max(out.max(initial=0), max(int(k) for k in label_map)))
        lut = np.arange(lut_max + 1, dtype=np.int64)
        for src, dst in label_map.items():
            lut[int(src)] = int(dst)
        out = lut[out]
    vmax = int(out.max(initial=0))
    dtype = np.uint8 if vmax < 256 else np.uint16 if vmax < 65536 else np.uint32
    res = sitk.GetImageFromArray(out.astype(dtype))
    res.CopyInformation(label)
    return res


def _existing_output_ok(path: Path, spacing: float) -> tuple[bool, str]:
    """Is ``path`` a complete output at ``spacing``? Returns (ok, output size string)."""
    if not path.is_file():
        return False, ""
    try:
        check_file(path)  # the whole stream: an unreadable or cut output is prepared again, never kept as done
    except ValueError as e:
        logger.warning("%s is not a complete output (%s): preparing it again", path, e)
        return False, ""
    try:
        r = sitk.ImageFileReader()
        r.SetFileName(str(path))
        r.ReadImageInformation()
    except RuntimeError:
        return False, ""
    dim = 3 if r.GetDimension() >= 3 else r.GetDimension()
    sp = r.GetSpacing()[:dim]
    if not np.allclose(sp, spacing, rtol=1e-5):
        logger.warning("%s has spacing %s, not %s: preparing it again", path, sp, spacing)
        return False, ""
    return True, format_tuple(r.GetSize())


def _read_label(spec: CaseSpec, image: sitk.Image, notes: list[str]) -> tuple[sitk.Image, list[int]]:
    """The case's label, checked against the image's physical space (its exact geometry copied on) and the task's
    label values; returns ``(label, values found)``, noting an all-background label in ``notes``."""
    label = read_image(spec.label, what="label")
    _check_label(label, str(spec.label))
    found = check_label_values(sitk.GetArrayViewFromImage(label), spec.label_values, spec.label)
    if found == [0]:
        notes.append("label is all background (no foreground voxel)")
    check_same_physical_space(image, label, image_name=str(spec.image), label_name=str(spec.label))
    label.CopyInformation(image)  # identical within tolerance: use the image's exact geometry
    return label, found


def process_case(spec: CaseSpec, out_dir: str | os.PathLike, options: PrepareOptions) -> CaseResult:
    """Prepare one case; never raises for a bad case (the error goes into the returned row).

    Args:
        spec: the case.
        out_dir: output folder (``images/`` and ``labels/`` are created in it).
        options: run options.

    Returns:
        The case's :class:`~data_prep.report.CaseResult` (status ``ok``, ``skipped`` or ``failed``).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    img_rel = f"images/{spec.name}.nii.gz"
    lab_rel = f"labels/{spec.name}.nii.gz" if spec.label is not None else ""
    row = CaseResult(case=spec.name, status="failed", image=img_rel, label=lab_rel)
    try:
        if not options.overwrite:
            ok_img, size = _existing_output_ok(out / img_rel, options.spacing)
            ok_lab = (not lab_rel) or _existing_output_ok(out / lab_rel, options.spacing)[0]
            if ok_img and ok_lab:
                row.status, row.output_size = "skipped", size
                row.seconds = time.perf_counter() - t0
                return row
        notes: list[str] = []
        image = read_image(spec.image, series_uid=spec.series_uid, rules=spec.series_rules,
                           nonfinite=options.nonfinite, notes=notes)
        size, spacing = _spatial(image)
        row.source_size, row.source_spacing = format_tuple(size), format_tuple(spacing)
        channels = _split_channels(image, spec.image_channel, f"image {spec.image}")
        row.source_orientation = orientation_code(channels[0])
        label, found = _read_label(spec, channels[0], notes) if spec.label is not None else (None, [])
        grid = isotropic_grid(channels[0], options.spacing)
        resampled = [
            resample_image(c, grid=grid, interpolation=options.interpolation, threads=options.threads)
            for c in channels
        ]
        out_img = resampled[0] if len(resampled) == 1 else sitk.JoinSeries(resampled)
        if label is not None:
            out_lab = _finish_label(resample_label(label, grid=grid), spec.label_map)
            if found != [0] and not sitk.GetArrayViewFromImage(out_lab).any():
                notes.append(f"the label's foreground vanished on the {options.spacing:g} mm output grid")
            write_nifti(out_lab, out / lab_rel, options.compression_level)
        write_nifti(out_img, out / img_rel, options.compression_level)
        row.output_size = format_tuple(out_img.GetSize())
        row.status = "ok"
        row.warning = "; ".join(notes)
    except Exception as e:
        logger.debug("case %s failed:\n%s", spec.name, traceback.format_exc())
        row.status = "failed"
        row.error = one_line(describe(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}")
        logger.error("case %s failed: %s", spec.name, row.error)
    row.seconds = time.perf_counter() - t0
    return row


def _check_cases(cases: Sequence[CaseSpec]) -> None:
    if not cases:
        raise ValueError("no cases to prepare")
    seen: dict[str, CaseSpec] = {}
    for c in cases:
        if not isinstance(c, CaseSpec):
            raise ValueError(f"expected CaseSpec, got {type(c).__name__}")
        if not c.name or c.name.startswith(".") or _BAD_NAME_CHARS & set(c.name):
            raise ValueError(f"invalid case name {c.name!r}: no path separators, no leading dot")
        if c.name in seen:
            raise ValueError(f"case name {c.name!r} is used twice: {seen[c.name].image} and {c.image}")
        seen[c.name] = c


def _label_names(out: Path, rows: Sequence[CaseResult]) -> dict[str, str]:
    values: set[int] = set()
    for r in rows:
        if r.label and r.status in ("ok", "skipped"):
            arr = sitk.GetArrayFromImage(sitk.ReadImage(str(out / r.label)))
            values.update(int(v) for v in np.unique(arr))
    values.add(0)
    return {str(v): ("background" if v == 0 else f"label{v}") for v in sorted(values)}


def prepare_cases(
    cases: Sequence[CaseSpec],
    out_dir: str | os.PathLike,
    *,
    spacing: float = DEFAULT_SPACING,
    workers: int = 1,
    overwrite: bool = False,
    interpolation: str = "linear",
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
    seed: int = 0,
    folds: int | None = None,
    labels: Mapping[str, str] | None = None,
    modality: Mapping[str, str] | None = None,
    name: str = "",
    description: str = "",
    inputs: Sequence[str | os.PathLike] | None = None,
    progress: bool = True,
    nonfinite: str = "refuse",
) -> int:
    """Prepare ``cases`` into ``out_dir``; return the exit code (0: all ok or skipped, 1: any case failed).

    Args:
        cases: the cases (unique names).
        out_dir: output folder (created).
        spacing: isotropic output spacing in mm (default :data:`data_prep.tasks.TARGET_SPACING`, 2 mm).
        workers: worker processes (1: in this process).
        overwrite: prepare again cases whose outputs exist.
        interpolation: image interpolation, ``"linear"`` or ``"bspline"``; labels always nearest neighbour.
        compression_level: gzip level 0-9 of the ``.nii.gz`` outputs (default 1: fast, a few % larger than 6).
        seed: train/validation/test split seed.
        folds: ``None`` (one split) or ``k >= 2`` seeded cross-validation folds in the datalist.
        labels: label value -> name for the datalist (default: ``background``, ``label1``... from the data).
        modality: channel -> modality for the datalist (default ``{"0": "unknown"}``...).
        name: dataset name in the datalist.
        description: dataset description in the datalist.
        inputs: input paths to protect (default: every case's image and label); the output folder may not lie
            inside any of them.
        progress: show a tqdm progress bar on stderr.
        nonfinite: NaN/Inf image voxels: ``"refuse"`` the case (default) or ``"zero"`` (replaced by 0, and the
            report's ``warning`` says how many).

    Returns:
        0 if every case is ok or skipped, 1 if any failed.

    Raises:
        ValueError: bad options, no cases, duplicated or invalid case names, output folder inside an input.
    """
    _check_cases(cases)
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    if not (isinstance(spacing, (int, float)) and math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a positive number of mm, got {spacing!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if not isinstance(compression_level, int) or not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must be an integer 0-9, got {compression_level!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if folds is not None:
        check_folds(folds, len(cases))
    out = Path(out_dir)
    protect = list(inputs) if inputs is not None else [p for c in cases for p in (c.image, c.label) if p is not None]
    check_output_not_inside_input(out, protect, protected_subdirs=("images", "labels"))
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out / sub)
    remove_stale_temporaries(out)
    workers = min(workers, len(cases))
    opts = PrepareOptions(float(spacing), interpolation, compression_level, overwrite,
                          threads=max(1, default_threads() // workers), nonfinite=nonfinite)
    previous = {r.case: r for r in read_report(out / "report.csv")}
    rows: list[CaseResult] = []
    bar = case_progress(len(cases), "prepare", progress)
    try:
        if workers == 1:
            for c in cases:
                rows.append(process_case(c, out, opts))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                pending = {pool.submit(process_case, c, out, opts): c for c in cases}
                try:
                    while pending:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            c = pending.pop(f)
                            try:
                                rows.append(f.result())
                            except Exception as e:
                                rows.append(CaseResult(case=c.name, status="failed",
                                                       error=f"worker process failed: {type(e).__name__}: {e}"))
                            bar.update(1)
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    for i, r in enumerate(rows):
        prev = previous.get(r.case)
        if r.status == "skipped" and prev is not None and prev.status in ("ok", "skipped"):
            rows[i] = replace(r, source_spacing=prev.source_spacing, source_size=prev.source_size,
                              source_orientation=prev.source_orientation)
    good = [r for r in rows if r.status in ("ok", "skipped")]
    dims = {_output_dim(out / r.image) for r in good[:1]}
    if good:
        n_channels = _n_channels(out / good[0].image)
        write_datalist(
            out,
            [{"image": r.image, "label": r.label or None} for r in good],
            seed,
            name=name,
            description=description,
            labels=labels or _label_names(out, good),
            modality=modality or {str(c): "unknown" for c in range(n_channels)},
            spacing=float(spacing),
            tensor_image_size=f"{dims.pop()}D",
            folds=folds,
        )
    return finish_run(out, rows, "prepared")


def _header(path: Path) -> sitk.ImageFileReader:
    r = sitk.ImageFileReader()
    r.SetFileName(str(path))
    r.ReadImageInformation()
    return r


def _output_dim(path: Path) -> int:
    """Spatial dimension of an output (a 4D output is 3D + channels)."""
    return min(_header(path).GetDimension(), 3)


def _n_channels(path: Path) -> int:
    r = _header(path)
    return r.GetSize()[3] if r.GetDimension() == 4 else r.GetNumberOfComponents()


