"""``python -m satgate_monai.nnunet plans``: a plans variant naming SATPlainConvUNet, beside nnU-Net's own plans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from satgate_monai.nnunet.__main__ import main
from satgate_monai.nnunet.plans import PLAIN_CONV_UNET, SAT_PLAIN_CONV_UNET, sat_plans
from tests.conftest import REPO_ROOT

ARCH_KWARGS = {"n_stages": 3, "features_per_stage": [32, 64, 128], "conv_op": "torch.nn.modules.conv.Conv3d",
               "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
               "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2], "conv_bias": True,
               "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
               "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
               "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}


def nnunet_plans() -> dict:
    """The shape of nnU-Net v2.8's nnUNetPlans.json (the fields the variant touches or must keep)."""
    arch = {"network_class_name": PLAIN_CONV_UNET, "arch_kwargs": ARCH_KWARGS,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}
    return {"dataset_name": "Dataset009_Blobs", "plans_name": "nnUNetPlans",
            "configurations": {
                "3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "batch_size": 2,
                               "patch_size": [16, 24, 24], "architecture": arch},
                "3d_lowres": {"data_identifier": "nnUNetPlans_3d_lowres", "architecture": arch},
                "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}}}


@pytest.fixture
def preprocessed(tmp_path) -> Path:
    folder = tmp_path / "Dataset009_Blobs"
    folder.mkdir()
    (folder / "nnUNetPlans.json").write_text(json.dumps(nnunet_plans()))
    return tmp_path


def test_variant_swaps_only_the_network(preprocessed):
    source = preprocessed / "Dataset009_Blobs" / "nnUNetPlans.json"
    before = source.read_bytes()
    assert main(["plans", "9", "--gate", "sat", "--preprocessed", str(preprocessed)]) == 0
    variant = json.loads((preprocessed / "Dataset009_Blobs" / "nnUNetPlans_SAT.json").read_text())
    assert source.read_bytes() == before  # nnU-Net's own plans are only read
    assert variant["plans_name"] == "nnUNetPlans_SAT"
    expected = nnunet_plans()
    for name, cfg in variant["configurations"].items():
        if "architecture" not in cfg:
            assert cfg == expected["configurations"][name]  # inherits the parent's network
            continue
        arch = cfg.pop("architecture")
        assert arch["network_class_name"] == SAT_PLAIN_CONV_UNET
        assert arch["arch_kwargs"] == {**ARCH_KWARGS, "skip_gate": "sat", "selection_init": "glorot"}
        assert arch["_kw_requires_import"] == ["conv_op", "norm_op", "dropout_op", "nonlin"]
        expected_cfg = dict(expected["configurations"][name])
        expected_cfg.pop("architecture")
        assert cfg == expected_cfg  # same data_identifier: trains on the data nnU-Net preprocessed


def test_gate_and_name_options(preprocessed, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_preprocessed", str(preprocessed))
    assert main(["plans", "Dataset009_Blobs", "--gate", "ORG"]) == 0
    org = json.loads((preprocessed / "Dataset009_Blobs" / "nnUNetPlans_ORG.json").read_text())
    assert org["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["skip_gate"] == "org"
    assert main(["plans", "009", "--selection-init", "0.5", "--name", "mine"]) == 0
    mine = json.loads((preprocessed / "Dataset009_Blobs" / "mine.json").read_text())
    assert mine["plans_name"] == "mine"
    assert mine["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["selection_init"] == 0.5


def test_other_networks_are_refused():
    plans = nnunet_plans()
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = \
        "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    with pytest.raises(ValueError, match="ResidualEncoderUNet"):
        sat_plans(plans, "sat")


@pytest.mark.parametrize("args, message", [
    (["plans", "12", "--gate", "sat"], "Dataset012_"),
    (["plans", "9", "--gate", "sta"], "sta"),
    (["plans", "9", "--selection-init", "2.0"], "2.0"),
    (["plans", "9", "--name", "nnUNetPlans"], "nnUNetPlans"),
])
def test_bad_input_is_one_line(preprocessed, capsys, args, message):
    assert main([*args, "--preprocessed", str(preprocessed)]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in (preprocessed / "Dataset009_Blobs").iterdir()) == ["nnUNetPlans.json"]


def test_command_line(preprocessed):
    """The module runs as a command: a missing dataset is one line and a non-zero exit; trainer-path prints the
    folder of the short trainers."""
    cmd = [sys.executable, "-m", "satgate_monai.nnunet"]
    proc = subprocess.run([*cmd, "plans", "12", "--preprocessed", str(preprocessed)], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Dataset012_" in proc.stderr, proc.stderr
    assert main(["trainer-path"]) == 0
    from satgate_monai.nnunet import __main__ as cli

    assert (Path(cli.__file__).parent / "trainers" / "satgate_nnunet_trainers.py").is_file()
