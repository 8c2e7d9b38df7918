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


def test_seeds_are_a_count_or_a_list_without_ambiguity():
    from satgate_monai.experiments.cli import build_parser, parse_seeds

    assert parse_seeds("3") == [0, 1, 2]  # one value without a comma: a count
    assert parse_seeds(["3"]) == [0, 1, 2]
    assert parse_seeds("0,5,7") == [0, 5, 7]  # a comma list: the seeds themselves
    assert parse_seeds("7,") == [7]  # a single explicit seed
    assert parse_seeds(["0", "1", "2"]) == [0, 1, 2]  # several values: the seeds themselves
    assert parse_seeds(["3", "9"]) == [3, 9]
    for bad in ("0", "-2", "a", "1,1", "1,-1", ","):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    base = ["run", "--task", "skin", "--data", "D", "--out", "O"]
    parser = build_parser()
    assert parser.parse_args(base).seeds == [0, 1, 2]
    assert parser.parse_args([*base, "--seeds", "2"]).seeds == [0, 1]
    assert parser.parse_args([*base, "--seeds", "4", "6", "--threads", "2"]).seeds == [4, 6]
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--seeds", "0"])


def test_thread_plan_defaults_to_one_thread_per_process(caplog):
    import torch

    from satgate_monai.experiments.threads import apply_threads, plan_threads

    assert plan_threads(cores=2) == (1, 1)
    assert plan_threads(jobs=0, cores=2) == (2, 1)  # one process per core, one thread each
    assert plan_threads(threads=4, cores=8) == (1, 4)
    with caplog.at_level("WARNING"):
        assert plan_threads(threads=2, jobs=2, cores=2) == (2, 2)
    assert "exceed the 2 available core(s)" in caplog.text
    for bad in ({"threads": 0}, {"jobs": -1}):
        with pytest.raises(ValueError):
            plan_threads(**bad, cores=2)
    before = torch.get_num_threads()
    try:
        apply_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_selection_args_reach_only_gates_with_selection():
    cells = build_grid(BUNDLE_DEF, ["unet", "vnet"], ["org", "at", "st", "sat"], [0],
                       selection_args={"selection_init": 1.0})
    gates = {(c.network, c.gate): c.network_def["skip_gate"] for c in cells}
    assert gates[("unet", "org")] == "org" and gates[("vnet", "at")] == "at"
    assert gates[("unet", "sat")] == ["sat", {"selection_init": 1.0}]
    assert gates[("vnet", "st")] == ["st", {"selection_init": 1.0}]
