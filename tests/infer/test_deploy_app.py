"""The MONAI Deploy application (deploy/liver_ct_sat) on a multi-series study: the same series, mask and SEG as the CLI.

The application runs in its own environment (``bash .ci/deploy_env.sh``; ``$SATGATE_DEPLOY_PYTHON`` names its python,
as ``.ci/run`` sets it), as the SDK documents: ``python deploy/liver_ct_sat -i STUDY -o OUT -m BUNDLE``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from satgate_monai.infer.cli import main
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.infer.conftest import THRESHOLD_LEVEL
from tests.infer.helpers import read_report
from tests.infer.study import write_ct_study
from tests.infer.test_series import check_seg_matches_mask

APP_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def deploy_python() -> Path:
    """The python of the MONAI Deploy environment (``$SATGATE_DEPLOY_PYTHON``, else the cached one if built)."""
    found = os.environ.get("SATGATE_DEPLOY_PYTHON")
    if not found:
        r = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "deploy_env.sh"), "--path"], capture_output=True,
                           text=True, check=True)
        found = r.stdout.strip().splitlines()[-1]
    if not Path(found).is_file():
        skip_or_fail(f"the MONAI Deploy environment is not built ({found}): run `bash .ci/deploy_env.sh`")
    return Path(found)


def _threshold_copy(bundle: Path, root: Path) -> Path:
    """A copy of ``bundle`` whose network is the threshold stand-in, with its weights in models/model.pt."""
    import torch

    shutil.copytree(bundle / "configs", root / "configs")
    cfg = json.loads((root / "configs" / "inference.json").read_text())
    cfg["network_def"] = {"_target_": "tests.infer.helpers.ThresholdNet"}
    cfg["roi_size"] = [32, 32, 32]
    cfg["inferer"]["sw_batch_size"] = 2
    (root / "configs" / "inference.json").write_text(json.dumps(cfg, indent=2))
    (root / "models").mkdir()
    torch.save({"model": {"level": torch.tensor(THRESHOLD_LEVEL)}}, root / "models" / "model.pt")
    return root


@pytest.fixture(scope="session")
def threshold_bundle(liver_bundle: Path, tmp_path_factory) -> Path:
    """The liver bundle with the threshold stand-in network and its weights in models/model.pt."""
    return _threshold_copy(liver_bundle, tmp_path_factory.mktemp("bundle") / "liver_ct_sat")


def _run_app(python: Path, study: Path, out: Path, bundle: Path, app: str = "liver_ct_sat",
             **env: str) -> subprocess.CompletedProcess:
    def big_stack() -> None:  # Holoscan asks for 32 MB of stack
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        want = 32 * 2**20 if hard == resource.RLIM_INFINITY else min(32 * 2**20, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (max(soft, want), hard))

    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "SATGATE_DEVICE": "cpu", **env}
    return subprocess.run([str(python), str(REPO_ROOT / "deploy" / app), "-i", str(study), "-o", str(out),
                           "-m", str(bundle)], capture_output=True, text=True, env=full_env, cwd=out.parent,
                          preexec_fn=big_stack, timeout=APP_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.parametrize("app", ["liver_ct_sat", "prostate_mri_sat"])
def test_deploy_app_matches_the_cli(app, deploy_python, threshold_bundle, lung_crop, tmp_path):
    if app == "liver_ct_sat":
        study = write_ct_study(lung_crop, tmp_path / "study")
    else:  # the same voxels as an MR study whose thin series is the T2 the prostate rules look for
        threshold_bundle = _threshold_copy(REPO_ROOT / "bundles" / app, tmp_path / "bundle" / app)
        study = write_ct_study(lung_crop, tmp_path / "study", modality="MR",
                               descriptions=("t2_tse_tra", "ep2d_diff_b800"))
    app_out, cli_out = tmp_path / "app_out", tmp_path / "cli_out"
    r = _run_app(deploy_python, study.folder, app_out, threshold_bundle, app)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert main(["--bundle", str(threshold_bundle), "--input", str(study.folder), "--out", str(cli_out), "--device",
                 "cpu", "--no-progress"]) == 0
    app_row, cli_row = read_report(app_out)["study"], read_report(cli_out)["study"]
    assert app_row["status"] == "ok" and app_row["series"] == cli_row["series"] == study.thin
    a, c = nib.load(app_out / "study_seg.nii.gz"), nib.load(cli_out / "study_seg.nii.gz")
    np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(c.dataobj))
    np.testing.assert_allclose(a.affine, c.affine, atol=1e-6)
    assert np.asarray(a.dataobj).any() and not np.asarray(a.dataobj).all()
    check_seg_matches_mask(app_out / "study_seg.dcm", cli_out / "study_seg.nii.gz", study.thin, study.thin_sops)
    app_seg, cli_seg = pydicom.dcmread(app_out / "study_seg.dcm"), pydicom.dcmread(cli_out / "study_seg.dcm")
    assert app_seg.pixel_array.tobytes() == cli_seg.pixel_array.tobytes()
    refs = [[fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
             for fg in ds.PerFrameFunctionalGroupsSequence] for ds in (app_seg, cli_seg)]
    assert refs[0] == refs[1]


@pytest.mark.slow
def test_deploy_app_series_override_and_tie_refusal(deploy_python, threshold_bundle, lung_crop, tmp_path):
    study = write_ct_study(lung_crop, tmp_path / "study")
    r = _run_app(deploy_python, study.folder, tmp_path / "out", threshold_bundle, SATGATE_SERIES_UID=study.thick)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert read_report(tmp_path / "out")["study"]["series"] == study.thick
    meta = threshold_bundle.parent / "tie" / "liver_ct_sat"
    shutil.copytree(threshold_bundle, meta)
    m = json.loads((meta / "configs" / "metadata.json").read_text())
    m["series_selection"] = {"selections": [{"name": "any CT", "conditions": {"Modality": "CT"}}]}
    (meta / "configs" / "metadata.json").write_text(json.dumps(m))
    r = _run_app(deploy_python, study.folder, tmp_path / "out2", meta)
    assert r.returncode != 0
    assert "3 image series satisfy 'any CT' equally well" in r.stdout + r.stderr  # both recons + the dose report
    assert not (tmp_path / "out2" / "study_seg.dcm").exists()
