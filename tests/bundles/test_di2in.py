"""The liver bundle with SATDI2IN (``configs/di2in.json``) and deep supervision (``configs/deep_supervision.json``),
end to end on the liver demo phantoms: train, evaluate, infer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.losses import DeepSupervisionLoss

from satgate_monai.bundle import DEEP_SUPERVISION_OVERRIDES
from satgate_monai.networks.nets import SATDI2IN
from tests.bundles.helpers import COMMON, config_path, liver_demo_data

BUNDLE = "liver_ct_sat"
SMALL = {"roi_size": [16, 16, 16], "network_def#channels": [4, 8, 16], "num_samples": 1, "batch_size": 2}


def _files(*names: str) -> list[str]:
    return [str(config_path(BUNDLE, n)) for n in names]


def test_deep_supervision_config_is_the_package_dictionary():
    assert json.loads(config_path(BUNDLE, "deep_supervision").read_text()) == DEEP_SUPERVISION_OVERRIDES
    di2in = json.loads(config_path(BUNDLE, "di2in").read_text())["network_def"]
    assert di2in["_target_"] == "satgate_monai.networks.nets.SATDI2IN" and di2in["channels"] == [16, 32, 64, 128, 128]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The liver demo phantoms (synthetic), imported at 2 mm: 3 training, 1 validation, 1 test case."""
    return liver_demo_data(tmp_path_factory.mktemp("di2in"))


@pytest.mark.slow
def test_di2in_trains_evaluates_and_infers_on_demo_phantoms(demo_data, tmp_path):
    import nibabel as nib

    common = {**COMMON, **SMALL, "bundle_root": str(tmp_path), "dataset_dir": str(demo_data)}
    wf = ConfigWorkflow(config_file=_files("train", "di2in", "deep_supervision"),
                        meta_file=str(config_path(BUNDLE, "metadata")), logging_file=False, workflow_type="train",
                        epochs=1, **common)
    wf.initialize()
    assert isinstance(wf.parser.get_parsed_content("train#trainer").loss_function, DeepSupervisionLoss)
    wf.run()
    net = wf.parser.get_parsed_content("network")
    wf.finalize()
    assert isinstance(net, SATDI2IN) and len(net.branches) == 1
    for branch in net.branches:  # the side branch was trained through DeepSupervisionLoss
        grad = branch.conv.conv.weight.grad
        assert grad is not None and grad.abs().sum() > 0
    state = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert any(k.startswith("branches.") for k in state)

    evaluate = ConfigWorkflow(config_file=_files("train", "di2in", "evaluate"),
                              meta_file=str(config_path(BUNDLE, "metadata")), logging_file=False, **common)
    evaluate.initialize()
    evaluate.run()
    evaluate.finalize()
    rows = list(csv.DictReader((tmp_path / "eval" / "metrics.csv").open()))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["dice"]) <= 1.0

    infer = ConfigWorkflow(config_file=_files("inference", "di2in"), meta_file=str(config_path(BUNDLE, "metadata")),
                           logging_file=False, workflow_type="inference",
                           **{k: v for k, v in common.items() if k not in ("num_samples", "batch_size")})
    infer.initialize()
    infer.run()
    infer.finalize()
    (case,) = json.loads((demo_data / "datalist.json").read_text())["test"]
    name = case["image"].split("/")[-1].replace(".nii.gz", "")
    src = nib.load(demo_data / case["image"])
    out = nib.load(tmp_path / "predictions" / f"{name}_seg.nii.gz")
    assert out.shape == src.shape and np.allclose(out.affine, src.affine)


@pytest.mark.slow
def test_di2in_without_the_deep_supervision_config_fails_loudly(demo_data, tmp_path):
    """The list of outputs does not silently reach a single-output loss."""
    wf = ConfigWorkflow(config_file=_files("train", "di2in"), meta_file=str(config_path(BUNDLE, "metadata")),
                        logging_file=False, workflow_type="train", epochs=1,
                        **{**COMMON, **SMALL, "bundle_root": str(tmp_path), "dataset_dir": str(demo_data)})
    wf.initialize()
    with pytest.raises(RuntimeError):  # MONAI wraps the loss's AttributeError on a list input
        wf.run()
