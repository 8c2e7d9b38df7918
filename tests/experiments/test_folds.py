"""The experiment runner's replicates as cross-validation folds instead of seeds."""

from __future__ import annotations

import json

from satgate_monai.experiments.bundle_task import BundleTask
from satgate_monai.experiments.grid import Cell
from tests.conftest import REPO_ROOT


def test_replicate_index_is_the_fold(tmp_path):
    (tmp_path / "datalist.json").write_text(json.dumps({"training": [], "validation": [], "test": [], "folds": 3}))
    bundle = REPO_ROOT / "bundles" / "skin_lesion_sat"
    cell = Cell(network="unet", gate="sat", seed=2, network_def={"_target_": "satgate_monai.networks.nets.SATUNet"})
    by_seed = BundleTask(bundle, tmp_path).cell_overrides(cell, tmp_path / "c")
    by_fold = BundleTask(bundle, tmp_path, use_folds=True).cell_overrides(cell, tmp_path / "c")
    assert "fold" not in by_seed and by_fold["fold"] == 2 and by_fold["seed"] == 2
    assert "folds" not in BundleTask(bundle, tmp_path).settings()
    assert BundleTask(bundle, tmp_path, use_folds=True).settings()["folds"] is True
