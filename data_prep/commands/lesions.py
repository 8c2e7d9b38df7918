"""``python -m data_prep lesions``: semi-real lung lesion cases (real CT and tumour tissue, synthetic placement)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from data_prep.commands import command_parser

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Write semi-real lung lesion cases in the MSD Task03_Liver layout (OUT/Task03_Liver/{imagesTr,labelsTr}/liver_N.nii.gz
+ dataset.json), from the real chest CTs with tumour labels of `python -m data_prep samples` (pyradiomics 3.0.1:
lung1, lung2). Each case: a 2 mm crop (default 96 x 96 x 64 voxels) of lung1 or lung2 centred in the lung field,
the patient's own tumour labelled when in view, and 1-3 real tumours (lung1's or lung2's HU voxels and mask, random
flip / axial 90-degree rotation / scale 0.75-1.3) pasted where the lung field (HU < -400 inside the body, holes
filled) holds the whole mask, with a soft rim. Label 1 = tumour. Real anatomy and tumour tissue, synthetic placement:
not a clinical dataset. OUT/lesions.json names each case's patient and every lesion's donor and transform;
OUT/SEMIREAL_README.txt says what the data is. The same --seed gives the same cases; the samples are only read.
A rerun into the same OUT replaces its cases (an earlier run's extra cases are removed); an OUT whose
Task03_Liver/imagesTr or labelsTr holds files this command did not write is refused.

Then:  python -m data_prep import --dataset msd-liver --src OUT --out PREPARED
"""

HELP = "write semi-real lung lesion cases (real CT and tumours, synthetic placement) in the MSD Task03 layout"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "lesions", HELP, DESCRIPTION)
    p.add_argument("--samples", required=True, type=Path, metavar="DIR",
                   help="folder of `python -m data_prep samples` (lung1/lung2 _image/_label .nrrd)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output root folder")
    p.add_argument("--cases", type=int, default=24, metavar="N", help="number of cases (default 24)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--crop", type=int, nargs=3, default=None, metavar="N",
                   help="crop size X Y Z in 2 mm voxels (default 96 96 64)")
    p.add_argument("--lesions", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX"),
                   help="transplanted tumours per case, inclusive range (default 1 3)")
    return p


def run(args: argparse.Namespace) -> int:
    """Write the cases; bad arguments or missing samples raise (``python -m data_prep`` reports them in one line)."""
    from data_prep.atomic import check_output_not_inside_input
    from data_prep.phantoms.lesion_dataset import write_lung_lesions
    from data_prep.phantoms.lung_lesions import CROP_SHAPE

    if not args.samples.is_dir():
        raise FileNotFoundError(f"samples folder {args.samples} does not exist (fetch it with `python -m data_prep "
                                f"samples --out {args.samples}`)")
    check_output_not_inside_input(args.out, [args.samples])  # the samples are never written to
    t0 = time.perf_counter()
    path = write_lung_lesions(args.samples, args.out, args.cases, args.seed,
                              crop_shape=tuple(args.crop) if args.crop else CROP_SHAPE, lesions=tuple(args.lesions))
    print(f"wrote {args.cases} semi-real lung lesion case(s) to {path} in {time.perf_counter() - t0:.1f} s "
          "(real CT and tumour tissue, synthetic placement)")
    return 0
