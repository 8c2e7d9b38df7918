"""One oblique volume, as a DICOM series and as a NIfTI file, through every entry point with one trained checkpoint:
the CLI, ``python -m monai.bundle run``, the MONAI Label app's infer task (MONAI Label's own python) and the MONAI
Deploy application (its own python; DICOM in by design, so no NIfTI run): voxel-equal masks across all seven runs,
and equal DICOM-SEG segment pixels from the CLI and Deploy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.cli import main
from tests.conftest import REPO_ROOT
from tests.infer.helpers import rotation, write_ct_series
from tests.infer.test_deploy_app import _run_app, deploy_python  # noqa: F401  (fixture)
from tests.label.client import label_python, project_env

SMALL_NET = {"channels": [4, 8, 16], "strides": [2, 2]}


def _trained_bundle(root: Path, image: sitk.Image) -> Path:
    """The liver bundle with a tiny SATUNet trained for 40 steps to find soft tissue (> -65 HU) in ``image``."""
    from monai.bundle import ConfigParser

    from satgate_monai.bundle.engine import Case

    bundle = root / "liver_ct_sat"
    shutil.copytree(REPO_ROOT / "bundles" / "liver_ct_sat", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    cfg = json.loads((bundle / "configs" / "inference.json").read_text())
    cfg["network_def"].update(SMALL_NET)
    cfg["roi_size"] = [32, 32, 32]
    cfg["inferer"]["sw_batch_size"] = 2
    (bundle / "configs" / "inference.json").write_text(json.dumps(cfg, indent=1))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    engine, net = parser.get_parsed_content("engine"), parser.get_parsed_content("network_def")
    x = engine.preprocess(Case.from_sitk(image)).as_tensor()[None]
    target = (x[:, 0] > 0.1).long()
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    net.train()
    for _ in range(40):
        opt.zero_grad()
        sl = (slice(None), slice(None), slice(0, 32), slice(0, 32), slice(0, 32))
        loss = torch.nn.functional.cross_entropy(net(x[sl]), target[sl[:1] + sl[2:]])
        loss.backward()
        opt.step()
    (bundle / "models").mkdir()
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.mark.slow
def test_every_entry_point_gives_the_same_mask(lung_crop, deploy_python, tmp_path):  # noqa: F811
    image = sitk.Image(lung_crop)
    image.SetDirection(rotation(25.0, 15.0).flatten().tolist())
    image.SetOrigin((-31.5, 12.25, -140.0))
    dicom = tmp_path / "in" / "study"
    sops = write_ct_series(image, dicom, patient_id="OBL", seed=1)
    nifti = tmp_path / "in" / "oblique.nii.gz"
    sitk.WriteImage(image, str(nifti))
    bundle = _trained_bundle(tmp_path / "bundle", image)
    masks: dict[str, np.ndarray] = {}
    for name, src in (("dicom", dicom), ("nifti", nifti)):
        out = tmp_path / f"cli_{name}"
        assert main(["--bundle", str(bundle), "--input", str(src), "--out", str(out), "--device", "cpu",
                     "--no-progress", "--threads", "1"]) == 0
        masks[f"cli {name}"] = np.asarray(nib.load(next(out.glob("*_seg.nii.gz"))).dataobj)
    datalist = f"$[{{'image': {str(dicom)!r}}}, {{'image': {str(nifti)!r}}}]"  # a DICOM folder is no datalist file
    run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                          str(bundle / "configs" / "inference.json"), "--bundle_root", str(bundle), "--dataset#data",
                          datalist, "--output_dir", str(tmp_path / "bundle_run"), "--device", "$torch.device('cpu')"],
                         capture_output=True, text=True, env=project_env(), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    masks["bundle run dicom"] = np.asarray(nib.load(tmp_path / "bundle_run" / "study_seg.nii.gz").dataobj)
    masks["bundle run nifti"] = np.asarray(nib.load(tmp_path / "bundle_run" / "oblique_seg.nii.gz").dataobj)
    served = tmp_path / "served"
    served.mkdir()
    proc = subprocess.run([str(label_python()), str(REPO_ROOT / "tests" / "label" / "infer_driver.py"), str(bundle),
                           str(served), str(dicom), str(nifti)], capture_output=True, text=True, env=project_env(),
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    masks["label dicom"] = np.asarray(nib.load(served / "study.nii.gz").dataobj)
    masks["label nifti"] = np.asarray(nib.load(served / "oblique.nii.gz.nii.gz").dataobj)
    study = tmp_path / "deploy_in" / "study"
    shutil.copytree(dicom, study)
    app_out = tmp_path / "deploy_out"
    r = _run_app(deploy_python, study, app_out, bundle)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    masks["deploy dicom"] = np.asarray(nib.load(app_out / "study_seg.nii.gz").dataobj)
    ref = masks["cli dicom"]
    assert 0.05 < (ref > 0).mean() < 0.95  # a trained network, both labels present: a real comparison
    differing = {k: int((m.reshape(ref.shape) != ref).sum()) for k, m in masks.items()}
    assert all(v == 0 for v in differing.values()), differing
    cli_seg = pydicom.dcmread(tmp_path / "cli_dicom" / "study_seg.dcm")
    app_seg = pydicom.dcmread(app_out / "study_seg.dcm")
    assert cli_seg.pixel_array.tobytes() == app_seg.pixel_array.tobytes()
    assert len(sops) == ref.shape[2]
