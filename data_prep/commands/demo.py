"""``python -m data_prep demo``: write phantom datasets in the public datasets' layouts (NOT patient data)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from data_prep.commands import command_parser
from data_prep.tasks import TASKS, get_task

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Write a synthetic phantom dataset (NOT patient data) in exactly the on-disk layout of the public dataset, so that
`python -m data_prep import` reads it like the real download:

  --task liver     DIR/Task03_Liver/{imagesTr,labelsTr,imagesTs}/liver_N.nii.gz + dataset.json (MSD Task03):
                   abdominal CT in HU (int16), 200x200x52 voxels of 0.8x0.8x2.5 mm (LPS, as MSD files), labels
                   0 background / 1 liver / 2 cancer; body wall, fat, bowel, spleen, kidneys, pancreas, heart,
                   lungs, vessels, spine and ribs, lesions, correlated noise; liver-like HU on the distractors.
                   Default 12 training cases (+2 in imagesTs).
  --task prostate  DIR/Task05_Prostate/... prostate_NN.nii.gz (MSD Task05): 4D (x,y,z,2) T2 + ADC,
                   192x192x18 voxels of 0.625x0.625x3.6 mm, labels 0 / 1 PZ / 2 TZ; bladder, rectum, seminal
                   vesicles, pelvic bones and muscles, coil bias field, Rician noise. Default 12 (+2) cases.
  --task skin      DIR/ISIC-2017_Training_Data/ISIC_XXXXXXX.jpg (+ _superpixels.png, metadata csv) and
                   DIR/ISIC-2017_Training_Part1_GroundTruth/ISIC_XXXXXXX_segmentation.png (0/255): about
                   256x192 RGB (size and aspect vary), irregular lesion, colour variation, hair, ruler marks,
                   vignetting, freckles. Default 24 images.

DIR/PHANTOM_README.txt says what the data is; NIfTI headers carry "satgate-monai phantom" in descrip and
dataset.json says "synthetic phantom ... not patient data" in description/reference/licence.
Case i depends only on (--seed, task, i): the same seed gives byte-identical files, whatever --cases or --workers.
A re-run keeps files already present (an interrupted run resumes) unless --overwrite; a folder written with other
parameters is refused unless --overwrite.

Then, e.g.:  python -m data_prep import --dataset msd-liver --src DIR/Task03_Liver --out PREPARED
"""


HELP = "write phantom datasets (CT liver, MR prostate, skin) in the MSD / ISIC 2017 layouts (not patient data)"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "demo", HELP, DESCRIPTION)
    p.add_argument("--task", required=True, choices=tuple(TASKS), help="which phantom dataset")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output root folder")
    p.add_argument("--cases", type=int, default=None, metavar="N",
                   help="number of labelled cases (default 12 for liver/prostate, 24 for skin)")
    p.add_argument("--test-cases", type=int, default=2, metavar="N",
                   help="unlabelled cases in imagesTs for liver/prostate, as the MSD has (default 2)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--shape", type=int, nargs="+", default=None, metavar="N",
                   help="volume size X Y Z (liver/prostate) or base image size H W (skin); default: the sizes above")
    p.add_argument("--spacing", type=float, nargs=3, default=None, metavar="MM",
                   help="voxel size X Y Z in mm (liver/prostate; default: the spacings above)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="regenerate files that already exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from data_prep.phantoms import write_phantom_dataset

    kwargs: dict = {"workers": args.workers, "overwrite": args.overwrite, "progress": not args.no_progress}
    if get_task(args.task).spatial_dims == 2:
        if args.spacing is not None:
            raise ValueError(f"--spacing does not apply to --task {args.task} (2D images)")
        if args.shape is not None:
            if len(args.shape) != 2:
                raise ValueError(f"--shape for {args.task} is H W, got {args.shape}")
            kwargs["size"] = tuple(args.shape)
    else:
        kwargs["test_cases"] = args.test_cases
        if args.shape is not None:
            if len(args.shape) != 3:
                raise ValueError(f"--shape for {args.task} is X Y Z, got {args.shape}")
            kwargs["shape"] = tuple(args.shape)
        if args.spacing is not None:
            if min(args.spacing) <= 0:
                raise ValueError(f"--spacing must be positive, got {args.spacing}")
            kwargs["spacing"] = tuple(args.spacing)
    t0 = time.perf_counter()
    path = write_phantom_dataset(args.task, args.out, args.cases, args.seed, **kwargs)
    print(f"wrote the {args.task} phantom dataset to {path} in {time.perf_counter() - t0:.1f} s "
          "(synthetic phantom, not patient data)")
    return 0
