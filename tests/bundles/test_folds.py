"""k-fold cross-validation: data_prep's seeded fold assignment, load_datalist(fold=...), per-fold bundle training
and the cross-validated evaluation summary."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from monai.bundle import run as bundle_run_inprocess

from data_prep.datalist import write_datalist
from data_prep.folds import assign_folds
from satgate_monai.bundle import load_datalist
from tests.bundles.helpers import COMMON, TINY, config_path
from tests.bundles.synthetic import make_dataset


def test_assign_folds_is_seeded_balanced_and_order_free():
    names = [f"c{i:02d}" for i in range(11)]
    a = assign_folds(names, 5, seed=3)
    assert a == assign_folds(list(reversed(names)), 5, seed=3)
    assert sorted(Counter(a.values()).values()) == [2, 2, 2, 2, 3]
    assert a != assign_folds(names, 5, seed=4)
    with pytest.raises(ValueError, match="folds=12"):
        assign_folds(names, 12, seed=0)
    with pytest.raises(ValueError, match="folds must be an integer >= 2, got 1"):
        assign_folds(names, 1, seed=0)


def _entries(n: int) -> list[dict]:
    return [{"image": f"images/c{i:02d}.nii.gz", "label": f"labels/c{i:02d}.nii.gz"} for i in range(n)]


def test_datalist_with_folds_keeps_the_test_split(tmp_path):
    plain = json.loads(write_datalist(tmp_path / "a", _entries(20), seed=1).read_text())
    folded = json.loads(write_datalist(tmp_path / "b", _entries(20), seed=1, folds=5).read_text())
    assert folded["test"] == plain["test"] and folded["folds"] == 5 and "folds" not in plain
    pool = folded["training"] + folded["validation"]
    assert sorted(e["image"] for e in pool) == sorted(e["image"] for e in plain["training"] + plain["validation"])
    assert {e["fold"] for e in folded["validation"]} == {0} and 0 not in {e["fold"] for e in folded["training"]}
    assert Counter(e["fold"] for e in pool) == Counter(assign_folds([e["image"] for e in pool], 5, seed=1).values())


def test_load_datalist_by_fold(tmp_path):
    data = make_dataset(tmp_path / "data", "skin", n_train=3, n_val=1, n_test=1, size=16)
    doc = json.loads((data / "datalist.json").read_text())
    entries = doc["training"] + doc["validation"] + doc["test"]
    write_datalist(data, entries, seed=0, fractions=(0.6, 0.2, 0.2), folds=2, tensor_image_size="2D")
    folded = json.loads((data / "datalist.json").read_text())
    pool = {e["image"]: e["fold"] for e in folded["training"] + folded["validation"]}
    for f in (0, 1):
        val = load_datalist(data, "validation", fold=f)
        train = load_datalist(data, "training", fold=f)
        assert sorted(x["image"] for x in val) == sorted(str(data / i) for i, k in pool.items() if k == f)
        assert sorted(x["image"] for x in train) == sorted(str(data / i) for i, k in pool.items() if k != f)
    with pytest.raises(ValueError, match="fold must be in 0..1"):
        load_datalist(data, "training", fold=2)
    write_datalist(data, entries, seed=0)
    with pytest.raises(ValueError, match="has no cross-validation folds"):
        load_datalist(data, "training", fold=0)


@pytest.mark.slow
def test_two_fold_training_and_crossvalidated_evaluation(tmp_path):
    bundle = "skin_lesion_sat"
    data = make_dataset(tmp_path / "data", "skin", n_train=3, n_val=1, n_test=1, size=40)
    doc = json.loads((data / "datalist.json").read_text())
    write_datalist(data, doc["training"] + doc["validation"] + doc["test"], seed=0, fractions=(0.6, 0.2, 0.2),
                   folds=2, tensor_image_size="2D")
    root = tmp_path / "bundle"
    common = {**COMMON, **TINY[bundle], "bundle_root": str(root), "dataset_dir": str(data)}
    files = [str(config_path(bundle, "train")), str(config_path(bundle, "evaluate"))]
    for fold in (0, 1):
        bundle_run_inprocess(config_file=files[0], meta_file=str(config_path(bundle, "metadata")), epochs=1,
                             fold=fold, **common)
        assert (root / "models" / f"fold{fold}" / "model.pt").is_file()
        assert (root / "eval" / f"fold{fold}" / "tensorboard").is_dir()
        bundle_run_inprocess(config_file=files, meta_file=str(config_path(bundle, "metadata")), fold=fold,
                             eval_split="validation", **common)
        assert (root / "eval" / f"fold{fold}" / "validation_metrics.csv").is_file()
    assert not (root / "models" / "model.pt").exists()
    cv = json.loads((root / "eval" / "crossval_validation.json").read_text())
    assert cv["folds"] == [0, 1]
    n = {f: cv["per_fold"][str(f)]["n_cases"] for f in (0, 1)}
    assert n[0] + n[1] == cv["pooled"]["n_cases"] == 4
    assert 0 <= cv["pooled"]["dice"]["mean"] <= 1
    table = (root / "eval" / "crossval_validation.md").read_text()
    assert "| fold 0 |" in table and "| fold 1 |" in table and "| pooled (2 folds) |" in table
    # the post-processing choice is made on the pooled validation cases of both folds
    choice = json.loads((root / "eval" / "postprocessing.json").read_text())
    assert choice["n_cases"] == 4 and set(choice["mean_dice"]["1"]) == {"none", "keep_largest_component",
                                                                        "fill_holes", "both"}
    assert "folds [0, 1]" in choice["source"]
