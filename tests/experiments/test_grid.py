"""Grid construction, network definitions, cache bookkeeping and the cost formula (no training)."""

from __future__ import annotations

import json

import pytest

from satgate_monai.experiments.grid import build_grid, network_def_for, parse_list
from satgate_monai.experiments.runner import _consistency_warnings, estimate_seconds

BUNDLE_DEF = {"_target_": "satgate_monai.networks.nets.SATUNet", "spatial_dims": 2, "in_channels": 3,
              "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "kernel_size": 3, "act": "relu",
              "skip_gate": "sat", "init": "glorot"}


def test_network_defs_share_the_bundle_vocabulary():
    unet = network_def_for(BUNDLE_DEF, "unet", "org")
    assert unet == {**BUNDLE_DEF, "skip_gate": "org"}
    vnet = network_def_for(BUNDLE_DEF, "vnet", "at")
    assert vnet["_target_"].endswith("SATVNet") and vnet["channels"] == [4, 8, 16] and vnet["skip_gate"] == "at"
    assert "kernel_size" not in vnet and "act" not in vnet  # V-Net keeps its own 5x5 kernels and PReLU
    dense = network_def_for(BUNDLE_DEF, "fcdensenet", "sat")
    assert "channels" not in dense and dense["in_channels"] == 3
    peer = network_def_for({k: v for k, v in BUNDLE_DEF.items() if k != "strides"}, "attentionunet", None)
    assert peer == {"_target_": "monai.networks.nets.AttentionUnet", "spatial_dims": 2, "in_channels": 3,
                    "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2]}
    with pytest.raises(ValueError, match="unknown network"):
        network_def_for(BUNDLE_DEF, "resnet", "sat")


def test_grid_is_seed_major_and_validated():
    cells = build_grid(BUNDLE_DEF, ["unet"], ["org", "sat"], [0, 1], peers=["attentionunet"])
    assert [c.key for c in cells] == ["unet-org-s0", "unet-sat-s0", "attentionunet-ag-s0",
                                      "unet-org-s1", "unet-sat-s1", "attentionunet-ag-s1"]
    assert cells[2].is_peer and not cells[0].is_peer
    with pytest.raises(ValueError, match="unknown gate"):
        build_grid(BUNDLE_DEF, ["unet"], ["gat"], [0])
    assert parse_list("SAT, org,sat", ("org", "at", "st", "sat"), "gate") == ["sat", "org"]
    with pytest.raises(ValueError, match="unknown gate 'sta'"):
        parse_list("org,sta", ("org", "at", "st", "sat"), "gate")


def test_estimate_seconds_formula():
    # 10 training cases in batches of 4 -> 3 steps of 2 s; 2 validation cases x 0.5 s; 20 epochs; test 3 x 0.5 x 2
    assert estimate_seconds(10, 2, 3, epochs=20, batch_size=4, step_seconds=2.0, forward_seconds=0.5) == \
        pytest.approx(20 * (6.0 + 1.0) + 3.0 + 5.0)


def test_mixed_bundle_configs_are_reported(tmp_path):
    records = []
    for key, digest in (("unet-org-s0", "aaa"), ("unet-sat-s0", "aaa")):
        (tmp_path / "cells" / key).mkdir(parents=True)
        (tmp_path / "cells" / key / "settings.json").write_text(
            json.dumps({"settings": {"configs_sha256": digest}}))
        records.append({"key": key, "dir": f"cells/{key}"})
    assert _consistency_warnings(tmp_path, records) == []
    (tmp_path / "cells" / "unet-sat-s0" / "settings.json").write_text(json.dumps({"settings": {"configs_sha256": "b"}}))
    (warning,) = _consistency_warnings(tmp_path, records)
    assert "aaa: unet-org-s0" in warning and "b: unet-sat-s0" in warning
