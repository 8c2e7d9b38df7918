"""The MONAI Label app and the inference CLI run a 3D bundle through the same case engine: the same mask for the same
image and checkpoint (a random tiny SATUNet, whose speckled labels show any difference, with the bundle's chosen
keep-largest-component step)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from tests.conftest import REPO_ROOT
from tests.infer.helpers import rotation
from tests.label.client import label_python, project_env
from tests.sample_data import pyradiomics_samples  # noqa: F401  (session fixture)


def _bundle(tmp_path: Path) -> Path:
    """The liver bundle with a tiny SATUNet (random weights, seed 0) and 32^3 windows, keep-largest-component on."""
    from monai.bundle import ConfigParser

    bundle = tmp_path / "liver_ct_sat"
    shutil.copytree(REPO_ROOT / "bundles" / "liver_ct_sat", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["network_def"].update(channels=[4, 8, 16], strides=[2, 2])
    config["roi_size"] = [32, 32, 32]
    config["inferer"]["sw_batch_size"] = 2
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    (bundle / "eval").mkdir()
    (bundle / "eval" / "postprocessing.json").write_text(json.dumps({"keep_largest_component": [1],
                                                                      "fill_holes": []}))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    torch.manual_seed(0)
    (bundle / "models").mkdir()
    torch.save(parser.get_parsed_content("network_def").state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.mark.slow
def test_monai_label_and_cli_give_the_same_mask(tmp_path, pyradiomics_samples):  # noqa: F811
    from satgate_monai.infer.cli import main

    ct = sitk.ReadImage(str(pyradiomics_samples / "lung1_image.nrrd"))
    x0, y0 = ct.GetSize()[0] // 2 - 64, ct.GetSize()[1] // 2 - 64
    crop = sitk.Cast(ct[x0 : x0 + 128, y0 : y0 + 128, 12:36], sitk.sitkInt16)
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(crop, str(cases / "axial.nii.gz"))
    crop.SetDirection(rotation(25.0, 15.0).flatten().tolist())
    crop.SetOrigin((-31.5, 12.25, -140.0))
    # NRRD keeps an oblique direction in full precision for both readers (a NIfTI header stores it as float32, and
    # MONAI's NIfTI loader in the app then sees a slightly different affine than SimpleITK in the CLI)
    sitk.WriteImage(crop, str(cases / "oblique.nrrd"))
    bundle = _bundle(tmp_path)
    served = tmp_path / "served"
    served.mkdir()
    images = [str(cases / "axial.nii.gz"), str(cases / "oblique.nrrd")]
    proc = subprocess.run([str(label_python()), str(REPO_ROOT / "tests" / "label" / "infer_driver.py"), str(bundle),
                           str(served), *images], capture_output=True, text=True, env=project_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "cli"
    assert main(["--bundle", str(bundle), "--input", str(cases), "--out", str(out), "--device", "cpu",
                 "--no-progress", "--threads", "1"]) == 0
    for name, stem in (("axial.nii.gz", "axial"), ("oblique.nrrd", "oblique")):
        app, cli = sitk.ReadImage(str(served / f"{name}.nii.gz")), sitk.ReadImage(str(out / f"{stem}_seg.nii.gz"))
        a, c = sitk.GetArrayFromImage(app), sitk.GetArrayFromImage(cli)
        assert 0.01 < c.mean() < 0.99, stem  # both labels present: a real comparison
        np.testing.assert_array_equal(a, c, err_msg=stem)
        np.testing.assert_allclose(app.GetOrigin(), cli.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(app.GetDirection(), cli.GetDirection(), atol=1e-4)
        np.testing.assert_allclose(app.GetSpacing(), cli.GetSpacing(), atol=1e-4)
    steps = json.loads(proc.stdout.strip().splitlines()[-1])
    assert steps[0] == "ToSourceGridd" and "Invertd" not in steps  # the case engine's return, label steps included
