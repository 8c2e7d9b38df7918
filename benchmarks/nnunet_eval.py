"""Dice, FPR and FNR of nnU-Net's predictions against the labels, one row per method, in the paper's Table 1 format
(the project's own metrics: ``satgate_monai.bundle.metrics.case_metrics`` per case, ``evaluation.summarise``).

Run in the project's environment::

    python benchmarks/nnunet_eval.py --labels "$nnUNet_raw/Dataset501_Lesions/labelsTs" \\
        SAT=pred/nnUNetPlans_SAT ORG=pred/nnUNetPlans

Each METHOD=DIR holds ``nnUNetv2_predict``'s ``<case>.nii.gz``; every label file must have its prediction. Foreground
is any label > 0, on the labels' own grid (nnU-Net writes its predictions on the input's grid).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from satgate_monai.bundle.evaluation import case_name, format_table1, summarise
from satgate_monai.bundle.metrics import case_metrics


def evaluate(pred_dir: Path, labels: Path) -> list[dict]:
    """Per-case metrics of every ``labels/<case>.nii.gz`` against ``pred_dir/<case>.nii.gz``.

    Raises:
        ValueError: a prediction is missing.
    """
    rows = []
    for label_path in sorted(labels.glob("*.nii.gz")):
        pred_path = pred_dir / label_path.name
        if not pred_path.is_file():
            raise ValueError(f"{pred_path}: no prediction for the label {label_path}")
        label = nib.load(label_path)
        pred = np.asarray(nib.load(pred_path).dataobj) > 0
        voxel_ml = float(np.prod(label.header.get_zooms()[:3])) * 1e-3
        rows.append({"case": case_name(label_path), **case_metrics(pred, np.asarray(label.dataobj) > 0, voxel_ml)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, required=True, help="folder of the reference <case>.nii.gz")
    parser.add_argument("methods", nargs="+", metavar="METHOD=DIR", help="a method's name and prediction folder")
    args = parser.parse_args()
    summaries = []
    for spec in args.methods:
        method, sep, folder = spec.partition("=")
        if not sep:
            parser.error(f"{spec}: expected METHOD=DIR")
        summaries.append(summarise(evaluate(Path(folder), args.labels), method=method))
    print(format_table1(summaries), end="")


if __name__ == "__main__":
    main()
