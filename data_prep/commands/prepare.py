"""``python -m data_prep prepare``: DICOM series / image files -> isotropic NIfTI, datalist.json and report.csv."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from data_prep.commands import command_parser
from data_prep.errors import MAX_ERROR_CHARS, describe, one_line
from data_prep.pipeline import DEFAULT_COMPRESSION_LEVEL, DEFAULT_SPACING, CaseSpec, prepare_cases
from data_prep.readers import IMAGE_SUFFIXES, discover_cases

__all__ = ["add_parser", "run", "build_cases"]

logger = logging.getLogger(__name__)

DESCRIPTION = f"""\
Read images (and optional labels), validate them, resample them to isotropic voxels and write training-ready NIfTI.

INPUTS (--images, --labels)
  PATH is an image file ({", ".join(IMAGE_SUFFIXES)}), a DICOM series folder (DICOM files at
  its top level), or a folder of cases: image files and/or sub-folders each holding one DICOM series (searched
  recursively). The case name is the file name without its suffix (ct_01.nii.gz -> ct_01) or the folder name.
  Labels pair with images by case name (a single label file pairs with a single image whatever their names);
  an image without a label is prepared unlabelled and listed only under "test".

OUTPUTS (--out DIR)
  DIR/images/<case>.nii.gz   image at --spacing mm, origin and direction of the source kept, intensities unchanged
                             (CT stays in HU: integer sources are rounded back to their type, float stays float32);
                             multi-channel sources (e.g. MSD prostate T2+ADC) are written 4D, channel last.
  DIR/labels/<case>.nii.gz   label on exactly the image's output grid, nearest neighbour (never fractional).
  DIR/datalist.json          MONAI decathlon style: name, description, labels, modality, spacing, numTraining,
                             training/validation/test lists (seeded split 70/15/15, at least one case in each when
                             there are 3 or more labelled cases; --folds K adds a seeded "fold" 0..K-1 to every
                             training/validation entry and "folds": K); paths relative to DIR, so
                             monai.data.load_decathlon_datalist(DIR/datalist.json, base_dir=DIR) resolves them.
  DIR/report.csv             per case: case, status (ok|failed|skipped), source_spacing, source_size,
                             source_orientation, output_size, seconds, error, warning (all-background label,
                             label lost on the output grid, non-finite voxels replaced).

GRID
  The output keeps the source origin (first voxel centre) and direction; its size per axis is
  floor((N-1)*spacing_in/spacing_out + 0.5) + 1, so every source voxel centre lies inside the output grid and a mask
  resampled back with nearest neighbour maps exactly. A label whose size/spacing/origin/direction differ from its
  image's is an error (no silent re-gridding).

DICOM
  Headers are validated before stacking; the case fails with an error naming the folder and the fault for: several
  image series in the folder that the selection rules cannot tell apart (default: original images first, so two
  original series are refused; --series-rules takes a bundle's rules; they are listed; pick one with --series UID, or
  make each its own case with --split-series), a missing slice, a duplicated slice
  position, non-uniform slice spacing, gantry tilt / sheared stacks, mixed orientations or matrix sizes, truncated
  or unreadable files, classic multi-frame files. Handled: slices in any file order (sorted along the slice normal),
  localizer/scout images (ImageType LOCALIZER, or a few slices with another orientation) excluded with a log line,
  SR/SEG/RTSTRUCT and other non-image objects ignored, per-slice RescaleSlope/Intercept applied per slice (float32
  output when they vary), enhanced multi-frame CT/MR read through their per-frame functional groups.

ROBUSTNESS
  Cases run in --workers processes with a progress bar. A failing case is recorded in report.csv while the others
  finish; the exit status is 1 if any case failed (2 for a usage error). Files are written atomically (hidden
  temporary file, then rename), so an interrupted run never leaves a partial .nii.gz; a re-run skips cases whose
  outputs exist at the requested spacing and read back in full (--overwrite redoes them). Inputs are never
  modified; an output folder inside an input folder is refused. Every file is validated first: a truncated or
  corrupt compressed stream, zero/negative spacing, a sheared direction, NaN/Inf voxels (--nonfinite zero replaces
  them) and label values outside --label-values fail the case with one line naming the file and the fault.
  A usage error is one line (error: ...), exit 2; Ctrl-C exits 130.

SPEED
  gzip dominates writing time: --compression-level 1 (default) is about 15x faster than 6 for files a few
  percent larger. Levels 1-3 are compressed with ISA-L, 3x (level 1) to 6x (level 3) faster than zlib at the
  same size; 0 stores uncompressed (.nii.gz still valid). Resampling runs in threads on the CPUs this process
  may use, divided among --workers. See benchmarks/prep.py.
"""


HELP = "validate and resample images (+labels) to isotropic NIfTI with datalist.json and report.csv"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "prepare", HELP, DESCRIPTION)
    p.add_argument("--images", required=True, type=Path, metavar="PATH",
                   help="image file, DICOM series folder, or folder of cases")
    p.add_argument("--labels", type=Path, metavar="PATH",
                   help="label file or folder of label files, paired with the images by case name (optional)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (must not be inside an input)")
    p.add_argument("--spacing", type=float, default=DEFAULT_SPACING, metavar="MM",
                   help=f"isotropic output spacing in mm (default {DEFAULT_SPACING})")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="prepare again cases whose outputs already exist")
    p.add_argument("--series", metavar="UID", default=None,
                   help="SeriesInstanceUID to use in DICOM folders that hold several series (a folder with a single "
                        "series uses it)")
    p.add_argument("--series-rules", type=Path, metavar="PATH", default=None,
                   help="series selection rules for DICOM folders holding several series: a rules JSON file, a "
                        "bundle's metadata.json or a bundle folder (its series_selection); see docs/pacs.md")
    p.add_argument("--split-series", action="store_true",
                   help="make each image series of a multi-series DICOM folder its own case, named "
                        "<case>_s<SeriesNumber> (instead of failing that case)")
    p.add_argument("--interpolation", choices=("linear", "bspline"), default="linear",
                   help="image interpolation (default linear; bspline = cubic B-spline); labels: nearest neighbour")
    p.add_argument("--compression-level", type=int, default=DEFAULT_COMPRESSION_LEVEL, choices=range(10),
                   metavar="{0..9}", help=f"gzip level of the .nii.gz outputs (default {DEFAULT_COMPRESSION_LEVEL})")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation/test split (default 0)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="also deal the training/validation cases into K seeded cross-validation folds (e.g. 5)")
    p.add_argument("--name", default="", help="dataset name written to datalist.json")
    p.add_argument("--description", default="", help="dataset description written to datalist.json")
    p.add_argument("--modality", default=None, metavar="NAME",
                   help='modality written to datalist.json, e.g. CT or MR (comma-separated per channel: "T2,ADC")')
    p.add_argument("--label-values", default=None, metavar="V,V,...",
                   help="the label values the task declares, e.g. 0,1,2: a label holding any other value fails its "
                        "case (default: any integer >= 0)")
    p.add_argument("--nonfinite", choices=("refuse", "zero"), default="refuse",
                   help="NaN/Inf image voxels: refuse the case (default) or replace them by 0 (report.csv's warning "
                        "column says how many)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _split_series(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(case name, series UID) for each image series of a DICOM folder with several; [(name, None)] otherwise."""
    from data_prep.dicom import list_series

    if not path.is_dir():
        return [(name, None)]
    found = [s for s in list_series(path) if not s.localizer_only]
    if len(found) < 2:
        return [(name, None)]
    out, used = [], set()
    for i, s in enumerate(sorted(found, key=lambda s: (s.number.zfill(6), s.uid))):
        sub = f"{name}_s{s.number or i + 1}"
        if sub in used:
            sub = f"{sub}_{i + 1}"
        used.add(sub)
        out.append((sub, s.uid))
    logger.info("%s: %d series split into cases %s", path, len(out), ", ".join(n for n, _ in out))
    return out


def build_cases(
    images: Path, labels: Path | None, series_uid: str | None = None, split_series: bool = False,
    series_rules: dict | None = None,
) -> list[CaseSpec]:
    """Pair images and labels by case name (``split_series``: one case per series of a multi-series DICOM folder).

    Raises:
        FileNotFoundError, ValueError: missing inputs, duplicated case names, nothing found.
    """
    image_cases = discover_cases(images)
    label_cases: dict[str, Path] = discover_cases(labels) if labels is not None else {}
    if labels is not None and len(image_cases) == 1 and len(label_cases) == 1 and Path(labels).is_file():
        label_cases = {next(iter(image_cases)): next(iter(label_cases.values()))}
    unused = sorted(set(label_cases) - set(image_cases))
    if unused:
        logger.warning("%d label(s) without an image, ignored: %s", len(unused), ", ".join(unused[:10]))
    if labels is not None:
        missing = sorted(set(image_cases) - set(label_cases))
        if missing:
            logger.warning("%d image(s) without a label, prepared unlabelled (test only): %s", len(missing),
                           ", ".join(missing[:10]))
    cases = []
    for name, path in image_cases.items():
        parts = _split_series(name, path) if split_series else [(name, None)]
        for sub, uid in parts:
            lab = label_cases.get(sub, label_cases.get(name) if len(parts) == 1 else None)
            cases.append(CaseSpec(sub, path, lab, series_uid=uid or series_uid, series_rules=series_rules))
    return cases


def run(args: argparse.Namespace) -> int:
    try:
        from data_prep.series_selection import load_rules

        rules = load_rules(args.series_rules) if args.series_rules is not None else None
        cases = build_cases(args.images, args.labels, args.series, args.split_series, rules)
        if args.label_values:
            declared = tuple(sorted({int(v) for v in args.label_values.split(",") if v.strip()}))
            cases = [replace(c, label_values=declared) for c in cases]
        modality = None
        if args.modality:
            modality = {str(i): m.strip() for i, m in enumerate(args.modality.split(","))}
        inputs = [args.images] + ([args.labels] if args.labels is not None else [])
        return prepare_cases(
            cases,
            args.out,
            spacing=args.spacing,
            workers=args.workers,
            overwrite=args.overwrite,
            interpolation=args.interpolation,
            compression_level=args.compression_level,
            seed=args.seed,
            folds=args.folds,
            modality=modality,
            name=args.name,
            description=args.description,
            inputs=inputs,
            progress=not args.no_progress,
            nonfinite=args.nonfinite,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {one_line(describe(e), MAX_ERROR_CHARS - 7)}", file=sys.stderr)
        return 2
