"""``python -m data_prep import``: public datasets in their own layouts -> training-ready data + datalist + report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.commands import command_parser
from data_prep.errors import MAX_ERROR_CHARS, describe, one_line
from data_prep.tasks import TARGET_SPACING

__all__ = ["add_parser", "run"]

DATASETS = ("msd-liver", "msd-prostate", "lits", "isic2017")

DESCRIPTION = """\
Import a public dataset from the layout it is downloaded in (or a `python -m data_prep demo` phantom of it).

DATASETS (--dataset) and what --src must hold
  msd-liver     MSD Task03_Liver: imagesTr/liver_N.nii.gz, labelsTr/liver_N.nii.gz (labels 0/1/2), dataset.json;
                --src is Task03_Liver or its parent. Default: tumour merged into liver -> labels 0 background,
                1 liver (what the SAT paper segments); --keep-tumour keeps 0/1/2.
  msd-prostate  MSD Task05_Prostate: 4D images (x,y,z,2: channel 0 T2, 1 ADC), labels 1 PZ / 2 TZ. Default: T2
                only and PZ+TZ merged into one prostate label 1 (the paper's whole gland); --channels all keeps T2
                and ADC (4D output, channel last); --keep-zones keeps 1/2.
  lits          LiTS: volume-N.nii + segmentation-N.nii anywhere below --src (e.g. "Training Batch 1/",
                "Training Batch 2/"); cases named lits_N; labels as msd-liver (--keep-tumour).
  isic2017      ISIC 2017 Part 1: ISIC_XXXXXXX.jpg (e.g. ISIC-2017_Training_Data/) and
                ISIC_XXXXXXX_segmentation.png (e.g. ISIC-2017_Training_Part1_GroundTruth/) below --src, paired by
                id (superpixel png and metadata csv ignored). Each pair is resized to --size x --size keeping the
                aspect ratio: --resize pad (default) scales the longer side to --size and pads the shorter one
                with zeros, so no lesion pixel is lost; --resize crop scales the shorter side and centre-crops.
                Image bilinear, mask nearest then binarised (>127 -> 1).
  macOS "._*" files and other hidden files are ignored everywhere.

OUTPUTS (--out DIR)
  3D datasets: DIR/images/<case>.nii.gz, DIR/labels/<case>.nii.gz resampled to --spacing mm isotropic (images
  linear or B-spline, labels nearest; geometry validated and kept), as `python -m data_prep prepare`.
  isic2017: DIR/images/<id>.png (RGB uint8), DIR/labels/<id>.png (uint8 0/1).
  Both: DIR/datalist.json (MONAI decathlon style, seeded 70/15/15 train/validation/test split, paths relative to
  DIR, label names as above; with --folds K every training/validation entry also carries its seeded "fold") and
  DIR/report.csv (one row per case: status ok|failed|skipped, source size/spacing,
  output size, seconds, error).

ROBUSTNESS
  Worker processes with a progress bar; a bad case (unreadable file, image without label or mask, geometry mismatch)
  is reported in report.csv while the others finish, and the exit status is then 1. Missing or empty --src, or a
  folder that does not hold the dataset's layout: an error naming the folder and what was expected, exit status 2.
  Atomic writes, re-runs skip finished cases unless --overwrite, inputs never modified, --out inside --src refused.
"""


HELP = "import MSD liver/prostate, LiTS or ISIC 2017 from their downloaded layout"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "import", HELP, DESCRIPTION)
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which public dataset layout --src holds")
    p.add_argument("--src", required=True, type=Path, metavar="DIR", help="folder of the downloaded dataset")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (not inside --src)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo cases whose outputs already exist")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation/test split (default 0)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="also deal the training/validation cases into K seeded cross-validation folds (e.g. 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g3 = p.add_argument_group("3D datasets (msd-liver, msd-prostate, lits)")
    g3.add_argument("--spacing", type=float, default=None, metavar="MM",
                    help=f"isotropic output spacing (default {TARGET_SPACING})")
    g3.add_argument("--interpolation", choices=("linear", "bspline"), default=None,
                    help="image interpolation (default linear); labels always nearest")
    g3.add_argument("--compression-level", type=int, default=None, choices=range(10), metavar="{0..9}",
                    help="gzip level of the .nii.gz outputs (default 1)")
    g3.add_argument("--nonfinite", choices=("refuse", "zero"), default=None,
                    help="NaN/Inf image voxels: refuse the case (default) or replace them by 0 (report.csv says so)")
    g3.add_argument("--keep-tumour", action="store_true", help="msd-liver, lits: keep tumour as label 2")
    g3.add_argument("--keep-zones", action="store_true", help="msd-prostate: keep PZ (1) and TZ (2)")
    g3.add_argument("--channels", choices=("t2", "all"), default=None,
                    help="msd-prostate: t2 (default) or all (T2 + ADC)")
    g3.add_argument("--include-unlabelled", action="store_true",
                    help="msd-*: also prepare imagesTs (unlabelled, listed under test only)")
    g2 = p.add_argument_group("2D dataset (isic2017)")
    g2.add_argument("--size", type=int, default=None, metavar="N", help="output side in pixels (default 192)")
    g2.add_argument("--resize", choices=("pad", "crop"), default=None,
                    help="keep the aspect ratio by padding (default) or centre-cropping")
    return p


def _options(args: argparse.Namespace) -> dict:
    """Importer keyword arguments; options that do not apply to the chosen dataset are refused."""
    d = args.dataset
    applies = {
        "spacing": d != "isic2017",
        "interpolation": d != "isic2017",
        "compression_level": d != "isic2017",
        "keep_tumour": d in ("msd-liver", "lits"),
        "keep_zones": d == "msd-prostate",
        "channels": d == "msd-prostate",
        "include_unlabelled": d in ("msd-liver", "msd-prostate"),
        "nonfinite": d != "isic2017",
        "size": d == "isic2017",
        "resize": d == "isic2017",
    }
    kw: dict = {"workers": args.workers, "overwrite": args.overwrite, "seed": args.seed,
                "progress": not args.no_progress}
    if args.folds is not None:
        kw["folds"] = args.folds
    for key, ok in applies.items():
        value = getattr(args, key)
        if value is None or value is False:
            continue
        if not ok:
            raise ValueError(f"--{key.replace('_', '-')} does not apply to --dataset {d}")
        kw[key] = value
    return kw


def run(args: argparse.Namespace) -> int:
    from data_prep.importers import DATASETS as IMPORTERS

    try:
        kw = _options(args)
        return IMPORTERS[args.dataset](args.src, args.out, **kw)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {one_line(describe(e), MAX_ERROR_CHARS - 7)}", file=sys.stderr)
        return 2
