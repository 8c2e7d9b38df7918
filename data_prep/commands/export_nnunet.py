"""``python -m data_prep export-nnunet``: a data_prep dataset in nnU-Net v2's raw format."""

from __future__ import annotations

import argparse
from pathlib import Path

from data_prep.commands import command_parser

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Write a data_prep dataset (PREPARED/datalist.json with its images/ and labels/: the demo phantoms, the semi-real
lesions, an imported public dataset) as OUT/DatasetXXX_NAME/ in nnU-Net v2's raw format: dataset.json,
imagesTr/<case>_0000.nii.gz (one file per channel), labelsTr/<case>.nii.gz; the datalist's test cases go to
imagesTs/labelsTs. Training and validation cases both become nnU-Net training cases (nnU-Net makes its own folds).
The folder appears complete or not at all; PREPARED is only read.

Then:  export nnUNet_raw=OUT; nnUNetv2_plan_and_preprocess -d ID -c 3d_fullres
"""

HELP = "write a data_prep dataset in nnU-Net v2's raw format (DatasetXXX_Name/dataset.json, imagesTr, labelsTr)"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "export-nnunet", HELP, DESCRIPTION)
    p.add_argument("--src", required=True, type=Path, metavar="PREPARED",
                   help="a data_prep dataset folder (holds datalist.json), or the datalist.json itself")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="nnU-Net's raw folder ($nnUNet_raw)")
    p.add_argument("--id", required=True, type=int, help="nnU-Net dataset id, 1-999")
    p.add_argument("--name", required=True, help="dataset name (DatasetXXX_NAME)")
    return p


def run(args: argparse.Namespace) -> int:
    from data_prep.atomic import check_output_not_inside_input
    from data_prep.nnunet_export import export_nnunet

    datalist = args.src if args.src.suffix == ".json" else args.src / "datalist.json"
    check_output_not_inside_input(args.out, [datalist.parent])
    folder = export_nnunet(datalist, args.out, args.id, args.name)
    print(f"wrote {folder}; then: nnUNet_raw={args.out} nnUNetv2_plan_and_preprocess -d {args.id} -c 3d_fullres")
    return 0
