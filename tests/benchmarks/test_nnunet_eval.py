"""benchmarks/nnunet_eval.py: nnU-Net prediction folders scored with the project's Dice/FPR/FNR, case by case."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.benchmarks.loader import load_benchmark


@pytest.fixture(scope="module")
def nnunet_eval():
    return load_benchmark("nnunet_eval")


def _save(array, path):
    nib.save(nib.Nifti1Image(array.astype(np.uint8), np.diag([2.0, 2.0, 2.0, 1.0])), str(path))


def test_scores_each_case_against_its_own_label(nnunet_eval, tmp_path):
    labels, pred = tmp_path / "labels", tmp_path / "pred"
    labels.mkdir()
    pred.mkdir()
    a = np.zeros((4, 4, 4))
    a[:2] = 1  # 32 voxels
    b = np.zeros((4, 4, 4))
    b[:, :1] = 1  # 16 voxels
    _save(a, labels / "case_a.nii.gz")
    _save(b, labels / "case_b.nii.gz")
    _save(a, pred / "case_a.nii.gz")  # exact
    _save(np.zeros((4, 4, 4)), pred / "case_b.nii.gz")  # all missed
    rows = {r["case"]: r for r in nnunet_eval.evaluate(pred, labels)}
    assert rows["case_a"]["dice"] == 1.0 and rows["case_a"]["fnr"] == 0.0
    assert rows["case_b"]["dice"] == 0.0 and rows["case_b"]["fnr"] == 1.0 and rows["case_b"]["fpr"] == 0.0
    assert rows["case_a"]["label_volume"] == pytest.approx(32 * 8e-3)  # mL of 2 mm voxels


def test_a_missing_prediction_is_named(nnunet_eval, tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "pred").mkdir()
    _save(np.ones((2, 2, 2)), tmp_path / "labels" / "case_a.nii.gz")
    with pytest.raises(ValueError, match="case_a.nii.gz"):
        nnunet_eval.evaluate(tmp_path / "pred", tmp_path / "labels")
