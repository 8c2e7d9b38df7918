"""DI2IN in the experiment grid: its cells train with deep supervision through the liver bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satgate_monai.bundle import DEEP_SUPERVISION_OVERRIDES
from satgate_monai.experiments import cli
from satgate_monai.experiments.bundle_task import BundleTask
from satgate_monai.experiments.grid import build_grid
from tests.bundles.helpers import liver_demo_data
from tests.conftest import REPO_ROOT

BUNDLE = REPO_ROOT / "bundles" / "liver_ct_sat"


@pytest.fixture(scope="module")
def liver_data(tmp_path_factory) -> Path:
    """The liver demo phantoms (synthetic), imported at 2 mm: 3 training, 1 validation, 1 test case."""
    return liver_demo_data(tmp_path_factory.mktemp("liver"))


def test_only_deep_supervision_cells_get_the_loss_overrides(liver_data, tmp_path):
    task = BundleTask(BUNDLE, liver_data)
    cells = build_grid(task.bundle_network_def(), ["unet", "di2in"], ["sat"], [0])
    by_net = {c.network: task.cell_overrides(c, tmp_path / c.key) for c in cells}
    assert by_net["di2in"]["network_def"]["_target_"].endswith("SATDI2IN")
    assert all(by_net["di2in"][k] == v for k, v in DEEP_SUPERVISION_OVERRIDES.items())
    assert not set(DEEP_SUPERVISION_OVERRIDES) & set(by_net["unet"])
    cells[1].network_def["deep_supervision"] = False
    assert not set(DEEP_SUPERVISION_OVERRIDES) & set(task.cell_overrides(cells[1], tmp_path))


@pytest.mark.slow
def test_di2in_cell_runs_and_the_report_quotes_the_papers_liver_dice(liver_data, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--task", "liver", "--data", str(liver_data), "--out", str(out), "--networks", "di2in",
            "--gates", "sat", "--seeds", "1", "--epochs", "1", "--no-progress", "--bootstrap", "100",
            "--network-args", 'di2in={"channels": [4, 8, 16]}', "--override", "roi_size=[16,16,16]",
            "--override", "num_workers=0", "--override", "num_samples=1"]
    assert cli.main(args) == 0
    results = json.loads((out / "results.json").read_text())
    (cell,) = results["cells"]
    assert cell["target"] == "satgate_monai.networks.nets.SATDI2IN"
    assert [s["in_channels"] for s in cell["skips"]] == [4, 8]
    report = (out / "report.md").read_text()
    assert "| DI2IN | SAT | 0.96 |" in report  # the paper's liver Dice beside this run's
